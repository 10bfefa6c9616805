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

// glob is a rule pattern (see globMatch) compiled when the rules load, so
// matching an operand against a list of them mostly compares a prefix.
type glob struct {
	pat string
	// exact is set when pat has no '*', '?' or '': it matches only itself.
	exact bool
	// pre and suf are pat's literal text before its first and after its
	// last '*', '?' or '': every string it matches starts with pre and
	// ends with suf, and is at least as long as both.
	pre, suf string
	// dollar is set when pat names an unexpanded variable ("$*"): such a
	// rule is not about paths, so glob operands are not met with it.
	dollar bool
	ends   globEnds
}

func compileGlob(pat string) glob {
	g := glob{pat: pat, dollar: strings.IndexByte(pat, '$') >= 0, ends: endsOf(pat)}
	first := strings.IndexAny(pat, "*?\\")
	if first < 0 {
		g.exact, g.pre = true, pat
		return g
	}
	g.pre, g.suf = pat[:first], pat[strings.LastIndexAny(pat, "*?\\")+1:]
	return g
}

func compileGlobs(pats []string) []glob {
	if len(pats) == 0 {
		return nil
	}
	out := make([]glob, len(pats))
	for i, p := range pats {
		out[i] = compileGlob(p)
	}
	return out
}

// match reports whether s matches the pattern (globMatch).
func (g *glob) match(s string) bool {
	if g.exact {
		return s == g.pat
	}
	if len(s) < len(g.pre)+len(g.suf) || !strings.HasPrefix(s, g.pre) || !strings.HasSuffix(s, g.suf) {
		return false
	}
	return globMatch(g.pat, s)
}

// globSet is a rule's list of globs with a quick test that rejects most
// strings none of them matches: by the first byte of each glob's literal
// prefix or, for a glob without one, the last byte of its literal suffix.
type globSet struct {
	globs []glob
	// first and last hold those bytes; free is set when some glob has
	// neither (it may match anything).
	first, last byteSet
	free        bool
}

type byteSet [4]uint64

func (b *byteSet) add(c byte)      { b[c>>6] |= 1 << (c & 63) }
func (b *byteSet) has(c byte) bool { return b[c>>6]&(1<<(c&63)) != 0 }

// newGlobSet compiles pats; it returns nil for none.
func newGlobSet(pats []string) *globSet {
	if len(pats) == 0 {
		return nil
	}
	gs := &globSet{globs: compileGlobs(pats)}
	for i := range gs.globs {
		switch g := &gs.globs[i]; {
		case g.pre != "":
			gs.first.add(g.pre[0])
		case g.suf != "":
			gs.last.add(g.suf[len(g.suf)-1])
		default:
			gs.free = true
		}
	}
	return gs
}

// match reports whether some glob matches s.
func (gs *globSet) match(s string) bool {
	if !gs.free && (s == "" || !gs.first.has(s[0]) && !gs.last.has(s[len(s)-1])) {
		return false
	}
	return anyGlob(gs.globs, s)
}

func anyGlob(gs []glob, s string) bool {
	for i := range gs {
		if gs[i].match(s) {
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
	return globsMeetEnds(a, endsOf(a), b, endsOf(b))
}

// globsMeetEnds is globsMeet with both globs' ends already known.
func globsMeetEnds(a string, ea globEnds, b string, eb globEnds) bool {
	if len(a) > maxText || len(b) > maxText || !fixedEndsMeet(ea, eb) {
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

// globEnds is what globsMeet's quick test needs to know of a glob.
type globEnds struct {
	slashes int
	star    bool
	// pre and suf are the literal text before the first and after the last
	// wildcard or escape.
	pre, suf string
}

func endsOf(g string) globEnds {
	return globEnds{
		slashes: strings.Count(g, "/"),
		star:    strings.IndexByte(g, '*') >= 0,
		pre:     g[:wildIndex(g)],
		suf:     g[lastWildIndex(g)+1:],
	}
}

// fixedEndsMeet is globsMeet's quick test: the number of "/" must allow a
// match, and the literal text before the first and after the last wildcard
// of each glob must agree (one a prefix, or suffix, of the other). It
// rejects most pairs without a search.
func fixedEndsMeet(a, b globEnds) bool {
	// a's wildcards never make a "/": each "/" of b is one of a's, and when b
	// has no star to make more, a has no other.
	if b.slashes > a.slashes || b.slashes < a.slashes && !b.star {
		return false
	}
	if !strings.HasPrefix(a.pre, b.pre) && !strings.HasPrefix(b.pre, a.pre) {
		return false
	}
	return strings.HasSuffix(a.suf, b.suf) || strings.HasSuffix(b.suf, a.suf)
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

// target is an operand as path rules see it: the paths it may name (see
// candidates), computed once however many rules judge it.
type target struct {
	clean, resolved cand
}

// cand is one path an operand may name; a glob under / or ~ is also judged
// as every path it may expand to.
type cand struct {
	s    string
	glob bool
	ends globEnds
}

func newTarget(o, cwd string) target {
	c, r := candidates(o, cwd)
	return target{clean: newCand(c), resolved: newCand(r)}
}

func newCand(c string) cand {
	if isGlob(c) && (c[0] == '/' || c[0] == '~') {
		return cand{s: c, glob: true, ends: endsOf(c)}
	}
	return cand{s: c}
}

// match reports whether the operand names a path the globs cover: o
// itself, o resolved against the working directory a cd set, and, for a glob
// operand, any path it may expand to.
func (t *target) match(globs *globSet) bool {
	return t.clean.match(globs) || (t.resolved.s != "" && t.resolved.match(globs))
}

func (c *cand) match(globs *globSet) bool {
	if globs.match(c.s) {
		return true
	}
	if c.glob {
		for i := range globs.globs {
			// Rules about unexpanded variables ("$*") are not about paths.
			if g := &globs.globs[i]; !g.dollar && globsMeetEnds(c.s, c.ends, g.pat, g.ends) {
				return true
			}
		}
	}
	return false
}

// pathMatch reports whether operand o, after a cd to cwd, names a path the
// globs cover (see target.match).
func pathMatch(globs *globSet, o, cwd string) bool {
	t := newTarget(o, cwd)
	return t.match(globs)
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
	// targets caches the operands as path rules see them (target), and
	// lowers in lower case (sub rules), filled on first use: set operands
	// and cwd before.
	targets []target
	lowers  []string
}

// lower returns operand i in lower case.
func (p *parsed) lower(i int) string {
	if p.lowers == nil {
		p.lowers = make([]string, len(p.operands))
		for k, o := range p.operands {
			p.lowers[k] = strings.ToLower(o)
		}
	}
	return p.lowers[i]
}

// target returns operand i as path rules see it.
func (p *parsed) target(i int) *target {
	if p.targets == nil {
		p.targets = make([]target, len(p.operands))
		for k, o := range p.operands {
			p.targets[k] = newTarget(o, p.cwd)
		}
	}
	return &p.targets[i]
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
			if p.flags == nil {
				p.flags = make([]string, 0, len(args)-i)
			}
			p.flags = append(p.flags, v)
			if c.takesValue(v) {
				i++
			}
			continue
		}
		if p.operands == nil {
			p.operands, p.opIdx = make([]string, 0, len(args)-i), make([]int, 0, len(args)-i)
		}
		p.operands = append(p.operands, v)
		p.opIdx = append(p.opIdx, i)
	}
	return p
}

func hasFlag(flags []string, f string) bool {
	short := len(f) == 2 && f[0] == '-' && f[1] != '-'
	for _, w := range flags {
		if w == f || len(w) > len(f) && w[len(f)] == '=' && strings.HasPrefix(w, f) { // f or f=…
			return true
		}
		if short && len(w) > 2 && w[1] != '-' && strings.IndexByte(w[1:], f[1]) >= 0 {
			return true
		}
	}
	return false
}

func (r *rule) match(p *parsed, args *argList) bool {
	if len(r.sub) > 0 {
		ok := false
		for _, s := range r.sub {
			if len(p.operands) < len(s) {
				continue
			}
			ok = true
			for i := range s {
				if !s[i].match(p.lower(i)) {
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
	if r.args != nil {
		ok := false
		for _, a := range args.words {
			if r.args.match(a.val) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if r.operands != nil {
		ok := false
		for i := range p.operands {
			if p.target(i).match(r.operands) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if r.last != nil {
		if len(p.operands) == 0 || !p.target(len(p.operands)-1).match(r.last) {
			return false
		}
	}
	if r.noOperands && len(p.operands) > 0 {
		return false
	}
	if r.re != nil && !r.re.MatchString(args.joined()) {
		return false
	}
	return true
}

// argList is a command's arguments with their space-joined text, built
// only when a rule's regex needs it.
type argList struct {
	words []word
	text  string
	done  bool
}

func (a *argList) joined() string {
	if !a.done {
		a.text, a.done = rawJoin(a.words), true
	}
	return a.text
}

// evaluate applies every layer of a command's rules and adds their outcomes
// to the matches as text: in the shipped layer the highest matching rule
// wins, or the command's default when none matches; tenant layers and the
// tenant floor can only raise the result.
//
// It also reports whether a shipped rule matched and whether a matching
// rule says the wrapper does not run its operands (command -v).
func (s *state) evaluate(c *command, p *parsed, args []word, text string) (matched, noexec bool) {
	al := argList{words: args}
	for li, layer := range c.layers {
		m := false
		for i := range layer {
			if layer[i].match(p, &al) {
				s.add(text, layer[i].outcome)
				m = true
				noexec = noexec || layer[i].noexec
			}
		}
		if li == 0 {
			matched = m
			if !m {
				s.add(text, c.def)
			}
		}
	}
	if c.floor.Rule != "" {
		s.add(text, c.floor)
	}
	return matched, noexec
}
