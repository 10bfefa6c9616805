package sqlstmt

import (
	"slices"
	"strconv"
	"strings"
)

// Rewriter turns a query written once for both backends into one backend's SQL. Queries are written with
// `?` placeholders and with table names marked `~table` (or listed in Tables); the rewriter
//
//   - puts Prefix before each marked table (`"it0_t_acme".` on PostgreSQL, nothing on SQLite),
//   - with Dollar, numbers the placeholders `$1`, `$2`… (PostgreSQL),
//   - writes `??` as a literal `?`, for PostgreSQL's JSON operators (`data ?? 'key'`, `??|`, `??&`),
//
// and leaves everything else alone: string literals ('…', E'…' with backslash escapes), quoted
// identifiers ("…"), dollar-quoted strings ($tag$…$tag$), comments (-- and /* */), and `~` used as an
// operator (`col ~ 'regex'`, `!~`, `~*`). A `~` is a table marker only when an identifier follows it
// directly and it does not follow an operand (an identifier, a number, `)` or a quote), so `a ~ b` and
// `a~b` stay operators.
type Rewriter struct {
	Prefix string
	Tables []string // bare table names qualified like ~table (the jobs runner's `jobs`)
	Dollar bool
}

// Rewrite returns q in the rewriter's dialect.
func (rw Rewriter) Rewrite(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 32)
	n := 0
	operand := false // the previous token ends an operand, so a following `~` is an operator
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'':
			end := quotedEnd(q, i, '\'', i > 0 && (q[i-1] == 'E' || q[i-1] == 'e') && !(i > 1 && isIdent(q[i-2])))
			b.WriteString(q[i:end])
			i, operand = end, true
		case c == '"':
			end := quotedEnd(q, i, '"', false)
			b.WriteString(q[i:end])
			i, operand = end, true
		case c == '-' && strings.HasPrefix(q[i:], "--"):
			end := strings.IndexByte(q[i:], '\n')
			if end < 0 {
				end = len(q) - i
			}
			b.WriteString(q[i : i+end])
			i += end
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				end = len(q) - i
			} else {
				end += 4
			}
			b.WriteString(q[i : i+end])
			i += end
		case c == '$' && !operand:
			if tag, ok := dollarTag(q[i:]); ok {
				end := strings.Index(q[i+len(tag):], tag)
				if end < 0 {
					end = len(q) - i
				} else {
					end += 2 * len(tag)
				}
				b.WriteString(q[i : i+end])
				i, operand = i+end, true
				continue
			}
			b.WriteByte(c)
			i++
		case c == '?':
			if i+1 < len(q) && q[i+1] == '?' {
				b.WriteByte('?')
				i += 2
				operand = false
				continue
			}
			if rw.Dollar {
				n++
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(n))
			} else {
				b.WriteByte('?')
			}
			i++
			operand = true
		case c == '~' && !operand && i+1 < len(q) && isIdentStart(q[i+1]):
			b.WriteString(rw.Prefix)
			i++
		case isIdentStart(c):
			end := i + 1
			for end < len(q) && isIdent(q[end]) {
				end++
			}
			word := q[i:end]
			if rw.Prefix != "" && slices.Contains(rw.Tables, word) && (i == 0 || q[i-1] != '.') {
				b.WriteString(rw.Prefix)
			}
			b.WriteString(word)
			i, operand = end, true
		case c >= '0' && c <= '9':
			end := i + 1
			for end < len(q) && (isIdent(q[end]) || q[end] == '.') {
				end++
			}
			b.WriteString(q[i:end])
			i, operand = end, true
		default:
			b.WriteByte(c)
			i++
			operand = c == ')' || c == ']'
		}
	}
	return b.String()
}

// quotedEnd returns the index just past the quoted text starting at q[start] (which is quote). A doubled
// quote is an escaped one; with backslashes (E'…'), \' is too. An unterminated quote runs to the end.
func quotedEnd(q string, start int, quote byte, backslashes bool) int {
	for i := start + 1; i < len(q); i++ {
		switch q[i] {
		case '\\':
			if backslashes {
				i++
			}
		case quote:
			if i+1 < len(q) && q[i+1] == quote {
				i++
				continue
			}
			return i + 1
		}
	}
	return len(q)
}

// dollarTag returns the opening tag of a dollar-quoted string at the start of s ($$ or $name$).
func dollarTag(s string) (string, bool) {
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '$':
			return s[:i+1], true
		case isIdent(c) && !(i == 1 && c >= '0' && c <= '9'):
		default:
			return "", false
		}
	}
	return "", false
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isIdent(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') || c == '$' }
