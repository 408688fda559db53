package broker

import "strings"

// windowsDeviceName returns the device name Windows reserves (CON, PRN, AUX,
// NUL, COM1-9, LPT1-9, in any case) that topic's partition directories
// ("<topic>-<n>") would be named after, or "". Windows takes the part before
// the first dot as the device, so only a topic such as "con.orders" is hit.
func windowsDeviceName(topic string) string {
	base, _, _ := strings.Cut(topic+"-0", ".")
	switch u := strings.ToUpper(base); {
	case u == "CON" || u == "PRN" || u == "AUX" || u == "NUL":
		return base
	case len(u) == 4 && (u[:3] == "COM" || u[:3] == "LPT") && u[3] >= '1' && u[3] <= '9':
		return base
	}
	return ""
}

// collisionKey is what two topic names must not share: Kafka refuses names
// that differ only by '.' and '_' (their metric names collide), and where
// file names ignore case (foldCase) the partition directories of names that
// differ only by case would be the same directory.
func collisionKey(name string, foldCase bool) string {
	k := strings.ReplaceAll(name, ".", "_")
	if foldCase {
		k = strings.ToLower(k)
	}
	return k
}
