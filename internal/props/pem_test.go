package props

import (
	"encoding/pem"
	"strings"
	"testing"
)

func TestNormalizePEM(t *testing.T) {
	orig := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte(strings.Repeat("certificate bytes ", 10))}))
	oneLine := strings.ReplaceAll(orig, "\n", " ")
	joined := strings.ReplaceAll(orig, "\n", "")
	for _, in := range []string{orig, oneLine, joined, oneLine + oneLine} {
		b, rest := pem.Decode([]byte(NormalizePEM(in)))
		if b == nil || b.Type != "CERTIFICATE" || string(b.Bytes) != strings.Repeat("certificate bytes ", 10) {
			t.Errorf("%q: decoded %v", in, b)
		}
		if in == oneLine+oneLine {
			if b2, _ := pem.Decode(rest); b2 == nil {
				t.Errorf("second block lost")
			}
		}
	}
}
