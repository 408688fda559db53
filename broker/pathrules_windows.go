package broker

// Windows file names ignore case and cannot be device names.
const (
	foldCaseNames = true
	noDeviceNames = true
)
