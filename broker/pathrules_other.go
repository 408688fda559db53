//go:build !windows && !darwin

package broker

// Unix file names are case-sensitive and may be anything without '/'.
const (
	foldCaseNames = false
	noDeviceNames = false
)
