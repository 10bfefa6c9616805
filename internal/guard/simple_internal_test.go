package guard

import (
	"strings"
	"testing"

	"mvdan.cc/sh/v3/syntax"
)

// FuzzSimpleParse checks that whenever simpleParse reads code, the bash
// parser reads it the same: one plain statement calling the same literal
// words. Each input is tried as it is and mapped onto the bytes
// simpleParse accepts, so most inputs reach the comparison.
func FuzzSimpleParse(f *testing.F) {
	for _, s := range []string{
		"ls -la /var/log", "systemctl status nginx", " \tuptime ", "rm -rf /var/lib/*", "X=1 ls", "ls X=1", "a+=b c", "time ls",
		"declare -x a", "export A=b", "let a=1", "[[ -f x ]]", "if", "fi", "done", "in x", "!", "function f", "coproc ls",
		"ls ~/x ~ a:~/b", "echo a@b%c+d", "cat ?x *y", "echo --opt=1 -- -", "select x", "nameref r", "x,y", "%1", "@test",
		"", " ", "\t", "ls\n", "ls;", "ls #c", "a[1]=x", "{ ls; }", "echo {a,b}", "echo @(x)", "echo ^x", "ls\r",
	} {
		f.Add(s)
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,@%+=~*? \t"
	f.Fuzz(func(t *testing.T, s string) {
		checkSimpleParse(t, s)
		mapped := []byte(s)
		for i, c := range mapped {
			mapped[i] = alphabet[int(c)%len(alphabet)]
		}
		checkSimpleParse(t, string(mapped))
		for kw := range reservedFirst { // keywords after a first word are plain words
			checkSimpleParse(t, string(mapped)+" "+kw)
		}
	})
}

func checkSimpleParse(t *testing.T, code string) {
	got, ok := simpleParse(code)
	if !ok {
		return
	}
	want, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(code), "")
	if err != nil {
		t.Fatalf("simpleParse read %q, the parser fails: %v", code, err)
	}
	if len(want.Stmts) != 1 || len(got.Stmts) != 1 {
		t.Fatalf("%q: the parser reads %d statements", code, len(want.Stmts))
	}
	ws, gs := want.Stmts[0], got.Stmts[0]
	if ws.Negated || ws.Background || ws.Coprocess || ws.Disown || len(ws.Redirs) > 0 || len(ws.Comments) > 0 {
		t.Fatalf("%q: the parser reads a statement with more than a call: %+v", code, ws)
	}
	wc, ok := ws.Cmd.(*syntax.CallExpr)
	if !ok || len(wc.Assigns) > 0 {
		t.Fatalf("%q: the parser reads %T (%+v), not a call without assignments", code, ws.Cmd, ws.Cmd)
	}
	gc := gs.Cmd.(*syntax.CallExpr)
	if len(gc.Args) != len(wc.Args) {
		t.Fatalf("%q: %d words, the parser reads %d", code, len(gc.Args), len(wc.Args))
	}
	for i, w := range wc.Args {
		if len(w.Parts) != 1 {
			t.Fatalf("%q: word %d has %d parts for the parser", code, i, len(w.Parts))
		}
		l, ok := w.Parts[0].(*syntax.Lit)
		if !ok || l.Value != gc.Args[i].Parts[0].(*syntax.Lit).Value {
			t.Fatalf("%q: word %d is %#v for the parser, %q here", code, i, w.Parts[0], gc.Args[i].Lit())
		}
	}
}
