package broker

// openFileLimit: Windows has no per-process descriptor limit to speak of.
func openFileLimit() (uint64, bool) { return 0, false }
