package guard_test

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/it0/it0/internal/guard"
)

// corpusCase is one labelled row of testdata/corpus.tsv.
type corpusCase struct {
	line    int
	level   guard.Level
	command string
	why     string
}

// loadCorpus reads testdata/corpus.tsv: level<TAB>command<TAB>why, '#'
// comments and blank lines ignored. A command written as q:"…" is a Go
// string literal (for newlines and tabs).
func loadCorpus(tb testing.TB) []corpusCase {
	tb.Helper()
	data, err := os.ReadFile("testdata/corpus.tsv")
	if err != nil {
		tb.Fatal(err)
	}
	var out []corpusCase
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			tb.Fatalf("corpus.tsv:%d: want 3 tab-separated fields, got %d", n, len(f))
		}
		lvl, err := guard.ParseLevel(f[0])
		if err != nil {
			tb.Fatalf("corpus.tsv:%d: %v", n, err)
		}
		cmd := f[1]
		if rest, ok := strings.CutPrefix(cmd, "q:"); ok {
			if cmd, err = strconv.Unquote(rest); err != nil {
				tb.Fatalf("corpus.tsv:%d: bad quoted command: %v", n, err)
			}
		}
		if strings.TrimSpace(f[2]) == "" {
			tb.Fatalf("corpus.tsv:%d: every row says why", n)
		}
		out = append(out, corpusCase{line: n, level: lvl, command: cmd, why: f[2]})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func mustDefault(tb testing.TB) *guard.Classifier {
	tb.Helper()
	c, err := guard.Default()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestCorpus ensures every labelled command gets exactly its level.
func TestCorpus(t *testing.T) {
	t.Parallel()
	c := mustDefault(t)
	cases := loadCorpus(t)
	if len(cases) < 300 {
		t.Errorf("corpus has %d rows, want at least 300", len(cases))
	}
	seen := map[string]int{}
	perLevel := map[guard.Level]int{}
	for _, tc := range cases {
		if prev, ok := seen[tc.command]; ok {
			t.Errorf("corpus.tsv:%d duplicates line %d: %q", tc.line, prev, tc.command)
		}
		seen[tc.command] = tc.line
		perLevel[tc.level]++
		t.Run(strconv.Itoa(tc.line), func(t *testing.T) {
			t.Parallel()
			v := c.Classify(tc.command)
			if v.Level != tc.level {
				t.Errorf("corpus.tsv:%d: %q\n got %s, want %s (%s)\n reason: %s\n matches: %+v", tc.line, tc.command, v.Level, tc.level, tc.why, v.Reason, v.Matches)
			}
		})
	}
	for l := guard.L0; l <= guard.L3; l++ {
		if perLevel[l] < 40 {
			t.Errorf("corpus has %d %s rows, want at least 40", perLevel[l], l)
		}
	}
}
