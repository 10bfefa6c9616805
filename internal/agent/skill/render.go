package skill

import (
	"strconv"
	"strings"
)

// Render returns the body as the model sees it when the skill is invoked with args (the text typed
// after /name). It substitutes, in one left-to-right pass so that substituted text is never expanded
// again:
//
//   - $ARGUMENTS: the whole argument string, trimmed of surrounding space;
//   - $ARGUMENTS[N] and $N: the N-th argument, 0-based, after shell-style splitting (SplitArgs);
//   - $name for each name listed in the arguments field: the argument at that position;
//   - ${CLAUDE_SESSION_ID} and ${CLAUDE_SKILL_DIR}: sessionID and skillDir.
//
// A positional placeholder with no matching argument (a $2 when one argument was given) stays as
// literal text, as in current Claude Code. When the body holds no argument placeholder at all and args
// is not empty, a final line "ARGUMENTS: <args>" is appended so the arguments still reach the model.
func (s *Skill) Render(args, sessionID, skillDir string) string {
	argv := SplitArgs(args)
	whole := strings.TrimSpace(args)
	body := s.Body
	var b strings.Builder
	b.Grow(len(body) + len(whole))
	placeholder := false
	for i := 0; i < len(body); {
		j := strings.IndexByte(body[i:], '$')
		if j < 0 {
			b.WriteString(body[i:])
			break
		}
		b.WriteString(body[i : i+j])
		i += j
		rest := body[i:]
		n, out, isArg := s.expand(rest, argv, whole, sessionID, skillDir)
		if n == 0 {
			b.WriteByte('$')
			i++
			continue
		}
		placeholder = placeholder || isArg
		b.WriteString(out)
		i += n
	}
	if !placeholder && whole != "" {
		out := strings.TrimRight(b.String(), "\n")
		if out != "" {
			out += "\n\n"
		}
		return out + "ARGUMENTS: " + whole + "\n"
	}
	return b.String()
}

// expand looks at a "$…" token at the start of rest. It returns how many bytes it consumed (0: not a
// token), the replacement, and whether it was an argument placeholder.
func (s *Skill) expand(rest string, argv []string, whole, sessionID, skillDir string) (int, string, bool) {
	const (
		sess = "${CLAUDE_SESSION_ID}"
		dir  = "${CLAUDE_SKILL_DIR}"
		args = "$ARGUMENTS"
	)
	positional := func(n int, idx string) (int, string, bool) {
		k, err := strconv.Atoi(idx)
		if err != nil || k >= len(argv) {
			return n, rest[:n], true // unmatched: left as written
		}
		return n, argv[k], true
	}
	switch {
	case strings.HasPrefix(rest, sess):
		return len(sess), sessionID, false
	case strings.HasPrefix(rest, dir):
		return len(dir), skillDir, false
	case strings.HasPrefix(rest, args):
		if tail := rest[len(args):]; strings.HasPrefix(tail, "[") {
			if d := digits(tail[1:]); d > 0 && d+1 < len(tail) && tail[d+1] == ']' {
				return positional(len(args)+d+2, tail[1:d+1])
			}
		}
		if len(rest) > len(args) && isIdent(rest[len(args)]) {
			return 0, "", false // $ARGUMENTSX is someone else's variable
		}
		return len(args), whole, true
	case len(rest) > 1 && rest[1] >= '0' && rest[1] <= '9':
		d := digits(rest[1:])
		return positional(1+d, rest[1:1+d])
	}
	for k, name := range s.Arguments {
		if name == "" || !strings.HasPrefix(rest[1:], name) {
			continue
		}
		end := 1 + len(name)
		if end < len(rest) && isIdent(rest[end]) {
			continue
		}
		if k < len(argv) {
			return end, argv[k], true
		}
		return end, rest[:end], true
	}
	return 0, "", false
}

func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// SplitArgs splits an argument string the way a POSIX shell splits words, without expansions: blanks
// separate arguments, 'single quotes' keep everything literally, "double quotes" keep blanks and honour
// \" \\ \$ and \`, and a backslash outside quotes escapes the next character. An unterminated quote
// runs to the end of the string. Quotes are removed; "" gives an empty argument.
func SplitArgs(s string) []string {
	var out []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			inWord = true
			if i+1 < len(s) {
				i++
				if s[i] != '\n' { // backslash-newline is a line continuation
					cur.WriteByte(s[i])
				}
			} else {
				cur.WriteByte(c)
			}
		case c == '\'':
			inWord = true
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				cur.WriteString(s[i+1:])
				i = len(s)
				break
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case c == '"':
			inWord = true
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}
