package guard

import (
	"path"
	"strings"
)

// globMatch reports whether s matches pat, where '*' matches any run of
// characters (including '/'), '?' matches one character and '\' makes the
// next character literal. Rule authors write "/etc/*" to mean "under /etc".
func globMatch(pat, s string) bool {
	var px, sx, nextPx, nextSx int
	star := false
	for px < len(pat) || sx < len(s) {
		if px < len(pat) {
			c := pat[px]
			switch c {
			case '*':
				star, nextPx, nextSx = true, px, sx+1
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			case '\\':
				if px+1 < len(pat) && sx < len(s) && s[sx] == pat[px+1] {
					px += 2
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if star && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}

func anyGlob(pats []string, s string) bool {
	for _, p := range pats {
		if globMatch(p, s) {
			return true
		}
	}
	return false
}

// isGlob reports whether an operand holds shell glob characters.
func isGlob(s string) bool { return strings.ContainsAny(s, "*?[") }

// globsMeet reports whether operand glob a (a shell glob: "*" does not match
// "/", nor a leading "." of a name) and rule glob b ("*" matches anything)
// match a common path, so a glob operand is judged as every path it may
// expand to: rm /etc/* deletes /etc/passwd, cat ~/.ssh/* reads ~/.ssh/id_rsa.
func globsMeet(a, b string) bool {
	if len(a) > maxText || len(b) > maxText || !fixedEndsMeet(a, b) {
		return false
	}
	var buf [1024]bool
	m := meeter{a: a, b: b, w: len(b) + 1}
	if n := 2 * (len(a) + 1) * m.w; n <= len(buf) {
		m.seen = buf[:n]
	} else {
		m.seen = make([]bool, n)
	}
	return m.meet(0, 0, false)
}

// meeter searches the states (i, j, mid) of globsMeet: a[i:] and b[j:] may
// still match a common string; mid says the operand's star at i has already
// matched something. seen marks states known not to meet.
type meeter struct {
	a, b string
	w    int
	seen []bool
}

func (m *meeter) meet(i, j int, mid bool) bool {
	a, b := m.a, m.b
	k := i*m.w + j
	if mid {
		k += (len(a) + 1) * m.w
	}
	if m.seen[k] {
		return false
	}
	m.seen[k] = true
	switch {
	case i == len(a) && j == len(b):
		return true
	case i < len(a) && a[i] == '*':
		if m.meet(i+1, j, false) {
			return true
		}
		if j == len(b) {
			return false
		}
		if b[j] == '*' { // b's star stands for characters a's star may match
			return m.meet(i, j+1, true)
		}
		startOfName := !mid && (i == 0 || a[i-1] == '/')
		return b[j] != '/' && !(startOfName && b[j] == '.') && m.meet(i, j+1, true)
	case j < len(b) && b[j] == '*':
		return m.meet(i, j+1, false) || i < len(a) && m.meet(i+1, j, false)
	case i == len(a) || j == len(b):
		return false
	}
	ca, cb := a[i], b[j]
	ni, nj := i+1, j+1
	if ca == '\\' && ni < len(a) {
		ca, ni = a[ni], ni+1
	}
	if cb == '\\' && nj < len(b) {
		cb, nj = b[nj], nj+1
	}
	if (ca == '?' && cb != '/') || cb == '?' && ca != '/' || ca == cb {
		return m.meet(ni, nj, false)
	}
	return false
}

// fixedEndsMeet is globsMeet's quick test: the number of "/" must allow a
// match, and the literal text before the first and after the last wildcard
// of each glob must agree (one a prefix, or suffix, of the other). It
// rejects most pairs without a search.
func fixedEndsMeet(a, b string) bool {
	// a's wildcards never make a "/": each "/" of b is one of a's, and when b
	// has no star to make more, a has no other.
	na, nb := strings.Count(a, "/"), strings.Count(b, "/")
	if nb > na || nb < na && strings.IndexByte(b, '*') < 0 {
		return false
	}
	pa, pb := a[:wildIndex(a)], b[:wildIndex(b)]
	if !strings.HasPrefix(pa, pb) && !strings.HasPrefix(pb, pa) {
		return false
	}
	sa, sb := a[lastWildIndex(a)+1:], b[lastWildIndex(b)+1:]
	return strings.HasSuffix(sa, sb) || strings.HasSuffix(sb, sa)
}

// wildIndex is the index of the first wildcard or escape in g, or len(g).
func wildIndex(g string) int {
	if i := strings.IndexAny(g, "*?[\\"); i >= 0 {
		return i
	}
	return len(g)
}

// lastWildIndex is the index of the last wildcard or escape in g, or -1.
func lastWildIndex(g string) int { return strings.LastIndexAny(g, "*?[\\") }

// pathMatch reports whether operand o names a path the globs cover: o
// itself, o resolved against the working directory a cd set, and, for a glob
// operand, any path it may expand to.
func pathMatch(globs []string, o, cwd string) bool {
	c, r := candidates(o, cwd)
	return pathMatch1(globs, c) || (r != "" && pathMatch1(globs, r))
}

func pathMatch1(globs []string, c string) bool {
	if anyGlob(globs, c) {
		return true
	}
	if isGlob(c) && (c[0] == '/' || c[0] == '~') {
		for _, g := range globs {
			// Rules about unexpanded variables ("$*") are not about paths.
			if strings.IndexByte(g, '$') < 0 && globsMeet(c, g) {
				return true
			}
		}
	}
	return false
}

// cwdUnknown is the working directory after a cd the guard cannot follow.
const cwdUnknown = "\x00?"

// candidates returns the paths operand o may name: o cleaned, and when a cd
// came before, o resolved against it (else ""). After a cd to a directory
// the guard cannot know, a relative path is judged as if the directory were
// / (the worst case).
func candidates(o, cwd string) (clean, resolved string) {
	c := cleanPath(o)
	if cwd == "" || o == "" {
		return c, ""
	}
	switch o[0] {
	case '/', '~', '$', '-':
		return c, ""
	}
	base := cwd
	if cwd == cwdUnknown {
		base = "/"
	}
	if r := path.Join(base, o); r != c {
		return c, r
	}
	return c, ""
}

// cleanPath normalises a path-like operand so "//", "/./etc/../" and "/etc/"
// cannot dodge a rule. Other words are returned unchanged.
func cleanPath(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '/', '~', '.', '$':
		return path.Clean(s)
	}
	return s
}

// parsed is an argument list split into flags and operands.
type parsed struct {
	flags    []string
	operands []string
	opIdx    []int  // index of each operand in the input
	cwd      string // where a cd in the same command went ("" none, cwdUnknown)
}

func isFlag(v string) bool { return len(v) > 1 && v[0] == '-' }

// takesValue reports whether flag word v consumes the next argument.
func (c *command) takesValue(v string) bool {
	if c.valueFlags[v] {
		return true
	}
	if strings.HasPrefix(v, "--") || strings.Contains(v, "=") {
		return false
	}
	// Combined short flags: "-xzf file" takes a value when its last letter does.
	if len(v) > 2 && v[1] != '-' {
		return c.valueFlags["-"+v[len(v)-1:]]
	}
	return false
}

// parse splits args (without the program name) GNU-style: flags may appear
// anywhere until "--".
func (c *command) parse(args []word) parsed {
	var p parsed
	dd := false
	for i := 0; i < len(args); i++ {
		v := args[i].val
		if !dd && v == "--" {
			dd = true
			continue
		}
		if !dd && isFlag(v) {
			p.flags = append(p.flags, v)
			if c.takesValue(v) {
				i++
			}
			continue
		}
		p.operands = append(p.operands, v)
		p.opIdx = append(p.opIdx, i)
	}
	return p
}

func hasFlag(flags []string, f string) bool {
	short := len(f) == 2 && f[0] == '-' && f[1] != '-'
	for _, w := range flags {
		if w == f || strings.HasPrefix(w, f+"=") {
			return true
		}
		if short && len(w) > 2 && w[1] != '-' && strings.IndexByte(w[1:], f[1]) >= 0 {
			return true
		}
	}
	return false
}

func (r *rule) match(p parsed, args []word, joined string) bool {
	if len(r.sub) > 0 {
		ok := false
		for _, s := range r.sub {
			if len(p.operands) < len(s) {
				continue
			}
			ok = true
			for i, w := range s {
				if !globMatch(w, strings.ToLower(p.operands[i])) {
					ok = false
					break
				}
			}
			if ok {
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.flags) > 0 {
		ok := false
		for _, f := range r.flags {
			if hasFlag(p.flags, f) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.args) > 0 {
		ok := false
		for _, a := range args {
			if anyGlob(r.args, a.val) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.operands) > 0 {
		ok := false
		for _, o := range p.operands {
			if pathMatch(r.operands, o, p.cwd) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.last) > 0 {
		if len(p.operands) == 0 || !pathMatch(r.last, p.operands[len(p.operands)-1], p.cwd) {
			return false
		}
	}
	if r.noOperands && len(p.operands) > 0 {
		return false
	}
	if r.re != nil && !r.re.MatchString(joined) {
		return false
	}
	return true
}

// evaluate applies every layer of rules: in the shipped layer the highest
// matching rule wins, or the command's default when none matches; tenant
// layers and the tenant floor can only raise the result.
//
// It also reports whether a shipped rule matched and whether a matching
// rule says the wrapper does not run its operands (command -v).
func (c *command) evaluate(p parsed, args []word) (out []outcome, matched, noexec bool) {
	joined := rawJoin(args)
	for li, layer := range c.layers {
		m := false
		for i := range layer {
			if layer[i].match(p, args, joined) {
				out = append(out, layer[i].outcome)
				m = true
				noexec = noexec || layer[i].noexec
			}
		}
		if li == 0 {
			matched = m
			if !m {
				out = append(out, c.def)
			}
		}
	}
	if c.floor.Rule != "" {
		out = append(out, c.floor)
	}
	return out, matched, noexec
}
