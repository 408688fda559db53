package broker

import "golang.org/x/sys/windows"

// diskSpace returns the size of the volume holding dir and the bytes the
// broker's user may still use (DescribeLogDirs v4).
func diskSpace(dir string) (total, usable int64, err error) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return -1, -1, err
	}
	var free, size, totalFree uint64
	if err := windows.GetDiskFreeSpaceEx(p, &free, &size, &totalFree); err != nil {
		return -1, -1, err
	}
	return int64(size), int64(free), nil
}
