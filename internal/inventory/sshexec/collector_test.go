package sshexec

import (
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestCollector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		in            string
		limit         int
		want          string
		wantLines     []string
		wantTruncated bool
	}{
		{name: "Empty", in: "", limit: 10, want: "", wantLines: nil},
		{name: "Lines", in: "a\nbb\n", limit: 10, want: "a\nbb\n", wantLines: []string{"a", "bb"}},
		{name: "NoTrailingNewline", in: "a\nbb", limit: 10, want: "a\nbb", wantLines: []string{"a", "bb"}},
		{name: "EmptyLines", in: "\n\n", limit: 10, want: "\n\n", wantLines: []string{"", ""}},
		{name: "CapAtLineEnd", in: "abc\ndef\n", limit: 4, want: "abc\n", wantLines: []string{"abc"}, wantTruncated: true},
		{name: "CapMidLine", in: "abc\ndefgh\nij\n", limit: 6, want: "abc\nde", wantLines: []string{"abc", "de"}, wantTruncated: true},
		{name: "ExactlyAtCap", in: "abc\n", limit: 4, want: "abc\n", wantLines: []string{"abc"}},
	}
	for _, tc := range tests {
		for _, oneByte := range []bool{false, true} {
			name := tc.name
			if oneByte {
				name += "/OneByteReads"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				var r io.Reader = strings.NewReader(tc.in)
				if oneByte {
					r = iotest.OneByteReader(r)
				}
				var lines []string
				var c collector
				c.collect(r, StreamStdout, tc.limit, func(stream, line string) {
					if stream != StreamStdout {
						t.Errorf("stream %q", stream)
					}
					lines = append(lines, line)
				})
				if string(c.buf) != tc.want || c.truncated != tc.wantTruncated || !slices.Equal(lines, tc.wantLines) {
					t.Fatalf("got %q truncated=%v lines=%q; want %q %v %q", c.buf, c.truncated, lines, tc.want, tc.wantTruncated, tc.wantLines)
				}
			})
		}
	}
}

func TestWrapCommandQuoting(t *testing.T) {
	t.Parallel()
	// The command is appended verbatim after the watcher prefix, on its own
	// line, so quotes, here-documents and multi-line scripts keep their
	// meaning.
	for _, cmd := range []string{"echo 'a b'", "cat <<EOF\nx\nEOF", "if true; then\n echo y\nfi"} {
		w := wrapCommand(cmd)
		if !strings.HasSuffix(w, "\n"+cmd) {
			t.Fatalf("wrapCommand(%q) = %q", cmd, w)
		}
	}
}
