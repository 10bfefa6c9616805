package guard

import (
	"encoding/base64"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"mvdan.cc/sh/v3/syntax"

	opsconfig "github.com/it0/it0/ops-config"
)

const (
	// maxInput bounds the size of a command the guard will read; longer input
	// is refused at the too_deep level rather than parsed.
	maxInput = 256 << 10
	// maxDepth bounds nested interpreters (bash -c 'ssh h "sh -c …"').
	maxDepth = 8
	// maxParses bounds the total number of nested parses per Classify call.
	maxParses = 64
	// maxCommands bounds the simple commands judged per Classify call
	// (find -exec substitutes each root, so nesting multiplies work).
	maxCommands = 4096
	// maxText bounds the command text stored in a Match.
	maxText = 200
)

// parsers reuses bash parsers (and their buffers) across Classify calls: a
// parser is most of a classification's allocations. The tree a parse returns
// does not refer to the parser.
var parsers = sync.Pool{New: func() any { return &pooledParser{p: syntax.NewParser(syntax.Variant(syntax.LangBash))} }}

// pooledParser is a parser with the reader it reads code from.
type pooledParser struct {
	p *syntax.Parser
	r strings.Reader
}

// Verdict is the guard's decision about one command, with its explanation.
type Verdict struct {
	// Level is the highest level of any match.
	Level Level `json:"level"`
	// Reason is a one-line human explanation of the deciding match.
	Reason string `json:"reason"`
	// Matches lists every sub-command and the rule that judged it.
	Matches []Match `json:"matches"`
	// Hosts lists the remote hosts the command reaches (ssh, scp, rsync).
	Hosts []string `json:"hosts,omitempty"`
	// Secret is set when the command reads credential material (shadow,
	// private keys, kubeconfigs …): its output must not reach the model or
	// the session's events unless an admin approved the read.
	Secret bool `json:"secret,omitempty"`
	// Raised says why the target set raised the level (blast radius), or is
	// empty when it did not.
	Raised string `json:"raised,omitempty"`
}

// Match is one sub-command and the rule that gave it a level.
type Match struct {
	// Command is the sub-command as the guard saw it (quotes removed).
	Command string `json:"command"`
	// Rule identifies the rule in risk-patterns.yaml (or the tenant file).
	Rule string `json:"rule"`
	// Level is the level this rule gives.
	Level Level `json:"level"`
	// Reason says why, for a person.
	Reason string `json:"reason"`
	// Secret marks a read of credential material.
	Secret bool `json:"secret,omitempty"`
}

// Classifier classifies shell commands with a rule set. It holds no mutable
// state and is safe for concurrent use.
type Classifier struct {
	rules *Rules
}

// NewClassifier returns a Classifier using r.
func NewClassifier(r *Rules) *Classifier { return &Classifier{rules: r} }

// Rules returns the classifier's rule set (for deriving tenant overrides).
func (c *Classifier) Rules() *Rules { return c.rules }

// Default returns a Classifier built from the shipped ops-config/risk-patterns.yaml.
func Default() (*Classifier, error) {
	r, err := LoadRules(opsconfig.RiskPatterns)
	if err != nil {
		return nil, fmt.Errorf("load shipped risk patterns: %w", err)
	}
	return NewClassifier(r), nil
}

// Classify parses command as bash and returns the highest level of every
// simple command in it, looking through wrappers (sudo, env, xargs, find
// -exec …) and into inline code (bash -c, ssh host '…', psql -c …). Code it
// cannot see is at least L2.
func (c *Classifier) Classify(command string) Verdict {
	s := &state{r: c.rules}
	if len(command) > maxInput {
		s.add(clip(command), c.rules.defaults.TooDeep)
	} else {
		s.shell(command, 0)
	}
	return s.verdict()
}

// ProtectedPath judges a file a tool wants to write (Claude Code's Write and
// Edit): the level the paths table of the rules gives it, or L0 when no entry
// matches. p should be absolute; "~/…" is matched as written.
func (c *Classifier) ProtectedPath(p string) Verdict {
	s := &state{r: c.rules}
	if o, ok := c.rules.pathLevel(p); ok {
		s.add(p, o)
	} else {
		s.add(p, outcome{Level: L0, Rule: "paths", Reason: "not a protected path"})
	}
	return s.verdict()
}

// pathLevel returns the highest level any paths layer gives p.
func (r *Rules) pathLevel(p string) (outcome, bool) { return tableLevel(r.paths, p, "") }

// tableLevel returns the highest level any layer of a path table gives p
// (first match per layer), p resolved against cwd.
func tableLevel(tables [][]pathRule, p, cwd string) (outcome, bool) {
	var best outcome
	found := false
	t := newTarget(p, cwd)
	for _, layer := range tables {
		for _, pr := range layer {
			if t.match(pr.globs) {
				if !found || pr.Level > best.Level {
					best = pr.outcome
				}
				found = true
				break
			}
		}
	}
	return best, found
}

// state accumulates matches during one Classify call.
type state struct {
	r       *Rules
	matches []Match
	hosts   []string
	parses  int
	argvs   int
	// funcs names the functions the code being walked defines; calling one
	// is not running an unknown program (its body is classified anyway).
	funcs []string
	// cwd is where a cd earlier in the command went: "" (none), an
	// absolute or ~ path, or cwdUnknown.
	cwd string
	// vars holds variables assigned a literal earlier in the command, and
	// varEnd where each stops being trusted (the end of its subshell).
	vars   map[string]string
	varEnd map[string]syntax.Pos
	// note is appended to the command text of matches (why a variant of
	// the command is judged).
	note string
}

func (s *state) add(cmd string, o outcome) {
	m := Match{Command: clip(cmd + s.note), Rule: o.Rule, Level: o.Level, Reason: o.Reason, Secret: o.Secret}
	if slices.Contains(s.matches, m) {
		return
	}
	if s.matches == nil {
		s.matches = make([]Match, 0, 4) // most commands have a few
	}
	s.matches = append(s.matches, m)
}

func (s *state) verdict() Verdict {
	v := Verdict{Level: L0, Matches: s.matches, Hosts: s.hosts}
	for _, m := range s.matches {
		v.Secret = v.Secret || m.Secret
	}
	if len(s.matches) == 0 {
		v.Reason = "no command"
		v.Matches = []Match{}
		return v
	}
	best := 0
	for i, m := range s.matches {
		if m.Level > s.matches[best].Level {
			best = i
		}
	}
	m := s.matches[best]
	v.Level = m.Level
	v.Reason = m.Command + ": " + m.Reason + " (rule " + m.Rule + ")"
	return v
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxText {
		cut := maxText
		for cut > 0 && (s[cut]&0xC0) == 0x80 {
			cut--
		}
		return s[:cut] + "…"
	}
	return s
}

// shell parses code as bash and classifies everything in it.
func (s *state) shell(code string, depth int) {
	s.parses++
	if depth > maxDepth || s.parses > maxParses {
		s.add(code, s.r.defaults.TooDeep)
		return
	}
	f, err := parse(code)
	if err != nil {
		o := s.r.defaults.ParseError
		o.Reason = fmt.Sprintf("%s: %v", o.Reason, err)
		s.add(code, o)
		return
	}
	// What the nested code defines, where it cds to and what it assigns
	// stays in it (restored below; not deferred, which costs on this hot
	// path: nothing here recovers from a panic).
	saved, savedCwd, savedVars, savedEnd := s.funcs, s.cwd, s.vars, s.varEnd
	s.funcs = nil
	var assigns map[*syntax.Stmt][]varDef
	if strings.IndexByte(code, '=') >= 0 {
		assigns = topAssigns(f)
	}
	// Variables of the enclosing code hold for all of this nested code.
	s.vars, s.varEnd = maps.Clone(s.vars), nil
	if assigns != nil {
		if s.vars == nil {
			s.vars = map[string]string{}
		}
		s.varEnd = map[string]syntax.Pos{}
	}
	if strings.Contains(code, "(") || strings.Contains(code, "function") {
		syntax.Walk(f, func(n syntax.Node) bool {
			if fd, ok := n.(*syntax.FuncDecl); ok && fd.Name != nil {
				s.funcs = append(s.funcs, fd.Name.Value)
			}
			return true
		})
	}
	syntax.Walk(f, func(n syntax.Node) bool {
		switch x := n.(type) {
		case *syntax.Stmt:
			if assigns != nil {
				s.scopeVars(x, assigns[x])
			}
			if ce, ok := x.Cmd.(*syntax.CallExpr); ok {
				s.call(ce, x, depth, nil)
			}
			for _, rd := range x.Redirs {
				s.redirect(rd)
			}
		case *syntax.BinaryCmd:
			if x.Op == syntax.Pipe || x.Op == syntax.PipeAll {
				s.pipe(x, depth)
			}
		case *syntax.FuncDecl:
			s.forkBomb(x)
		case *syntax.DeclClause:
			for _, a := range x.Args {
				s.assign(a)
			}
		}
		return true
	})
	s.funcs, s.cwd, s.vars, s.varEnd = saved, savedCwd, savedVars, savedEnd
}

// parse parses code as bash.
func parse(code string) (*syntax.File, error) {
	if f, ok := simpleParse(code); ok {
		return f, nil
	}
	pp := parsers.Get().(*pooledParser)
	pp.r.Reset(code)
	f, err := pp.p.Parse(&pp.r, "")
	pp.r.Reset("")
	parsers.Put(pp)
	return f, err
}

// unescape removes backslash quoting from a literal: outside double quotes
// every "\x" is x; inside, only \$ \` \" \\ and \newline are escapes.
func unescape(b *strings.Builder, s string, inDbl bool) {
	if strings.IndexByte(s, '\\') < 0 {
		b.WriteString(s)
		return
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		n := s[i+1]
		if n == '\n' {
			i++
			continue
		}
		if inDbl && !strings.ContainsRune("$`\"\\", rune(n)) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte(n)
		i++
	}
}

// ansiC decodes bash $'…' escapes, so $'\x72\x6d' is seen as "rm".
func ansiC(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch c := s[i]; c {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'a':
			b.WriteByte(7)
		case 'b':
			b.WriteByte(8)
		case 'e', 'E':
			b.WriteByte(27)
		case 'f':
			b.WriteByte(12)
		case 'v':
			b.WriteByte(11)
		case 'x', 'u', 'U':
			max := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
			j := i + 1
			for j < len(s) && j-i-1 < max && isHex(s[j]) {
				j++
			}
			if j == i+1 {
				b.WriteByte('\\')
				b.WriteByte(c)
				continue
			}
			n, _ := strconv.ParseUint(s[i+1:j], 16, 32)
			if c == 'x' {
				b.WriteByte(byte(n))
			} else {
				b.WriteRune(rune(n))
			}
			i = j - 1
		case '0', '1', '2', '3', '4', '5', '6', '7':
			j := i
			for j < len(s) && j-i < 3 && s[j] >= '0' && s[j] <= '7' {
				j++
			}
			n, _ := strconv.ParseUint(s[i:j], 8, 16)
			b.WriteByte(byte(n))
			i = j - 1
		case 'c':
			if i+1 < len(s) {
				b.WriteByte(s[i+1] & 0x1f)
				i++
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func join(ws []word) string {
	var b strings.Builder
	for i, w := range ws {
		if i > 0 {
			b.WriteByte(' ')
		}
		if w.val == "" || strings.ContainsAny(w.val, " \t\n;&|<>()'\"") {
			b.WriteString(syntaxQuote(w.val))
		} else {
			b.WriteString(w.val)
		}
	}
	return b.String()
}

// rawJoin joins word values with spaces, the way ssh, watch and eval
// concatenate their arguments before a shell parses them.
func rawJoin(ws []word) string {
	var b strings.Builder
	for i, w := range ws {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w.val)
	}
	return b.String()
}

func syntaxQuote(s string) string {
	if q, err := syntax.Quote(s, syntax.LangBash); err == nil {
		return q
	}
	return strconv.Quote(s)
}

func allLit(ws []word) bool {
	for _, w := range ws {
		if !w.lit {
			return false
		}
	}
	return true
}

// input describes what a command reads on stdin.
type input struct {
	code   string // the text, when known (here-doc, here-string, echo … |)
	known  bool
	lit    bool // code holds no expansions
	remote bool // comes from a download (curl … |, < <(wget …))
}

// stdinOf finds the here-doc, here-string or input redirection of a statement.
func (s *state) stdinOf(st *syntax.Stmt) *input {
	for _, rd := range st.Redirs {
		if rd.N != nil && rd.N.Value != "0" {
			continue
		}
		switch rd.Op {
		case syntax.Hdoc, syntax.DashHdoc:
			in := &input{known: true, lit: true}
			if rd.Hdoc != nil {
				in = s.inputOf(rd.Hdoc)
			}
			return in
		case syntax.WordHdoc:
			return s.inputOf(rd.Word)
		case syntax.RdrIn:
			if src, ok := procSubstSource(rd.Word); ok {
				return &input{code: src, known: true, lit: true}
			}
			return &input{remote: s.downloads(rd.Word)}
		}
	}
	return nil
}

// scopeVars forgets variables whose subshell ended before st and records
// the ones st assigns.
func (s *state) scopeVars(st *syntax.Stmt, defs []varDef) {
	for name, end := range s.varEnd {
		if end.IsValid() && end.Offset() <= st.Pos().Offset() {
			delete(s.vars, name)
			delete(s.varEnd, name)
		}
	}
	for _, d := range defs {
		s.vars[d.name], s.varEnd[d.name] = d.value, d.end
	}
}

// inputOf is what a here-doc or here-string feeds: its text, with command
// substitutions that print a literal replaced by what they print.
func (s *state) inputOf(w *syntax.Word) *input {
	r := renderEnv(w, s.vars)
	in := &input{code: r.val, known: true, lit: r.lit, remote: s.downloads(w)}
	if !r.lit {
		if v, ok := known(w, s.vars); ok {
			in.code, in.lit = v, true
		}
	}
	return in
}

// downloads reports whether node runs a download command anywhere inside.
func (s *state) downloads(node syntax.Node) bool {
	switch n := node.(type) {
	case nil:
		return false
	case *syntax.Word:
		if n == nil { // synthetic words (xargs input) have no node
			return false
		}
	case *syntax.Stmt:
		if n == nil {
			return false
		}
	}
	found := false
	syntax.Walk(node, func(n syntax.Node) bool {
		if found {
			return false
		}
		if ce, ok := n.(*syntax.CallExpr); ok && !portProbe(ce) {
			for _, a := range ce.Args {
				if w := render(a); w.lit && s.r.downloads[path.Base(w.val)] {
					found = true
					return false
				}
			}
		}
		return true
	})
	return found
}

// portProbe reports whether a call is netcat's port scan (nc -z): it sends
// and prints no data, so it downloads nothing.
func portProbe(ce *syntax.CallExpr) bool {
	if len(ce.Args) < 2 {
		return false
	}
	switch path.Base(ce.Args[0].Lit()) {
	case "nc", "ncat", "netcat":
	default:
		return false
	}
	probe := false
	for _, a := range ce.Args[1:] {
		v := a.Lit()
		if len(v) > 1 && v[0] == '-' && v[1] != '-' {
			if strings.ContainsAny(v, "elc") {
				return false // -e/-c run a program, -l listens
			}
			probe = probe || strings.IndexByte(v, 'z') > 0
		}
	}
	return probe
}

func (s *state) assign(a *syntax.Assign) {
	if a.Name != nil && s.r.env[a.Name.Value] {
		s.add(a.Name.Value+"=…", s.r.envRule)
	}
}

// call classifies one simple command; pipeIn describes what a pipeline feeds
// it (nil when it is not the consumer of a pipe).
func (s *state) call(ce *syntax.CallExpr, st *syntax.Stmt, depth int, pipeIn *input) {
	for _, a := range ce.Assigns {
		s.assign(a)
	}
	if len(ce.Args) == 0 {
		return
	}
	in := s.stdinOf(st)
	if in == nil {
		in = pipeIn
	}
	s.argv(wordsEnv(ce.Args, s.vars), in, depth)
}

// argv classifies one command given as a word list.
func (s *state) argv(a []word, in *input, depth int) {
	text := join(a)
	s.argvs++
	if s.argvs > maxCommands {
		s.add(text, s.r.defaults.TooDeep)
		return
	}
	if !a[0].lit {
		o := s.r.defaults.Dynamic
		if s.downloads(a[0].node) {
			o = s.r.defaults.RemoteCode
		}
		s.add(text, o)
		// $(echo rm) -rf /: when the name's output is knowable, judge the
		// command it makes too.
		if fields, ok := substOutput(a[0].node); ok && len(fields) > 0 {
			inner := make([]word, 0, len(fields)+len(a)-1)
			for _, f := range fields {
				inner = append(inner, word{val: f, lit: true})
			}
			s.argv(append(inner, a[1:]...), in, depth)
		}
		return
	}
	s.emptyVars(a, in, depth)
	name := a[0].val
	if i := strings.LastIndexByte(name, '/'); i >= 0 && i < len(name)-1 {
		name = name[i+1:]
	}
	switch name {
	case "cd", "pushd", "popd":
		s.chdir(name, a[1:])
	}
	cmd := s.r.commands[name]
	if cmd == nil {
		if slices.Contains(s.funcs, name) {
			s.add(text, outcome{Level: L0, Rule: "function", Reason: "calls a function defined in this command (its body is judged)"})
			return
		}
		s.add(text, s.r.defaults.Unknown)
		return
	}
	rest := a[1:]
	for cmd.children {
		p := cmd.parse(rest)
		var child *command
		n := 0
		for k := min(2, len(p.operands)); k > 0 && child == nil; k-- {
			key := cmd.name + " " + strings.ToLower(strings.Join(p.operands[:k], " "))
			if c := s.r.commands[key]; c != nil {
				child, n = c, k
			}
		}
		if child == nil {
			break
		}
		drop := p.opIdx[:n]
		var nr []word
		for i, w := range rest {
			if !slices.Contains(drop, i) {
				nr = append(nr, w)
			}
		}
		cmd, rest = child, nr
	}
	if cmd.exec != nil {
		s.wrapper(cmd, rest, text, in, depth)
		return
	}
	p := cmd.parse(rest)
	p.cwd = s.cwd
	s.evaluate(cmd, &p, rest, text)
	s.hostsOf(cmd, p)
	s.writes(cmd, p, rest, text)
	s.reads(cmd, p, rest, text)
	if cmd.code != nil {
		s.code(cmd, rest, p, text, in, depth)
	}
}

func (s *state) addHost(h string) {
	if i := strings.LastIndexByte(h, '@'); i >= 0 {
		h = h[i+1:]
	}
	h = strings.TrimPrefix(h, "ssh://")
	if h == "" || slices.Contains(s.hosts, h) {
		return
	}
	s.hosts = append(s.hosts, h)
}

func (s *state) hostsOf(cmd *command, p parsed) {
	switch cmd.hosts {
	case "first":
		if len(p.operands) > 0 {
			s.addHost(p.operands[0])
		}
	case "colon":
		for _, o := range p.operands {
			host, _, ok := strings.Cut(o, ":")
			if ok && host != "" && !strings.Contains(host, "/") {
				s.addHost(host)
			}
		}
	}
}

// writes judges the files a command writes against the paths table.
func (s *state) writes(cmd *command, p parsed, args []word, text string) {
	for _, t := range fileArgs(cmd.writes, cmd.writeFlags, p, args) {
		if o, ok := tableLevel(s.r.paths, t, p.cwd); ok {
			s.add(text, o)
		} else if cmd.def.Level < s.r.defaults.Redirect.Level {
			// A program that is otherwise read-only (sort -o, uniq in out).
			s.add(text, outcome{Level: s.r.defaults.Redirect.Level, Rule: cmd.def.Rule + ":writes", Reason: "writes a file"})
		}
	}
}

// reads judges the files a command reads against the secrets table.
func (s *state) reads(cmd *command, p parsed, args []word, text string) {
	if len(s.r.secrets) == 0 {
		return
	}
	for _, t := range fileArgs(cmd.reads, cmd.readFlags, p, args) {
		if o, ok := tableLevel(s.r.secrets, t, p.cwd); ok {
			s.add(text, o)
		}
	}
}

// fileArgs are the files a command names by position (mode: operands, last, rest; of or if for dd's
// of=/if= arguments) and by the given flags' values.
func fileArgs(mode string, flags map[string]bool, p parsed, args []word) []string {
	var files []string
	switch mode {
	case "operands":
		files = slices.Clip(p.operands)
	case "last":
		if len(p.operands) > 0 {
			files = p.operands[len(p.operands)-1:]
		}
	case "rest":
		if len(p.operands) > 1 {
			files = slices.Clip(p.operands[1:])
		}
	case "of", "if":
		for _, w := range args {
			if f, ok := strings.CutPrefix(w.val, mode+"="); ok {
				files = append(files, f)
			}
		}
	}
	return append(files, flagValues(flags, args)...)
}

// flagValues returns the values of the given flags in args ("-o F",
// "--output=F", "-oF").
func flagValues(flags map[string]bool, args []word) []string {
	if len(flags) == 0 {
		return nil
	}
	var out []string
	for i := 0; i < len(args); i++ {
		v := args[i].val
		if !isFlag(v) {
			continue
		}
		if name, val, ok := strings.Cut(v, "="); ok && flags[name] {
			out = append(out, val)
			continue
		}
		if flags[v] {
			if i+1 < len(args) {
				out = append(out, args[i+1].val)
			}
			i++
			continue
		}
		if len(v) > 2 && v[1] != '-' && flags[v[:2]] {
			out = append(out, v[2:])
		}
	}
	return out
}

// chdir follows cd, pushd and popd so that later relative paths are judged
// where they point; a directory the guard cannot know is cwdUnknown.
func (s *state) chdir(name string, args []word) {
	if name == "popd" {
		s.cwd = cwdUnknown
		return
	}
	var ops []word
	for _, w := range args {
		if !isFlag(w.val) || w.val == "-" {
			ops = append(ops, w)
		}
	}
	switch {
	case len(ops) == 0:
		s.cwd = "~"
	case !ops[0].lit || ops[0].val == "-" || ops[0].val == "":
		s.cwd = cwdUnknown
	case ops[0].val[0] == '/' || ops[0].val[0] == '~':
		s.cwd = path.Clean(ops[0].val)
	case s.cwd == "" || s.cwd == cwdUnknown:
		s.cwd = cwdUnknown // relative to a directory the guard does not know
	default:
		s.cwd = path.Join(s.cwd, ops[0].val)
	}
}

// emptyVars judges the command again with every variable that may be empty
// expanded to nothing, when that turns a word into an absolute path:
// rm -rf "$X"/* is rm -rf /* when X is empty or unset.
func (s *state) emptyVars(a []word, in *input, depth int) {
	var alt []word
	for i, w := range a {
		if !w.hasAlt || !strings.HasPrefix(w.alt, "/") || strings.HasPrefix(w.val, "/") {
			continue
		}
		if alt == nil {
			alt = slices.Clone(a)
		}
		alt[i] = word{val: w.alt, lit: true, node: w.node}
	}
	if alt == nil || !alt[0].lit {
		return
	}
	saved := s.note
	s.note = " (a variable in it may be empty)"
	s.argv(alt, in, depth)
	s.note = saved
}

// wrapper looks through a command that runs another command.
func (s *state) wrapper(cmd *command, rest []word, text string, in *input, depth int) {
	e := cmd.exec
	if e.style == "find" {
		s.find(cmd, rest, text, in, depth)
		return
	}
	var (
		flags   []string
		skipped []string
		inner   []word
		dd      bool
	)
	i := 0
scan:
	for ; i < len(rest); i++ {
		v := rest[i].val
		switch {
		case !dd && v == "--":
			if e.dashdash {
				inner = rest[i+1:]
				break scan
			}
			dd = true
		case !dd && isFlag(v):
			flags = append(flags, v)
			if cmd.takesValue(v) {
				i++
			}
		case e.assignments && isAssignment(v):
			if name, _, _ := strings.Cut(v, "="); s.r.env[name] {
				s.add(text, s.r.envRule)
			}
		case len(skipped) < e.operands:
			skipped = append(skipped, v)
		default:
			inner = rest[i:]
			if e.dashdash {
				for j := i; j < len(rest); j++ {
					if rest[j].val == "--" {
						inner = rest[j+1:]
						break
					}
				}
			}
			break scan
		}
	}
	i = min(i, len(rest)) // a value flag at the end steps past it
	p := parsed{flags: flags, operands: skipped, cwd: s.cwd}
	if len(inner) > 0 {
		// Rules see the wrapper's own options plus a placeholder for the command.
		p.operands = append(slices.Clip(p.operands), inner[0].val)
	}
	matched, noexec := s.evaluate(cmd, &p, rest[:i], text)
	s.hostsOf(cmd, p)
	if noexec {
		return
	}
	if cmd.code != nil && s.code(cmd, rest, cmd.parse(rest[:i]), text, in, depth) {
		return
	}
	if len(inner) == 0 {
		if matched {
			return // a rule about the wrapper's own options decided
		}
		if e.style == "shell" && in != nil && (in.known || in.remote) {
			s.codeText("shell", in.code, in.lit, in.remote, text, cmd, depth)
			return
		}
		s.add(text, e.alone)
		return
	}
	switch e.style {
	case "shell":
		code, lit := rawJoin(inner), allLit(inner)
		if !lit {
			if vals, ok := s.knownAll(inner); ok { // ssh h "$(echo … | base64 -d)"
				code, lit = strings.Join(vals, " "), true
			}
		}
		s.codeText("shell", code, lit, false, text, cmd, depth)
	case "xargs":
		if in != nil && in.known && in.lit {
			s.xargs(rest[:i], inner, in.code, depth)
			return
		}
		arg := word{val: "$XARGS"}
		s.argv(append(slices.Clip(inner), arg), nil, depth)
	default:
		s.argv(inner, in, depth)
	}
}

// maxXargs bounds the input items xargs is judged with.
const maxXargs = 64

// xargs judges the command xargs builds from a stdin the guard can read
// (echo … |, printf … |, <<< …): with -I, once per line with the
// placeholder replaced; otherwise with every item appended.
func (s *state) xargs(opts, inner []word, stdin string, depth int) {
	repl, sep := "", ""
	for k := 0; k < len(opts); k++ {
		switch v := opts[k].val; {
		case v == "-I" && k+1 < len(opts):
			repl = opts[k+1].val
		case strings.HasPrefix(v, "-I") && len(v) > 2:
			repl = v[2:]
		case v == "-i" || v == "--replace":
			repl = "{}"
		case strings.HasPrefix(v, "--replace="):
			repl = strings.TrimPrefix(v, "--replace=")
		case strings.HasPrefix(v, "-i") && len(v) > 2:
			repl = v[2:]
		case v == "-0" || v == "--null":
			sep = "\x00"
		case v == "-d" && k+1 < len(opts):
			sep = ansiC(opts[k+1].val)
		}
	}
	var items []string
	switch {
	case repl != "":
		items = strings.Split(strings.TrimRight(stdin, "\n"), "\n")
	case sep != "":
		items = strings.Split(stdin, sep)
	default:
		items = strings.Fields(stdin)
	}
	if len(items) > maxXargs {
		items = items[:maxXargs]
	}
	if repl == "" {
		cmd := slices.Clip(inner)
		for _, it := range items {
			cmd = append(cmd, word{val: it, lit: true})
		}
		s.argv(cmd, nil, depth)
		return
	}
	for _, it := range items {
		cmd := make([]word, len(inner))
		for k, w := range inner {
			w.val = strings.ReplaceAll(w.val, repl, it)
			cmd[k] = w
		}
		s.argv(cmd, nil, depth)
	}
}

func isAssignment(v string) bool {
	name, _, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return false
	}
	for i, c := range name {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// find handles find's own rules and each -exec/-execdir/-ok/-okdir command,
// with {} replaced by the search roots so "find / -exec rm -rf {} +" is seen
// as "rm -rf /".
func (s *state) find(cmd *command, rest []word, text string, in *input, depth int) {
	var roots []string
	i := 0
	for ; i < len(rest); i++ {
		v := rest[i].val
		if isFlag(v) || v == "(" || v == "!" || v == ")" {
			break
		}
		roots = append(roots, v)
	}
	var (
		flags []string
		main  []word
		execs [][]word
	)
	main = append(main, rest[:i]...)
	for ; i < len(rest); i++ {
		v := rest[i].val
		switch v {
		case "-exec", "-execdir", "-ok", "-okdir":
			j := i + 1
			for j < len(rest) && rest[j].val != ";" && rest[j].val != "+" {
				j++
			}
			execs = append(execs, rest[i+1:j])
			flags = append(flags, v)
			main = append(main, rest[i])
			i = j
			continue
		}
		if isFlag(v) {
			flags = append(flags, v)
		}
		main = append(main, rest[i])
	}
	p := parsed{flags: flags, operands: roots, cwd: s.cwd}
	s.evaluate(cmd, &p, main, text)
	if len(roots) == 0 {
		roots = []string{"."}
	}
	if len(roots) > 4 {
		roots = roots[:4]
	}
	// {} is each root and every file below it: find /etc -exec rm {} \;
	// deletes /etc/passwd. A -name pattern narrows what is below.
	below := "*"
	for k := 0; k+1 < len(rest); k++ {
		if v := rest[k].val; v == "-name" || v == "-iname" {
			below = "*" + rest[k+1].val
			break
		}
	}
	var paths []string
	for _, root := range roots {
		paths = append(paths, root, strings.TrimSuffix(root, "/")+"/"+below)
	}
	for _, ex := range execs {
		if len(ex) == 0 {
			s.add(text, cmd.exec.alone)
			continue
		}
		for _, root := range paths {
			inner := make([]word, len(ex))
			for k, w := range ex {
				w.val = strings.ReplaceAll(w.val, "{}", root)
				inner[k] = w
			}
			s.argv(inner, nil, depth)
		}
	}
}

// code finds inline code (bash -c CODE, psql -c SQL, awk PROG …), a script
// operand, or code on stdin, and classifies it. It reports whether it found
// something to judge.
func (s *state) code(cmd *command, rest []word, p parsed, text string, in *input, depth int) bool {
	cs := cmd.code
	judged := false
	for i := 0; i < len(rest); i++ {
		v := rest[i].val
		if v == "--" {
			break
		}
		if !isFlag(v) {
			continue
		}
		var (
			code  word
			found bool
		)
		if name, val, ok := strings.Cut(v, "="); ok && strings.HasPrefix(v, "--") && cs.flags[name] {
			code, found = word{val: val, lit: rest[i].lit, node: rest[i].node}, true
		} else if cs.flags[v] || (len(v) > 2 && v[1] != '-' && !cmd.valueFlags[v[:2]] && cs.flags["-"+v[len(v)-1:]]) {
			if i+1 < len(rest) {
				code, found = rest[i+1], true
			}
		} else if len(v) > 2 && v[1] != '-' && cs.flags[v[:2]] && cs.lang == "opaque" {
			code, found = word{val: v[2:], lit: rest[i].lit, node: rest[i].node}, true
		}
		if found {
			// Every code flag counts (ruby -rfileutils -e '…': -r is php's
			// code flag and ruby's require).
			s.codeWord(cs.lang, code, text, cmd, depth)
			judged = true
		}
		if cmd.takesValue(v) {
			i++
		}
	}
	if judged {
		return true
	}
	if cs.join && len(rest) > 0 {
		if s.downloadsAny(rest) {
			s.add(text, s.r.defaults.RemoteCode)
		}
		code, lit := rawJoin(rest), allLit(rest)
		if !lit {
			if vals, ok := s.knownAll(rest); ok {
				code, lit = strings.Join(vals, " "), true
			}
		}
		s.codeText(cs.lang, code, lit, false, text, cmd, depth)
		return true
	}
	if in != nil && in.remote {
		s.add(text, s.r.defaults.RemoteCode)
		return true
	}
	stdinMode := false
	for _, f := range cs.stdinFlags {
		stdinMode = stdinMode || hasFlag(p.flags, f)
	}
	if cs.operand >= 0 && len(p.operands) > cs.operand {
		s.codeWord(cs.lang, rest[p.opIdx[cs.operand]], text, cmd, depth)
		return true
	}
	if cs.script != nil && !stdinMode && len(p.operands) > 0 && p.operands[0] != "-" {
		w := rest[p.opIdx[0]]
		if src, ok := procSubstSource(w.node); ok {
			s.codeText(cs.lang, src, true, false, text, cmd, depth) // bash <(echo …)
			return true
		}
		if s.downloads(w.node) {
			s.add(text, s.r.defaults.RemoteCode)
		} else {
			s.add(text, *cs.script)
		}
		return true
	}
	if in != nil && in.known {
		s.codeText(cs.lang, in.code, in.lit, false, text, cmd, depth)
		return true
	}
	if cs.stdin != nil {
		s.add(text, *cs.stdin)
		return true
	}
	return false
}

func (s *state) downloadsAny(ws []word) bool {
	for _, w := range ws {
		if s.downloads(w.node) {
			return true
		}
	}
	return false
}

// knownAll returns the known text of every word (see known).
func (s *state) knownAll(ws []word) ([]string, bool) {
	out := make([]string, len(ws))
	for i, w := range ws {
		if w.lit {
			out[i] = w.val
			continue
		}
		v, ok := known(w.node, s.vars)
		if !ok {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

func (s *state) codeWord(lang string, w word, text string, cmd *command, depth int) {
	if !w.lit && s.downloads(w.node) {
		s.add(text, s.r.defaults.RemoteCode)
	}
	if !w.lit {
		// sh -c "$(echo … | base64 -d)": judge the code it decodes to.
		if v, ok := known(w.node, s.vars); ok {
			w.val, w.lit = v, true
		}
	}
	s.codeText(lang, w.val, w.lit, false, text, cmd, depth)
}

// codeText classifies code in a language. Code with expansions in it is at
// least unseen_code (L2): "$x" inside bash -c is code injection.
func (s *state) codeText(lang, code string, lit, remote bool, text string, cmd *command, depth int) {
	if remote {
		s.add(text, s.r.defaults.RemoteCode)
	}
	if !lit {
		s.add(text, s.r.defaults.Unseen)
	}
	switch lang {
	case "shell":
		s.shell(code, depth+1)
	case "sql":
		s.sql(code)
	case "opaque":
		s.add(text, cmd.code.level)
		for _, c := range execStrings(code) {
			s.shell(c, depth+1)
		}
		for _, argv := range deleteCalls(code) {
			s.argv(argv, nil, depth+1)
		}
	}
}

func (s *state) sql(code string) {
	for li, layer := range s.r.sql {
		matched := false
		for _, rr := range layer {
			if rr.re.MatchString(code) {
				s.add(code, rr.outcome)
				matched = true
			}
		}
		if li == 0 && !matched {
			s.add(code, s.r.sqlDefault)
		}
	}
	if len(s.r.sql) == 0 {
		s.add(code, s.r.sqlDefault)
	}
}

// redirect judges a file a redirection writes, or reads when it is
// credential material.
func (s *state) redirect(rd *syntax.Redirect) {
	if rd.Op == syntax.RdrIn && rd.Word != nil && len(s.r.secrets) > 0 {
		if w := renderEnv(rd.Word, s.vars); w.lit {
			if o, ok := tableLevel(s.r.secrets, w.val, s.cwd); ok {
				s.add("< "+w.val, o)
			}
		}
		return
	}
	switch rd.Op {
	case syntax.RdrOut, syntax.AppOut, syntax.RdrClob, syntax.AppClob, syntax.RdrAll,
		syntax.RdrAllClob, syntax.AppAll, syntax.AppAllClob, syntax.RdrInOut, syntax.DplOut:
	default:
		return
	}
	if rd.Word == nil {
		return
	}
	w := render(rd.Word)
	if rd.Op == syntax.DplOut && (w.val == "-" || isDigits(w.val)) {
		return
	}
	text := rd.Op.String() + " " + w.val
	if !w.lit {
		s.add(text, s.r.defaults.DynamicRedirect)
		return
	}
	if o, ok := tableLevel(s.r.paths, w.val, s.cwd); ok {
		s.add(text, o)
		return
	}
	s.add(text, s.r.defaults.Redirect)
}

func isDigits(v string) bool {
	if v == "" {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// pipe looks at what a pipeline feeds an interpreter: a download
// (curl … | sh) is remote_code; a literal (echo … | base64 -d | sh) is
// decoded and classified.
func (s *state) pipe(x *syntax.BinaryCmd, depth int) {
	ce, ok := x.Y.Cmd.(*syntax.CallExpr)
	if !ok || len(ce.Args) == 0 {
		return
	}
	// Only interpreters and wrappers (which may run one) read code on stdin.
	if name := ce.Args[0].Lit(); name != "" {
		if cmd := s.r.commands[path.Base(name)]; cmd == nil || (cmd.code == nil && cmd.exec == nil && !cmd.children) {
			return
		}
	}
	in := &input{}
	if s.downloads(x.X) {
		in.remote = true
	} else if code, ok := literalSource(x.X); ok {
		in.code, in.known, in.lit = code, true, true
	} else {
		return
	}
	s.call(ce, x.Y, depth, in)
}

// literalSource returns the text a statement writes to stdout when the guard
// can know it: echo/printf of literals, cat/base64 -d of a here-doc, and
// base64 -d of such a pipeline.
func literalSource(st *syntax.Stmt) (string, bool) {
	switch x := st.Cmd.(type) {
	case *syntax.BinaryCmd:
		if x.Op != syntax.Pipe && x.Op != syntax.PipeAll {
			return "", false
		}
		src, ok := literalSource(x.X)
		if !ok {
			return "", false
		}
		ce, ok := x.Y.Cmd.(*syntax.CallExpr)
		if !ok || !isBase64Decode(words(ce.Args)) {
			return "", false
		}
		return decodeBase64(src)
	case *syntax.CallExpr:
		ws := words(x.Args)
		if len(ws) == 0 || !allLit(ws) {
			return "", false
		}
		switch path.Base(ws[0].val) {
		case "echo":
			var parts []string
			for _, w := range ws[1:] {
				if len(parts) == 0 && (w.val == "-n" || w.val == "-e" || w.val == "-ne" || w.val == "-en") {
					continue
				}
				parts = append(parts, w.val)
			}
			return strings.Join(parts, " "), true
		case "printf":
			if len(ws) > 1 && !strings.HasPrefix(ws[1].val, "-") {
				return printf(ws[1].val, stringsOf(ws[2:])), true
			}
		case "cat", "base64":
			for _, rd := range st.Redirs {
				if rd.Op != syntax.Hdoc && rd.Op != syntax.DashHdoc && rd.Op != syntax.WordHdoc {
					continue
				}
				body := rd.Hdoc
				if rd.Op == syntax.WordHdoc {
					body = rd.Word
				}
				if body == nil {
					return "", false
				}
				w := render(body)
				if !w.lit {
					return "", false
				}
				if ws[0].val == "cat" && len(ws) == 1 {
					return w.val, true
				}
				if isBase64Decode(ws) {
					return decodeBase64(w.val)
				}
			}
		}
	}
	return "", false
}

// substOutput returns the words a command substitution used as a command
// name expands to, when its output is a knowable literal: $(echo rm) is
// split into fields, "$(echo rm)" is one field.
func substOutput(w *syntax.Word) ([]string, bool) {
	if w == nil || len(w.Parts) != 1 {
		return nil, false
	}
	split := true
	part := w.Parts[0]
	if dq, ok := part.(*syntax.DblQuoted); ok && len(dq.Parts) == 1 {
		part, split = dq.Parts[0], false
	}
	cs, ok := part.(*syntax.CmdSubst)
	if !ok || len(cs.Stmts) != 1 {
		return nil, false
	}
	out, ok := literalSource(cs.Stmts[0])
	if !ok {
		return nil, false
	}
	out = strings.TrimRight(out, "\n")
	if split {
		return strings.Fields(out), true
	}
	return []string{out}, true
}

func stringsOf(ws []word) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.val
	}
	return out
}

func isBase64Decode(ws []word) bool {
	if len(ws) == 0 || path.Base(ws[0].val) != "base64" {
		return false
	}
	for _, w := range ws[1:] {
		if w.val == "-d" || w.val == "--decode" || w.val == "-D" || w.val == "-di" || w.val == "-id" {
			return true
		}
	}
	return false
}

func decodeBase64(s string) (string, bool) {
	s = strings.Join(strings.Fields(s), "")
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return string(b), true
		}
	}
	return "", false
}

// forkBomb flags a function that calls itself in a pipeline or in the
// background: :(){ :|:& };:
func (s *state) forkBomb(f *syntax.FuncDecl) {
	if f.Name == nil || f.Body == nil {
		return
	}
	name := f.Name.Value
	self, spawn := false, false
	syntax.Walk(f.Body, func(n syntax.Node) bool {
		switch x := n.(type) {
		case *syntax.CallExpr:
			if len(x.Args) > 0 && x.Args[0].Lit() == name {
				self = true
			}
		case *syntax.Stmt:
			if x.Background {
				spawn = true
			}
		case *syntax.BinaryCmd:
			if x.Op == syntax.Pipe || x.Op == syntax.PipeAll {
				spawn = true
			}
		}
		return true
	})
	if self && spawn {
		s.add(name+"() { … }", outcome{Level: L3, Rule: "fork_bomb", Reason: "function that spawns copies of itself (fork bomb)"})
	}
}
