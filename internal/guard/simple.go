package guard

import (
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// simpleParse returns the syntax tree of code when code is one simple
// command of plain words (the common case: "systemctl status nginx",
// "ls -la /var/log") without running the bash parser, and false for
// anything else, which the parser then reads. The tree is the one the
// parser builds (a fuzz test checks it): one statement whose command is a
// call of words that are each one literal. Positions are not set; the
// guard reads them only for assignments, which such code has none of.
func simpleParse(code string) (*syntax.File, bool) {
	n := 0
	inWord := false
	for i := 0; i < len(code); i++ {
		switch c := code[i]; {
		case c == ' ' || c == '\t':
			inWord = false
		case plainByte(c):
			if !inWord {
				n++
			}
			inWord = true
		default:
			return nil, false
		}
	}
	if n == 0 {
		return nil, false
	}
	type wordLit struct {
		w     syntax.Word
		parts [1]syntax.WordPart
		l     syntax.Lit
	}
	ws := make([]wordLit, n)
	args := make([]*syntax.Word, n)
	for k, i := 0, 0; k < n; k++ {
		for code[i] == ' ' || code[i] == '\t' {
			i++
		}
		j := i
		for j < len(code) && code[j] != ' ' && code[j] != '\t' {
			j++
		}
		f := code[i:j]
		if k == 0 && (strings.IndexByte(f, '=') >= 0 || reservedFirst[f]) {
			return nil, false // an assignment, a keyword or a declaration
		}
		wl := &ws[k]
		wl.l.Value = f
		wl.parts[0] = &wl.l
		wl.w.Parts = wl.parts[:]
		args[k] = &wl.w
		i = j
	}
	st := &syntax.Stmt{Cmd: &syntax.CallExpr{Args: args}}
	return &syntax.File{Stmts: []*syntax.Stmt{st}}, true
}

// plainByte reports whether c means nothing to bash in a word: letters,
// digits and - _ . / : , @ % + = ~ * ? (a * ? @ + only starts a pattern
// before "(", which is not plain).
func plainByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-_./:,@%+=~*?", c) >= 0
}

// reservedFirst are the words the bash parser treats specially at the start
// of a command: keywords and the declaration builtins it parses as clauses.
var reservedFirst = map[string]bool{
	"if": true, "then": true, "elif": true, "else": true, "fi": true, "while": true, "until": true, "for": true,
	"in": true, "do": true, "done": true, "case": true, "esac": true, "select": true, "function": true, "time": true,
	"coproc": true, "let": true, "declare": true, "local": true, "export": true, "readonly": true, "typeset": true,
	"nameref": true, "@test": true, "{": true, "}": true, "{}": true, "!": true, "[[": true, "]]": true,
}
