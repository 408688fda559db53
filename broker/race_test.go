//go:build race

package broker

// raceEnabled: the race detector allocates (allocation tests skip).
const raceEnabled = true
