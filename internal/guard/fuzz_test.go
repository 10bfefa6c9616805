package guard_test

import (
	"strings"
	"testing"

	"mvdan.cc/sh/v3/syntax"

	"github.com/it0/it0/internal/guard"
)

// wrapName is the function name the fuzz wrappers define; corpus commands
// never call it.
const wrapName = "__it0_fuzz_wrap"

// wrappers embed a whole, canonically printed program as a complete
// statement list. Each keeps every command of the program runnable, so the
// guard must never judge the wrapped form lower than the program itself.
// Unquoted wrappers are re-parsed as one program, so they are checked only
// when the parser sees the same simple commands inside them (mvdan/sh
// reads a few odd inputs differently inside parentheses).
var wrappers = []struct {
	name   string
	quoted bool
	wrap   func(string) (string, bool)
}{
	{"subshell", false, func(p string) (string, bool) { return "(\n" + p + "\n)", true }},
	{"group", false, func(p string) (string, bool) { return "true && {\n" + p + "\n}", true }},
	{"if", false, func(p string) (string, bool) { return "if true; then\n" + p + "\nfi", true }},
	{"func", false, func(p string) (string, bool) { return wrapName + "() {\n" + p + "\n}", true }},
	{"cmdsubst", false, func(p string) (string, bool) { return "echo $(\n" + p + "\n)", true }},
	{"after", false, func(p string) (string, bool) { return "uptime\n" + p, true }},
	{"bash-c", true, quoted("bash -c ")},
	{"sudo-sh-c", true, quoted("sudo sh -c ")},
	{"ssh", true, quoted("ssh web1 -- ")},
	{"kubectl-exec", true, quoted("kubectl exec pod -- sh -c ")},
}

func quoted(prefix string) func(string) (string, bool) {
	return func(p string) (string, bool) {
		q, err := syntax.Quote(p, syntax.LangBash)
		if err != nil {
			return "", false
		}
		return prefix + q, true
	}
}

func printNode(t *testing.T, n syntax.Node) string {
	var b strings.Builder
	if err := syntax.NewPrinter().Print(&b, n); err != nil {
		t.Fatalf("print: %v", err)
	}
	return b.String()
}

// FuzzClassify checks, for any input: no panic; a valid level equal to the
// highest match; unparsable input is at least L2; no simple command found
// literally in the input (printed alone with its redirections and
// here-docs) is judged riskier than the whole input, except calls of
// functions the input itself defines; and wrapping the input in a
// subshell, group, function, $(…), bash -c, sudo sh -c, ssh or kubectl
// exec never lowers its level. (A part that reads a variable the input
// assigns a literal may alone be riskier: the variable may then be empty.)
func FuzzClassify(f *testing.F) {
	c := mustDefault(f)
	for _, tc := range loadCorpus(f) {
		f.Add(tc.command)
	}
	// Inputs fuzzing once broke: a value flag at the end of a wrapper's
	// options (index out of range), and bytes the printer rewrites.
	for _, s := range []string{"nice -\x0e\x0e\x0ea", "sudo -u", "timeout -s", "exec -\v", "timeout \f0", "ssh web1 '-N\n'", `"rm"#`, "xargs xargs", "xargs sudo"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 2048 {
			return
		}
		v := c.Classify(s)
		checkVerdict(t, s, v)
		file, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(s), "")
		if err != nil {
			if v.Level < guard.L2 {
				t.Fatalf("unparsable %q judged %s, want at least L2", s, v.Level)
			}
			return
		}
		funcs := map[string]bool{}
		assigns := false
		syntax.Walk(file, func(n syntax.Node) bool {
			if fd, ok := n.(*syntax.FuncDecl); ok && fd.Name != nil {
				funcs[fd.Name.Value] = true
			}
			if _, ok := n.(*syntax.Assign); ok {
				assigns = true
			}
			return true
		})
		syntax.Walk(file, func(n syntax.Node) bool {
			st, ok := n.(*syntax.Stmt)
			if !ok {
				return true
			}
			ce, ok := st.Cmd.(*syntax.CallExpr)
			if !ok || len(ce.Args) == 0 || funcs[ce.Args[0].Lit()] {
				return true
			}
			part := printNode(t, st)
			// The printer is not faithful for every odd byte (a form feed
			// becomes a newline); judge only parts that stay one statement.
			if !sameWords(s, ce, part) {
				return true
			}
			// A variable the input assigns a literal is known in the whole
			// and may be empty in the part alone.
			if assigns && strings.Contains(part, "$") {
				return true
			}
			if pv := c.Classify(part); pv.Level > v.Level {
				t.Fatalf("%q is %s but its command %q alone is %s (%s)", s, v.Level, part, pv.Level, pv.Reason)
			}
			return true
		})
		printed := printNode(t, file)
		pv := c.Classify(printed)
		calls, ok := callWords(printed)
		if !ok {
			return
		}
		for _, w := range wrappers {
			ws, ok := w.wrap(printed)
			if !ok {
				continue
			}
			if !w.quoted {
				inner, ok := callWords(ws)
				if !ok || !containsAll(inner, calls) {
					continue
				}
			}
			if wv := c.Classify(ws); wv.Level < pv.Level {
				t.Fatalf("%s wrapper lowered %q from %s to %s: %q (%s)", w.name, printed, pv.Level, wv.Level, ws, wv.Reason)
			}
		}
	})
}

// sameWords reports whether part parses to one simple command whose words
// have the same source text as ce's words in src.
func sameWords(src string, ce *syntax.CallExpr, part string) bool {
	pf, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(part), "")
	if err != nil || len(pf.Stmts) != 1 {
		return false
	}
	pce, ok := pf.Stmts[0].Cmd.(*syntax.CallExpr)
	if !ok || len(pce.Args) != len(ce.Args) {
		return false
	}
	for i := range ce.Args {
		a, b := ce.Args[i], pce.Args[i]
		if src[a.Pos().Offset():a.End().Offset()] != part[b.Pos().Offset():b.End().Offset()] {
			return false
		}
	}
	return true
}

// callWords lists each simple command of src as the source text of its words.
func callWords(src string) ([]string, bool) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(src), "")
	if err != nil {
		return nil, false
	}
	var out []string
	syntax.Walk(f, func(n syntax.Node) bool {
		if ce, ok := n.(*syntax.CallExpr); ok {
			var ws []string
			for _, a := range ce.Args {
				ws = append(ws, src[a.Pos().Offset():a.End().Offset()])
			}
			out = append(out, strings.Join(ws, "\x00"))
		}
		return true
	})
	return out, true
}

func containsAll(have, want []string) bool {
	set := map[string]int{}
	for _, h := range have {
		set[h]++
	}
	for _, w := range want {
		if set[w] == 0 {
			return false
		}
		set[w]--
	}
	return true
}

func checkVerdict(t *testing.T, s string, v guard.Verdict) {
	t.Helper()
	if !v.Level.Valid() {
		t.Fatalf("%q: invalid level %d", s, v.Level)
	}
	max := guard.L0
	for _, m := range v.Matches {
		if !m.Level.Valid() || m.Rule == "" || m.Reason == "" {
			t.Fatalf("%q: bad match %+v", s, m)
		}
		max = maxLevel(max, m.Level)
	}
	if len(v.Matches) > 0 && max != v.Level {
		t.Fatalf("%q: level %s but highest match %s", s, v.Level, max)
	}
	if v.Reason == "" {
		t.Fatalf("%q: empty reason", s)
	}
}

func maxLevel(a, b guard.Level) guard.Level {
	if a > b {
		return a
	}
	return b
}
