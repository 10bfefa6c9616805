package guard

import (
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// word is one shell word after quote removal. Expansions the guard cannot
// know are rendered as "$NAME" or "$(…)" and make the word non-literal.
type word struct {
	val  string
	lit  bool
	node *syntax.Word
	// alt is the word with every variable that may be empty expanded to
	// nothing ("$X/*" → "/*"); set only when it differs from val.
	alt    string
	hasAlt bool
}

// alwaysSet names variables a shell always sets to something non-empty.
var alwaysSet = map[string]bool{
	"HOME": true, "PWD": true, "USER": true, "LOGNAME": true, "SHELL": true, "UID": true, "EUID": true,
	"HOSTNAME": true, "PPID": true, "RANDOM": true, "SECONDS": true, "LINENO": true, "BASHPID": true,
	"?": true, "$": true, "!": true, "#": true, "0": true, "-": true,
}

func words(ws []*syntax.Word) []word { return wordsEnv(ws, nil) }

// wordsEnv renders words with vars: variables assigned a literal earlier in
// the same command (X=/srv/x; rm -rf "$X"/*).
func wordsEnv(ws []*syntax.Word, vars map[string]string) []word {
	out := make([]word, len(ws))
	for i, w := range ws {
		out[i] = renderEnv(w, vars)
	}
	return out
}

func render(w *syntax.Word) word { return renderEnv(w, nil) }

func renderEnv(w *syntax.Word, vars map[string]string) word {
	if len(w.Parts) == 1 {
		// The common word, one plain literal or single-quoted string: its
		// value without copying it.
		switch x := w.Parts[0].(type) {
		case *syntax.Lit:
			return word{val: unescaped(x.Value, false), lit: true, node: w}
		case *syntax.SglQuoted:
			if !x.Dollar {
				return word{val: x.Value, lit: true, node: w}
			}
		}
	}
	r := renderer{vars: vars, lit: true}
	r.parts(w.Parts, false)
	out := word{val: r.val.String(), lit: r.lit, node: w}
	if r.alts {
		if alt := r.alt.String(); alt != out.val {
			out.alt, out.hasAlt = alt, true
		}
	}
	return out
}

// renderer builds a word's value and its "empty variables" alternative
// (alt is written only from the first variable on: most words have none).
type renderer struct {
	vars     map[string]string
	val, alt strings.Builder
	lit      bool
	alts     bool // some variable may be empty
	altOn    bool // alt holds the word so far
}

func (r *renderer) both(s string) {
	r.val.WriteString(s)
	if r.altOn {
		r.alt.WriteString(s)
	}
}

func (r *renderer) parts(parts []syntax.WordPart, inDbl bool) {
	for _, p := range parts {
		switch x := p.(type) {
		case *syntax.Lit:
			r.both(unescaped(x.Value, inDbl))
		case *syntax.SglQuoted:
			if x.Dollar {
				r.both(ansiC(x.Value))
			} else {
				r.both(x.Value)
			}
		case *syntax.DblQuoted:
			r.parts(x.Parts, true)
		case *syntax.ParamExp:
			r.param(x)
		case *syntax.CmdSubst:
			r.lit = false
			r.both("$(…)")
		case *syntax.ArithmExp:
			r.lit = false
			r.both("$((…))")
		case *syntax.ProcSubst:
			r.lit = false
			r.both("<(…)")
		case *syntax.ExtGlob:
			r.lit = false
			r.both(x.Op.String())
			if x.Pattern != nil {
				r.both(x.Pattern.Value)
			}
			r.both(")")
		default:
			r.lit = false
			r.both("$?")
		}
	}
}

// param renders $NAME: a variable assigned a literal before is its value;
// any other is "$NAME" in val, and in alt what it is when it is empty.
func (r *renderer) param(x *syntax.ParamExp) {
	name := ""
	if x.Param != nil {
		name = x.Param.Value
	}
	plain := x.Exp == nil && x.Index == nil && x.Slice == nil && x.Repl == nil && !x.Length && !x.Excl && x.Names == 0
	if v, ok := r.vars[name]; ok && plain {
		r.both(v)
		return
	}
	r.lit = false
	if !r.altOn {
		r.alt.WriteString(r.val.String())
		r.altOn = true
	}
	r.val.WriteString("$" + name)
	switch {
	case x.Length, alwaysSet[name]:
		r.alt.WriteString("$" + name)
	case x.Exp != nil && x.Exp.Op == syntax.ErrorUnsetOrNull:
		r.alt.WriteString("$" + name) // ${X:?} aborts rather than expand to nothing
	case x.Exp != nil && (x.Exp.Op == syntax.DefaultUnsetOrNull || x.Exp.Op == syntax.AssignUnsetOrNull):
		if x.Exp.Word != nil {
			r.alt.WriteString(renderEnv(x.Exp.Word, r.vars).val)
		}
		r.alts = true
	default:
		r.alts = true
	}
}

func unescaped(s string, inDbl bool) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	unescape(&b, s, inDbl)
	return b.String()
}

// known returns the text word w expands to when the guard can know it: its
// literal parts plus the output of command substitutions that print a
// literal (echo, printf, base64 -d of either), so "$(echo cm0…| base64 -d)"
// is read as the code it decodes to.
func known(w *syntax.Word, vars map[string]string) (string, bool) {
	if w == nil {
		return "", false
	}
	var b strings.Builder
	if !knownParts(&b, w.Parts, false, vars) {
		return "", false
	}
	return b.String(), true
}

func knownParts(b *strings.Builder, parts []syntax.WordPart, inDbl bool, vars map[string]string) bool {
	for _, p := range parts {
		switch x := p.(type) {
		case *syntax.Lit:
			unescape(b, x.Value, inDbl)
		case *syntax.SglQuoted:
			if x.Dollar {
				b.WriteString(ansiC(x.Value))
			} else {
				b.WriteString(x.Value)
			}
		case *syntax.DblQuoted:
			if !knownParts(b, x.Parts, true, vars) {
				return false
			}
		case *syntax.CmdSubst:
			if len(x.Stmts) != 1 {
				return false
			}
			out, ok := literalSource(x.Stmts[0])
			if !ok {
				return false
			}
			b.WriteString(strings.TrimRight(out, "\n"))
		case *syntax.ParamExp:
			v, ok := vars[paramName(x)]
			if !ok || x.Exp != nil || x.Index != nil || x.Slice != nil || x.Repl != nil || x.Length || x.Excl {
				return false
			}
			b.WriteString(v)
		default:
			return false
		}
	}
	return true
}

func paramName(x *syntax.ParamExp) string {
	if x.Param == nil {
		return ""
	}
	return x.Param.Value
}

// procSubstSource returns what a word that is exactly <(cmd) lets a reader
// read, when cmd prints a literal.
func procSubstSource(w *syntax.Word) (string, bool) {
	if w == nil || len(w.Parts) != 1 {
		return "", false
	}
	ps, ok := w.Parts[0].(*syntax.ProcSubst)
	if !ok || ps.Op != syntax.CmdIn || len(ps.Stmts) != 1 {
		return "", false
	}
	return literalSource(ps.Stmts[0])
}

// varDef is a literal assignment the guard trusts until end (the end of
// the subshell or $(…) it is in; 0 for the whole input).
type varDef struct {
	name, value string
	end         syntax.Pos
}

// topAssigns returns, per statement, the variables it assigns a literal,
// non-empty value when the statement always runs in order (a list at the
// top, in a group, subshell, function body or $(…), or left of &&) and the
// input assigns them no other way; each is recorded when the walk reaches
// its statement and forgotten when it leaves its subshell.
func topAssigns(f *syntax.File) map[*syntax.Stmt][]varDef {
	if !hasAssign(f) {
		return nil
	}
	out := map[*syntax.Stmt][]varDef{}
	sure := map[*syntax.Assign]bool{}
	var list func(stmts []*syntax.Stmt, end syntax.Pos)
	var visit func(st *syntax.Stmt, end syntax.Pos)
	visit = func(st *syntax.Stmt, end syntax.Pos) {
		if st == nil || st.Negated || st.Background || st.Coprocess {
			return
		}
		var as []*syntax.Assign
		switch x := st.Cmd.(type) {
		case *syntax.CallExpr:
			if len(x.Args) == 0 {
				as = x.Assigns
			}
			for _, w := range x.Args {
				for _, p := range w.Parts {
					if cs, ok := p.(*syntax.CmdSubst); ok {
						list(cs.Stmts, cs.End())
					}
				}
			}
		case *syntax.DeclClause:
			for _, a := range x.Args {
				if a.Name != nil && a.Value != nil {
					as = append(as, a)
				}
			}
		case *syntax.BinaryCmd:
			// The left of && always runs; what runs only sometimes is
			// trusted only inside the construct.
			if x.Op == syntax.AndStmt {
				visit(x.X, end)
			} else {
				visit(x.X, x.End())
			}
			visit(x.Y, x.End())
		case *syntax.IfClause:
			for c := x; c != nil; c = c.Else {
				list(c.Then, x.End())
			}
		case *syntax.WhileClause:
			list(x.Do, x.End())
		case *syntax.ForClause:
			list(x.Do, x.End())
		case *syntax.Subshell:
			list(x.Stmts, x.End())
		case *syntax.Block:
			list(x.Stmts, end)
		case *syntax.FuncDecl:
			if x.Body != nil {
				visit(x.Body, x.Body.End())
			}
		}
		for _, a := range as {
			if a.Name == nil || a.Value == nil || a.Append || a.Index != nil || a.Array != nil {
				continue
			}
			if w := render(a.Value); w.lit && w.val != "" {
				out[st] = append(out[st], varDef{name: a.Name.Value, value: w.val, end: end})
				sure[a] = true
			}
		}
	}
	list = func(stmts []*syntax.Stmt, end syntax.Pos) {
		for _, st := range stmts {
			visit(st, end)
		}
	}
	list(f.Stmts, syntax.Pos{})
	if len(out) == 0 {
		return nil
	}
	// A variable also assigned some other way (conditionally, in a loop, by
	// read or for) may hold anything: do not trust its literal.
	tainted := map[string]bool{}
	syntax.Walk(f, func(n syntax.Node) bool {
		switch x := n.(type) {
		case *syntax.Assign:
			if x.Name != nil && !sure[x] {
				tainted[x.Name.Value] = true
			}
		case *syntax.ForClause:
			if wi, ok := x.Loop.(*syntax.WordIter); ok && wi.Name != nil {
				tainted[wi.Name.Value] = true
			}
		case *syntax.CallExpr:
			if len(x.Args) > 1 {
				if n := x.Args[0].Lit(); n == "read" || n == "mapfile" || n == "readarray" || n == "printf" || n == "getopts" {
					for _, a := range x.Args[1:] {
						tainted[a.Lit()] = true
					}
				}
			}
		}
		return true
	})
	for st, defs := range out {
		kept := defs[:0]
		for _, d := range defs {
			if !tainted[d.name] {
				kept = append(kept, d)
			}
		}
		out[st] = kept
	}
	return out
}

// hasAssign is a cheap test for "X=" anywhere, to skip topAssigns on the
// common input that assigns nothing.
func hasAssign(f *syntax.File) bool {
	found := false
	syntax.Walk(f, func(n syntax.Node) bool {
		if found {
			return false
		}
		switch x := n.(type) {
		case *syntax.Assign:
			found = true
		case *syntax.CallExpr:
			return len(x.Assigns) > 0 || hasSubst(x.Args)
		}
		return true
	})
	return found
}

func hasSubst(ws []*syntax.Word) bool {
	for _, w := range ws {
		for _, p := range w.Parts {
			switch p.(type) {
			case *syntax.CmdSubst, *syntax.DblQuoted:
				return true
			}
		}
	}
	return false
}

// printf returns what printf FORMAT ARGS prints for the common directives
// (%s %b %d %i %c %q %%, with flags and widths ignored), reusing the
// format while arguments remain, as printf does.
func printf(format string, args []string) string {
	var b strings.Builder
	for {
		used := false
		for i := 0; i < len(format); i++ {
			c := format[i]
			switch {
			case c == '\\' && i+1 < len(format):
				j := i + 1
				for j < len(format) && j-i < 4 && format[j] >= '0' && format[j] <= '7' && format[i+1] == '0' {
					j++
				}
				if j == i+1 {
					j = i + 2
				}
				b.WriteString(ansiC(format[i:j]))
				i = j - 1
			case c == '%' && i+1 < len(format):
				j := i + 1
				for j < len(format) && strings.IndexByte("-+ #0123456789.", format[j]) >= 0 {
					j++
				}
				if j >= len(format) {
					b.WriteString(format[i:])
					i = len(format)
					continue
				}
				if format[j] == '%' {
					b.WriteByte('%')
					i = j
					continue
				}
				arg := ""
				if len(args) > 0 {
					arg, args, used = args[0], args[1:], true
				}
				switch format[j] {
				case 'b':
					b.WriteString(ansiC(arg))
				case 'c':
					if arg != "" {
						b.WriteByte(arg[0])
					}
				default:
					b.WriteString(arg)
				}
				i = j
			default:
				b.WriteByte(c)
			}
		}
		if !used || len(args) == 0 {
			return b.String()
		}
	}
}
