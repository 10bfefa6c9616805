package openai

import (
	"io"
)

// ReadSSEForTest reads every event of r ("name:data", or data alone when unnamed).
func ReadSSEForTest(r io.Reader, max int) []string {
	sr := newSSEReader(r, max)
	var out []string
	for {
		ev, err := sr.next()
		if err != nil {
			return out
		}
		if ev.Name != "" {
			out = append(out, ev.Name+":"+string(ev.Data))
		} else {
			out = append(out, string(ev.Data))
		}
	}
}
