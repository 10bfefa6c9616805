package guard

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// pattern is a rule's regexp with a cheap necessary condition: most rule
// regexps cannot match unless the text contains one of a few literal
// strings ("--privileged", "prune", "drop" …), and strings.Contains rejects
// the usual text much faster than the regexp's backtracker does.
type pattern struct {
	re *regexp.Regexp
	// lits: a text the regexp matches contains one of them; nil when the
	// regexp has no such literals.
	lits []lit
	fold bool // some lit is case-insensitive
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
	p := &pattern{re: re}
	// regexp.Compile parses with syntax.Perl.
	if tree, err := syntax.Parse(expr, syntax.Perl); err == nil {
		if lits, ok := requiredLits(tree); ok {
			p.lits = lits
			for _, l := range lits {
				p.fold = p.fold || l.fold
			}
		}
	}
	return p, nil
}

// MatchString reports whether the regexp matches s.
func (p *pattern) MatchString(s string) bool {
	if p.lits != nil && !p.mayMatch(s) {
		return false
	}
	return p.re.MatchString(s)
}

// mayMatch reports whether s contains one of the literals.
func (p *pattern) mayMatch(s string) bool {
	lower := ""
	if p.fold {
		// A case-insensitive ASCII letter also matches non-ASCII runes
		// (K, the Kelvin sign, matches k): only pure ASCII is pre-checked.
		for i := 0; i < len(s); i++ {
			if s[i] >= utf8.RuneSelf {
				return true
			}
		}
		lower = strings.ToLower(s)
	}
	for _, l := range p.lits {
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
