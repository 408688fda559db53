package broker

// macOS's default file system (APFS, case-insensitive) ignores case.
const (
	foldCaseNames = true
	noDeviceNames = false
)
