package cli

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// readProperties reads a Java properties file as Kafka's tools take with
// --command-config: key=value or key: value lines, # and ! comments, and
// lines continued with a trailing backslash (JAAS configs often are).
func readProperties(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--command-config: %w", err)
	}
	defer f.Close()
	props := make(map[string]string)
	sc := bufio.NewScanner(f)
	var pending string
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if pending == "" && (line == "" || line[0] == '#' || line[0] == '!') {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			pending += strings.TrimSuffix(line, `\`)
			continue
		}
		line, pending = pending+line, ""
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			return nil, fmt.Errorf("--command-config %s:%d: want key=value, got %q", path, n, line)
		}
		props[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--command-config: %w", err)
	}
	return props, nil
}
