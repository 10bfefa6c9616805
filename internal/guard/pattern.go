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
// strings ("--privileged", "prune" …), and strings.Contains rejects the
// usual text much faster than the regexp's backtracker does.
type pattern struct {
	re *regexp.Regexp
	// lits: a text the regexp matches contains one of them; nil when the
	// regexp has no such literals.
	lits []string
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
		}
	}
	return p, nil
}

// MatchString reports whether the regexp matches s.
func (p *pattern) MatchString(s string) bool {
	if p.lits != nil && !containsAny(s, p.lits) {
		return false
	}
	return p.re.MatchString(s)
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// maxLits bounds the literals a pattern checks before its regexp.
const maxLits = 16

// requiredLits returns strings one of which every match of re contains,
// when re has them: a case-sensitive literal; any of each alternative's; the
// most selective of a concatenation's parts; a repeated (at least once) or
// captured part's.
func requiredLits(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if r == utf8.RuneError || re.Flags&syntax.FoldCase != 0 && unicode.SimpleFold(r) != r {
				return nil, false // invalid UTF-8 matches it; other runes fold to it
			}
		}
		return []string{string(re.Rune)}, true
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLits(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLits(re.Sub[0])
		}
	case syntax.OpConcat:
		var best []string
		found := false
		for _, sub := range re.Sub {
			if lits, ok := requiredLits(sub); ok && (!found || shortest(lits) > shortest(best)) {
				best, found = lits, true
			}
		}
		return best, found
	case syntax.OpAlternate:
		var all []string
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

func shortest(lits []string) int {
	n := -1
	for _, l := range lits {
		if n < 0 || len(l) < n {
			n = len(l)
		}
	}
	return n
}
