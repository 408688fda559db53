package cli

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// keyValues parses k=v flag values. With lists, a value may hold several
// pairs separated by commas, with [a,b] keeping a list value together, as
// kafka-configs.sh --add-config does; otherwise each value is one pair, as
// kafka-topics.sh --config takes.
func keyValues(flag string, vals []string, lists bool) (map[string]string, error) {
	out := make(map[string]string)
	for _, v := range vals {
		pairs := []string{v}
		if lists {
			pairs = splitTopLevel(v)
		}
		for _, kv := range pairs {
			k, val, ok := strings.Cut(kv, "=")
			if !ok || strings.TrimSpace(k) == "" {
				return nil, fmt.Errorf("%s: want key=value, got %q", flag, kv)
			}
			val = strings.TrimSpace(val)
			if strings.HasPrefix(val, "[") && strings.HasSuffix(val, "]") {
				val = val[1 : len(val)-1]
			}
			out[strings.TrimSpace(k)] = val
		}
	}
	return out, nil
}

// splitTopLevel splits s at commas outside square brackets.
func splitTopLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '[':
			depth++
		case ']':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
