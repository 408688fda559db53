package storage

// syncDir does nothing on Windows: a directory cannot be opened for
// FlushFileBuffers, and NTFS journals the creation, rename and removal of
// directory entries itself, which is what syncing a directory buys on Unix.
func syncDir(string) error { return nil }
