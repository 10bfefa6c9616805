package guard

import (
	"os"
	"regexp/syntax"
	"slices"
	"strings"
	"testing"

	opsconfig "github.com/it0/it0/ops-config"
)

func TestRequiredLits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		expr string
		want []lit // nil: no literal is required
	}{
		{`--privileged`, []lit{{s: "--privileged"}}},
		{`(^|\s)(-X|--request)\s*(POST|PUT)`, []lit{{s: "POST"}, {s: "PUT"}}},
		{`a|b?`, nil},
		{`(a|)x`, []lit{{s: "x"}}},
		{`(?i)DROP\s+x`, []lit{{s: "drop", fold: true}}},
		{`(?i)--`, []lit{{s: "--"}}},
		{`(?i)é`, nil},
		{`x{0,3}y{2}`, []lit{{s: "y"}}},
		{`[ab]c+`, []lit{{s: "a"}, {s: "b"}}},
		{`\x{FFFD}`, nil},
		{`(^|\s)(-f|--file|-i)(\s|=|$)`, []lit{{s: "-f"}, {s: "--file"}, {s: "-i"}}},
		{`[ewW]x`, []lit{{s: "Wx"}, {s: "ex"}, {s: "wx"}}},
		{`a+bc`, []lit{{s: "bc"}}},
		{`(?i)set-x`, []lit{{s: "set-x", fold: true}}},
		{`[^a]`, nil},
		{`[a-z]`, nil},
		{`\s*`, nil},
		{`^$`, nil},
	} {
		re, err := syntax.Parse(tc.expr, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := requiredLits(re)
		if !ok {
			got = nil
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("requiredLits(%q) = %+v, want %+v", tc.expr, got, tc.want)
		}
	}
}

// shippedPatterns returns every regexp of the shipped rules.
func shippedPatterns(tb testing.TB) []*pattern {
	r, err := LoadRules(opsconfig.RiskPatterns)
	if err != nil {
		tb.Fatal(err)
	}
	var out []*pattern
	for _, c := range r.commands {
		for _, l := range c.layers {
			for _, ru := range l {
				if ru.re != nil && !slices.Contains(out, ru.re) {
					out = append(out, ru.re)
				}
			}
		}
	}
	for _, l := range r.sql {
		for _, rr := range l {
			out = append(out, rr.re)
		}
	}
	if len(out) < 50 {
		tb.Fatalf("only %d patterns in the shipped rules", len(out))
	}
	return out
}

// FuzzRequiredLits checks, for any regexp, that the literal pre-check
// never rejects a text the regexp matches.
func FuzzRequiredLits(f *testing.F) {
	for _, s := range [][2]string{
		{`(^|\s)(-f|--file|-i)(\s|=|$)`, "sed --file x"}, {`[ewW]x|a+b(c|d)`, "aabd"}, {`(?i)dRoP\s+(x|y)`, "DROP y"},
		{`(?i)k`, "\u212a"}, {`(a|b)(c|d)(e|f)(g|h)(i|j)(k|l)`, "bdfhjl"}, {`x*(ab)+c`, "ababc"}, {`[\x{FFFD}a]b`, "\xffb"},
		{`(?s)a.b`, "a\nb"}, {`\bfoo\b`, "a foo"}, {`(?i)[a-c]x`, "Bx"}, {`(?U)a+?b`, "aab"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, expr, text string) {
		p, err := compilePattern(expr)
		if err != nil {
			return
		}
		if got, want := p.MatchString(text), p.re.MatchString(text); got != want {
			t.Fatalf("%q on %q: %v, the regexp alone %v (literals %+v)", expr, text, got, want, p.lits)
		}
	})
}

// FuzzPattern checks that the literal pre-check never rejects a text a
// shipped rule's regexp matches.
func FuzzPattern(f *testing.F) {
	pats := shippedPatterns(f)
	data, err := os.ReadFile("testdata/corpus.tsv")
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if cmd := strings.Split(line, "\t"); len(cmd) == 3 {
			words := strings.Fields(cmd[1])
			for i := range words {
				f.Add(strings.Join(words[i:], " ")) // the arguments after a program name
			}
		}
	}
	for _, s := range []string{"DROP DATABASE x", "\u212a", "ſelect 1", "update \u212aey", "DELETE FROM t", "dRoP schema s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range pats {
			if got, want := p.MatchString(s), p.re.MatchString(s); got != want {
				t.Fatalf("%s on %q: %v, the regexp alone %v (literals %+v)", p.re, s, got, want, p.lits)
			}
		}
	})
}
