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

// requiredLits returns strings one of which every match of re contains,
// when re has them: a literal (case-insensitive ones only when ASCII); any
// of each alternative's; the most selective of a concatenation's parts; a
// repeated (at least once) or captured part's.
func requiredLits(re *syntax.Regexp) ([]lit, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		fold := false
		for _, r := range re.Rune {
			if r == utf8.RuneError {
				return nil, false // invalid UTF-8 matches it too
			}
			if re.Flags&syntax.FoldCase != 0 && unicode.SimpleFold(r) != r {
				if r >= utf8.RuneSelf {
					return nil, false
				}
				fold = true
			}
		}
		if fold {
			return []lit{{s: strings.ToLower(string(re.Rune)), fold: true}}, true
		}
		return []lit{{s: string(re.Rune)}}, true
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLits(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLits(re.Sub[0])
		}
	case syntax.OpConcat:
		var best []lit
		found := false
		for _, sub := range re.Sub {
			if lits, ok := requiredLits(sub); ok && (!found || shortest(lits) > shortest(best)) {
				best, found = lits, true
			}
		}
		return best, found
	case syntax.OpAlternate:
		var all []lit
		for _, sub := range re.Sub {
			lits, ok := requiredLits(sub)
			if !ok {
				return nil, false
			}
			for _, l := range lits {
				if !slices.Contains(all, l) {
					all = append(all, l)
				}
			}
		}
		if len(all) > maxLits {
			return nil, false
		}
		return all, true
	}
	return nil, false
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
