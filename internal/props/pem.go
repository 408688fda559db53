package props

import (
	"regexp"
	"strings"
)

// pemBlock matches one PEM block, however its lines were broken.
var pemBlock = regexp.MustCompile(`-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\s\\]*?)-----END ([A-Z0-9 ]+)-----`)

// NormalizePEM rebuilds the PEM blocks of an inline value such as
// ssl.keystore.certificate.chain, which a properties file often holds on
// one line (or with backslash continuations that join its lines), as
// Kafka's PEM parser accepts it: every block gets its own lines again, and
// text between blocks is dropped. A value without a block is returned as
// it is.
func NormalizePEM(v string) string {
	blocks := pemBlock.FindAllStringSubmatch(v, -1)
	if len(blocks) == 0 {
		return v
	}
	var b strings.Builder
	for _, m := range blocks {
		body := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '\\' {
				return -1
			}
			return r
		}, m[2])
		b.WriteString("-----BEGIN " + m[1] + "-----\n")
		for len(body) > 64 {
			b.WriteString(body[:64] + "\n")
			body = body[64:]
		}
		if body != "" {
			b.WriteString(body + "\n")
		}
		b.WriteString("-----END " + m[3] + "-----\n")
	}
	return b.String()
}
