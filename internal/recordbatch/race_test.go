//go:build race

package recordbatch

// raceEnabled: the race detector drops sync.Pool entries at random.
const raceEnabled = true
