package gateway

import (
	"fmt"
	"slices"
	"testing"
)

func TestTextFrame(t *testing.T) {
	for _, tt := range []struct {
		n      int
		header []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xff, 0xff}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			p := make([]byte, tt.n)
			for i := range p {
				p[i] = byte('a' + i%26)
			}
			f := textFrame(p)
			if got := f[:len(tt.header)]; !slices.Equal(got, tt.header) {
				t.Errorf("header % x; want % x", got, tt.header)
			}
			if got := f[len(tt.header):]; !slices.Equal(got, p) {
				t.Errorf("payload differs (len %d; want %d)", len(got), len(p))
			}
		})
	}
}
