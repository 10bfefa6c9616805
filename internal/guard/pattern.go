package guard

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// pattern is a rule's regexp with cheap necessary conditions: most rule
// regexps cannot match unless the text contains one of a few literal
// strings ("--privileged", "prune", "drop" …), and strings.Contains rejects
// the usual text much faster than the regexp's backtracker does. A regexp
// that is an alternation is matched branch by branch, each with its own
// literals (system\s*\(|>\s*"|… runs only the branches whose literals the
// text holds; branches without literals run together).
type pattern struct {
	re       *regexp.Regexp // the whole regexp
	branches []branch       // it matches when one of them does
}

// branch is a regexp and, when it has them, the literals one of which a
// text it matches contains.
type branch struct {
	re   *regexp.Regexp
	lits []lit // nil: no literal is required
	fold bool  // some lit is case-insensitive
}

// lit is a string a match contains; with fold, in any ASCII case.
type lit struct {
	s    string // lower-case when fold
	fold bool
}

func compilePattern(expr string) (*pattern, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	p := &pattern{re: re, branches: []branch{{re: re}}}
	// regexp.Compile parses with syntax.Perl.
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return p, nil
	}
	if bs, ok := splitBranches(expr, tree); ok {
		p.branches = bs
	} else if lits, ok := requiredLits(tree); ok {
		p.branches[0].setLits(lits)
	}
	return p, nil
}

func (b *branch) setLits(lits []lit) {
	b.lits = lits
	for _, l := range lits {
		b.fold = b.fold || l.fold
	}
}

// splitBranches returns the branches of a top-level alternation when some
// have literals: one per such branch, then the others as one regexp. Each
// branch is compiled from its own text in expr, used only when it parses to
// exactly the branch of tree (else expr is not split).
func splitBranches(expr string, tree *syntax.Regexp) ([]branch, bool) {
	if tree.Op != syntax.OpAlternate || len(tree.Sub) < 2 {
		return nil, false
	}
	texts, ok := topLevelBranches(expr)
	if !ok || len(texts) != len(tree.Sub) {
		return nil, false
	}
	var out []branch
	var rest []string
	for i, sub := range tree.Sub {
		t, err := syntax.Parse(texts[i], syntax.Perl)
		if err != nil || !sameRegexp(t, sub) {
			return nil, false
		}
		lits, ok := requiredLits(sub)
		if !ok {
			rest = append(rest, texts[i])
			continue
		}
		re, err := regexp.Compile(texts[i])
		if err != nil {
			return nil, false
		}
		b := branch{re: re}
		b.setLits(lits)
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, false
	}
	if len(rest) > 0 {
		re, err := regexp.Compile(strings.Join(rest, "|"))
		if err != nil {
			return nil, false
		}
		out = append(out, branch{re: re})
	}
	return out, true
}

// topLevelBranches splits expr at each "|" outside parentheses, classes
// and escapes. A leading flag group ("(?i)") is given to every branch; any
// other flag group, which holds until the end of its group, or \Q, stops
// the split.
func topLevelBranches(expr string) ([]string, bool) {
	prefix := ""
	if strings.HasPrefix(expr, "(?") {
		if end := strings.IndexByte(expr, ')'); end > 2 && !strings.ContainsAny(expr[2:end], ":(") {
			prefix, expr = expr[:end+1], expr[end+1:]
		}
	}
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(expr); i++ {
		switch expr[i] {
		case '\\':
			if i+1 < len(expr) && expr[i+1] == 'Q' {
				return nil, false
			}
			i++
		case '[':
			j := i + 1
			if j < len(expr) && expr[j] == '^' {
				j++
			}
			if j < len(expr) && expr[j] == ']' {
				j++
			}
			for j < len(expr) && expr[j] != ']' {
				switch expr[j] {
				case '\\':
					j++
				case '[':
					return nil, false // [:alpha:] in a class: not worth reading
				}
				j++
			}
			i = j
		case '(':
			if strings.HasPrefix(expr[i:], "(?") && !strings.HasPrefix(expr[i:], "(?:") && !strings.HasPrefix(expr[i:], "(?P<") && !strings.HasPrefix(expr[i:], "(?<") {
				return nil, false // a flag group
			}
			depth++
		case ')':
			depth--
		case '|':
			if depth == 0 {
				out = append(out, prefix+expr[start:i])
				start = i + 1
			}
		}
	}
	return append(out, prefix+expr[start:]), depth == 0
}

// sameRegexp is (*syntax.Regexp).Equal without capture numbers and names,
// which do not change what matches.
func sameRegexp(x, y *syntax.Regexp) bool {
	if x.Op != y.Op || x.Flags&syntax.NonGreedy != y.Flags&syntax.NonGreedy || len(x.Sub) != len(y.Sub) {
		return false
	}
	switch x.Op {
	case syntax.OpEndText:
		if x.Flags&syntax.WasDollar != y.Flags&syntax.WasDollar {
			return false
		}
	case syntax.OpLiteral, syntax.OpCharClass:
		if x.Flags&syntax.FoldCase != y.Flags&syntax.FoldCase || !slices.Equal(x.Rune, y.Rune) {
			return false
		}
	case syntax.OpRepeat:
		if x.Min != y.Min || x.Max != y.Max {
			return false
		}
	}
	for i := range x.Sub {
		if !sameRegexp(x.Sub[i], y.Sub[i]) {
			return false
		}
	}
	return true
}

// MatchString reports whether the regexp matches s.
func (p *pattern) MatchString(s string) bool {
	lower, ascii, folded := "", true, false
	for i := range p.branches {
		b := &p.branches[i]
		if b.lits != nil {
			if b.fold && !folded {
				folded = true
				ascii = isASCII(s)
				if ascii {
					lower = strings.ToLower(s)
				}
			}
			if !b.mayMatch(s, lower, ascii) {
				continue
			}
		}
		if b.re.MatchString(s) {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// mayMatch reports whether s (lower: s in lower case, when b.fold and s is
// ASCII) contains one of the literals.
func (b *branch) mayMatch(s, lower string, ascii bool) bool {
	if b.fold && !ascii {
		// A case-insensitive ASCII letter also matches non-ASCII runes
		// (K, the Kelvin sign, matches k): only pure ASCII is pre-checked.
		return true
	}
	for _, l := range b.lits {
		if l.fold && strings.Contains(lower, l.s) || !l.fold && strings.Contains(s, l.s) {
			return true
		}
	}
	return false
}

// maxLits bounds the literals a pattern checks before its regexp.
const maxLits = 32

// maxClass bounds the characters of a class read as literals.
const maxClass = 8

// requiredLits returns strings one of which every match of re contains,
// when re has them (see lits).
func requiredLits(re *syntax.Regexp) ([]lit, bool) {
	ls, _, ok := lits(re)
	return ls, ok
}

// lits returns strings one of which every match of re contains, and
// whether every match is exactly one of them: a literal (case-insensitive
// only when ASCII) or a small character class is exactly its strings; an
// alternation is any of its alternatives' strings; a concatenation is the
// most selective of its parts' strings, where consecutive exact parts
// combine into the strings they spell together; a part repeated at least
// once, or captured, contains its strings.
func lits(re *syntax.Regexp) (out []lit, exact, ok bool) {
	switch re.Op {
	case syntax.OpLiteral:
		fold := false
		for _, r := range re.Rune {
			if r == utf8.RuneError {
				return nil, false, false // invalid UTF-8 matches it too
			}
			if re.Flags&syntax.FoldCase != 0 && unicode.SimpleFold(r) != r {
				if r >= utf8.RuneSelf {
					return nil, false, false
				}
				fold = true
			}
		}
		if fold {
			return []lit{{s: strings.ToLower(string(re.Rune)), fold: true}}, true, true
		}
		return []lit{{s: string(re.Rune)}}, true, true
	case syntax.OpCharClass:
		n := 0
		for i := 0; i+1 < len(re.Rune); i += 2 {
			n += int(re.Rune[i+1]-re.Rune[i]) + 1
			if n > maxClass {
				return nil, false, false
			}
		}
		if n == 0 {
			return nil, false, false
		}
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if r == utf8.RuneError || !utf8.ValidRune(r) {
					return nil, false, false
				}
				out = append(out, lit{s: string(r)})
			}
		}
		return out, true, true
	case syntax.OpCapture:
		return lits(re.Sub[0])
	case syntax.OpPlus:
		ls, _, ok := lits(re.Sub[0])
		return ls, false, ok
	case syntax.OpRepeat:
		if re.Min >= 1 {
			ls, _, ok := lits(re.Sub[0])
			return ls, false, ok
		}
	case syntax.OpConcat:
		return concatLits(re.Sub)
	case syntax.OpAlternate:
		exact = true
		for _, sub := range re.Sub {
			ls, ex, ok := lits(sub)
			if !ok {
				return nil, false, false
			}
			exact = exact && ex
			for _, l := range ls {
				if !slices.Contains(out, l) {
					out = append(out, l)
				}
			}
		}
		if len(out) > maxLits {
			return nil, false, false
		}
		return out, exact, true
	}
	return nil, false, false
}

// concatLits is lits of a concatenation.
func concatLits(subs []*syntax.Regexp) ([]lit, bool, bool) {
	var best []lit
	found := false
	consider := func(ls []lit) {
		if !found || shortest(ls) > shortest(best) {
			best, found = ls, true
		}
	}
	var run []lit  // what the latest exact parts spell together
	runAll := true // and they are all the parts so far
	for _, sub := range subs {
		ls, ex, ok := lits(sub)
		if !ok || !ex {
			if ok {
				consider(ls)
			}
			run, runAll = nil, false
			continue
		}
		if run != nil && len(run)*len(ls) <= maxLits {
			run = product(run, ls)
		} else {
			if run != nil {
				runAll = false
			}
			run = ls
		}
		consider(run)
	}
	if runAll && run != nil {
		return run, true, true // the concatenation matches exactly these
	}
	return best, false, found
}

// product returns every string of a followed by one of b; a pair with a
// case-insensitive part is case-insensitive (a weaker condition).
func product(a, b []lit) []lit {
	out := make([]lit, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			l := lit{s: x.s + y.s, fold: x.fold || y.fold}
			if l.fold {
				l.s = strings.ToLower(l.s)
			}
			if !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	return out
}

func shortest(lits []lit) int {
	n := -1
	for _, l := range lits {
		if n < 0 || len(l.s) < n {
			n = len(l.s)
		}
	}
	return n
}
