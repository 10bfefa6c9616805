package guard

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// ErrInvalidRules is wrapped by every error LoadRules and Override return for a
// file that does not parse or does not validate. The message names the line.
var ErrInvalidRules = errors.New("invalid risk rules")

// Rules is a compiled, immutable rule set: what each program does at which
// level, which paths are protected, and how SQL is judged. Build one with
// LoadRules and derive tenant variants with Override. A *Rules is safe for
// concurrent use.
type Rules struct {
	defaults defaults
	sets     map[string][]string
	// paths holds one first-match table per layer (shipped, then tenant);
	// a path's level is the highest any layer gives it.
	paths [][]pathRule
	// secrets holds the credential material a read of which is at least
	// L1 and redacted (layered like paths).
	secrets    [][]pathRule
	commands   map[string]*command
	env        map[string]bool
	envRule    outcome
	downloads  map[string]bool
	sql        [][]regexRule // layered like paths, max wins
	sqlDefault outcome
	blast      []BlastRule // applied in order; tenants append
}

// outcome is a level with the rule that produced it.
type outcome struct {
	Level  Level
	Rule   string
	Reason string
	// Secret marks a read of credential material: the output is redacted.
	Secret bool
}

type defaults struct {
	Unknown, Dynamic, ParseError, Redirect, DynamicRedirect, RemoteCode, Unseen, TooDeep outcome
}

type pathRule struct {
	outcome
	globs *globSet
}

type regexRule struct {
	outcome
	re *pattern
}

// command is the compiled spec of one program (or of "program subcommand").
type command struct {
	name       string
	def        outcome // used when no rule of the first layer matches
	floor      outcome // tenant floor (Level 0 when unset)
	valueFlags map[string]bool
	hosts      string // "", "first", "colon"
	writes     string // "", "operands", "last", "rest", "of"
	writeFlags map[string]bool
	reads      string // "", "operands", "rest", "if"
	readFlags  map[string]bool
	exec       *execSpec
	code       *codeSpec
	layers     [][]rule // [0] shipped, [1:] tenant; max over layers
	children   bool     // some "name sub" spec exists
}

type execSpec struct {
	style       string // argv, shell, find, xargs
	operands    int
	dashdash    bool
	assignments bool
	alone       outcome
}

type codeSpec struct {
	lang       string // shell, sql, opaque
	flags      map[string]bool
	operand    int // -1: none
	join       bool
	script     *outcome
	stdin      *outcome
	level      outcome // level of readable opaque code
	stdinFlags []string
}

type rule struct {
	outcome
	sub        [][]glob
	flags      []string
	args       *globSet
	operands   *globSet
	last       *globSet
	re         *pattern
	noOperands bool
	noexec     bool
}

// --- the file format ---------------------------------------------------------

type rawFile struct {
	Version   int                 `yaml:"version"`
	Defaults  map[string]rawLR    `yaml:"defaults"`
	Sets      map[string][]string `yaml:"sets"`
	Paths     []rawPath           `yaml:"paths"`
	Secrets   []rawPath           `yaml:"secrets"`
	Blast     []rawBlast          `yaml:"blast_radius"`
	Env       *rawEnv             `yaml:"sensitive_env"`
	Downloads []string            `yaml:"download_commands"`
	SQL       *rawSQL             `yaml:"sql"`
	Commands  []rawCommand        `yaml:"commands"`
}

type rawLR struct {
	Level  string `yaml:"level"`
	Reason string `yaml:"reason"`
}

type rawPath struct {
	ID     string   `yaml:"id"`
	Globs  []string `yaml:"globs"`
	Level  string   `yaml:"level"`
	Reason string   `yaml:"reason"`
}

type rawEnv struct {
	Names  []string `yaml:"names"`
	Level  string   `yaml:"level"`
	Reason string   `yaml:"reason"`
}

type rawSQL struct {
	Default *rawLR    `yaml:"default"`
	Rules   []rawRule `yaml:"rules"`
}

type rawCommand struct {
	ID         string    `yaml:"id"`
	Names      []string  `yaml:"names"`
	Level      string    `yaml:"level"`
	Reason     string    `yaml:"reason"`
	ValueFlags []string  `yaml:"value_flags"`
	Hosts      string    `yaml:"hosts"`
	Writes     string    `yaml:"writes"`
	WriteFlags []string  `yaml:"write_flags"`
	Reads      string    `yaml:"reads"`
	ReadFlags  []string  `yaml:"read_flags"`
	Exec       *rawExec  `yaml:"exec"`
	Code       *rawCode  `yaml:"code"`
	Rules      []rawRule `yaml:"rules"`
}

type rawExec struct {
	Style       string `yaml:"style"`
	Operands    int    `yaml:"operands"`
	DashDash    bool   `yaml:"dashdash"`
	Assignments bool   `yaml:"assignments"`
	Alone       *rawLR `yaml:"alone"`
}

type rawCode struct {
	Lang    string   `yaml:"lang"`
	Flags   []string `yaml:"flags"`
	Operand *int     `yaml:"operand"`
	Join    bool     `yaml:"join"`
	Script  *rawLR   `yaml:"script"`
	Stdin   *rawLR   `yaml:"stdin"`
	Level   *rawLR   `yaml:"level"`
	// StdinFlags make the program read code from stdin even with operands (bash -s).
	StdinFlags []string `yaml:"stdin_flags"`
}

type rawRule struct {
	ID         string   `yaml:"id"`
	Level      string   `yaml:"level"`
	Reason     string   `yaml:"reason"`
	Sub        []string `yaml:"sub"`
	Flags      []string `yaml:"flags"`
	Args       []string `yaml:"args"`
	Operands   []string `yaml:"operands"`
	Last       []string `yaml:"last"`
	Regex      string   `yaml:"regex"`
	NoOperands bool     `yaml:"no_operands"`
	NoExec     bool     `yaml:"noexec"`
}

// --- loading -----------------------------------------------------------------

// defaultKeys lists the entries the defaults section must define.
var defaultKeys = []string{"unknown_command", "dynamic_command", "parse_error", "redirect", "dynamic_redirect", "remote_code", "unseen_code", "too_deep"}

// LoadRules parses and validates a rules file (see ops-config/risk-patterns.yaml
// for the format). Errors wrap ErrInvalidRules and name the offending line.
func LoadRules(data []byte) (*Rules, error) {
	raw, lines, err := decode(data)
	if err != nil {
		return nil, err
	}
	r := &Rules{
		sets:      map[string][]string{},
		commands:  map[string]*command{},
		env:       map[string]bool{},
		downloads: map[string]bool{},
	}
	b := builder{r: r, lines: lines}
	b.compileBase(raw)
	if err := b.err(); err != nil {
		return nil, err
	}
	return r, nil
}

// decode parses YAML strictly and returns a function mapping a YAML path to its line.
func decode(data []byte) (*rawFile, func(string) int, error) {
	var raw rawFile
	if err := yaml.UnmarshalWithOptions(data, &raw, yaml.DisallowUnknownField()); err != nil {
		msg := yaml.FormatError(err, false, false)
		// goccy writes "[line:col] message"; say "line N" like our own errors.
		if m := yamlPos.FindStringSubmatch(msg); m != nil {
			msg = fmt.Sprintf("line %s (column %s): %s", m[1], m[2], strings.TrimSpace(msg[len(m[0]):]))
		}
		return nil, nil, fmt.Errorf("%w: %s", ErrInvalidRules, msg)
	}
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidRules, err)
	}
	return &raw, func(p string) int { return lineOf(file, p) }, nil
}

var yamlPos = regexp.MustCompile(`^\[(\d+):(\d+)\]`)

func lineOf(f *ast.File, p string) int {
	for p != "$" && p != "" {
		if yp, err := yaml.PathString(p); err == nil {
			if n, err := yp.FilterFile(f); err == nil && n != nil && n.GetToken() != nil {
				return n.GetToken().Position.Line
			}
		}
		// Fall back to the enclosing node.
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

type builder struct {
	r      *Rules
	lines  func(string) int
	errs   []error
	tenant bool
}

func (b *builder) fail(path, format string, args ...any) {
	where := path
	if line := b.lines(path); line > 0 {
		where = fmt.Sprintf("line %d (%s)", line, path)
	}
	b.errs = append(b.errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
}

func (b *builder) err() error {
	if len(b.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidRules, errors.Join(b.errs...))
}

func (b *builder) level(path, s string) Level {
	l, err := ParseLevel(s)
	if err != nil {
		b.fail(path, "%v", err)
	}
	return l
}

func (b *builder) lr(path string, v rawLR, id string) outcome {
	if v.Reason == "" {
		b.fail(path, "reason is required")
	}
	return outcome{Level: b.level(path+".level", v.Level), Rule: id, Reason: v.Reason}
}

func (b *builder) compileBase(raw *rawFile) {
	if raw.Version != 1 {
		b.fail("$.version", "version must be 1, got %d", raw.Version)
	}
	for _, k := range defaultKeys {
		v, ok := raw.Defaults[k]
		if !ok {
			b.fail("$.defaults", "defaults.%s is required", k)
			continue
		}
		o := b.lr("$.defaults."+k, v, k)
		switch k {
		case "unknown_command":
			b.r.defaults.Unknown = o
		case "dynamic_command":
			b.r.defaults.Dynamic = o
		case "parse_error":
			b.r.defaults.ParseError = o
		case "redirect":
			b.r.defaults.Redirect = o
		case "dynamic_redirect":
			b.r.defaults.DynamicRedirect = o
		case "remote_code":
			b.r.defaults.RemoteCode = o
		case "unseen_code":
			b.r.defaults.Unseen = o
		case "too_deep":
			b.r.defaults.TooDeep = o
		}
	}
	for k := range raw.Defaults {
		if !slices.Contains(defaultKeys, k) {
			b.fail("$.defaults."+k, "unknown default %q", k)
		}
	}
	b.compileShared(raw)
	if raw.SQL == nil || raw.SQL.Default == nil {
		b.fail("$.sql", "sql.default is required")
	} else {
		b.r.sqlDefault = b.lr("$.sql.default", *raw.SQL.Default, "sql")
	}
	if raw.Env == nil {
		b.fail("$", "sensitive_env is required")
	}
	for i, c := range raw.Commands {
		b.compileCommand(fmt.Sprintf("$.commands[%d]", i), c)
	}
	b.linkChildren()
}

// compileShared handles the sections both the shipped file and a tenant file
// may carry, appending a new layer for paths and SQL.
func (b *builder) compileShared(raw *rawFile) {
	for name, globs := range raw.Sets {
		p := "$.sets." + name
		if _, ok := b.r.sets[name]; ok {
			b.fail(p, "set %q is already defined; a tenant may add sets, not change them", name)
			continue
		}
		if len(globs) == 0 {
			b.fail(p, "set %q is empty", name)
		}
		for _, g := range globs {
			if strings.HasPrefix(g, "@") {
				b.fail(p, "sets may not reference other sets (%q)", g)
			}
		}
		b.r.sets[name] = globs
	}
	var table []pathRule
	for i, pr := range raw.Paths {
		p := fmt.Sprintf("$.paths[%d]", i)
		id := cmpOr(pr.ID, fmt.Sprintf("path[%d]", i))
		if b.tenant {
			id = "tenant:" + id
		}
		o := b.lr(p, rawLR{pr.Level, pr.Reason}, id)
		globs := newGlobSet(b.globs(p+".globs", pr.Globs, true))
		table = append(table, pathRule{outcome: o, globs: globs})
	}
	if len(table) > 0 {
		b.r.paths = append(b.r.paths, table)
	}
	var secrets []pathRule
	for i, pr := range raw.Secrets {
		p := fmt.Sprintf("$.secrets[%d]", i)
		id := cmpOr(pr.ID, fmt.Sprintf("secret[%d]", i))
		if b.tenant {
			id = "tenant:" + id
		}
		o := b.lr(p, rawLR{pr.Level, pr.Reason}, id)
		if o.Level < L1 {
			b.fail(p+".level", "a read of credential material is at least L1, got %s", o.Level)
		}
		o.Secret = true
		globs := newGlobSet(b.globs(p+".globs", pr.Globs, true))
		secrets = append(secrets, pathRule{outcome: o, globs: globs})
	}
	if len(secrets) > 0 {
		b.r.secrets = append(b.r.secrets, secrets)
	}
	b.compileBlast(raw.Blast)
	if raw.Env != nil {
		for _, n := range raw.Env.Names {
			b.r.env[n] = true
		}
		o := b.lr("$.sensitive_env", rawLR{raw.Env.Level, raw.Env.Reason}, "sensitive_env")
		if b.tenant && o.Level < b.r.envRule.Level {
			b.fail("$.sensitive_env.level", "a tenant may not lower sensitive_env from %s to %s", b.r.envRule.Level, o.Level)
		} else {
			b.r.envRule = o
		}
	}
	for _, d := range raw.Downloads {
		b.r.downloads[d] = true
	}
	if raw.SQL != nil {
		var layer []regexRule
		for i, sr := range raw.SQL.Rules {
			p := fmt.Sprintf("$.sql.rules[%d]", i)
			id := cmpOr(sr.ID, fmt.Sprintf("sql[%d]", i))
			if b.tenant {
				id = "tenant:" + id
			}
			o := b.lr(p, rawLR{sr.Level, sr.Reason}, id)
			re, err := compilePattern(sr.Regex)
			if err != nil || sr.Regex == "" {
				b.fail(p+".regex", "sql rules need a valid regex: %v", err)
				continue
			}
			layer = append(layer, regexRule{outcome: o, re: re})
		}
		if len(layer) > 0 {
			b.r.sql = append(b.r.sql, layer)
		}
	}
}

// globs validates patterns and expands @set references (a reference may carry a
// suffix: "@system_dirs/*").
func (b *builder) globs(path string, in []string, required bool) []string {
	if required && len(in) == 0 {
		b.fail(path, "at least one pattern is required")
	}
	var out []string
	for _, g := range in {
		if g == "" {
			b.fail(path, "empty pattern")
			continue
		}
		if !strings.HasPrefix(g, "@") {
			out = append(out, g)
			continue
		}
		name, suffix := g[1:], ""
		if i := strings.IndexAny(name, "/*\\"); i >= 0 {
			name, suffix = name[:i], name[i:]
		}
		set, ok := b.r.sets[name]
		if !ok {
			b.fail(path, "unknown set %q", name)
			continue
		}
		for _, s := range set {
			out = append(out, s+suffix)
		}
	}
	return out
}

func (b *builder) compileCommand(p string, c rawCommand) {
	if len(c.Names) == 0 {
		b.fail(p+".names", "names is required")
		return
	}
	for _, n := range c.Names {
		if strings.TrimSpace(n) != n || n == "" || strings.Contains(n, "  ") {
			b.fail(p+".names", "bad command name %q", n)
			return
		}
	}
	base := b.r.commands[c.Names[0]]
	if b.tenant && base != nil {
		b.mergeTenant(p, c)
		return
	}
	if b.tenant {
		for _, n := range c.Names {
			if b.r.commands[n] != nil {
				b.fail(p+".names", "%q is a shipped command; list it in its own entry to extend it", n)
				return
			}
			if first, _, multi := strings.Cut(n, " "); multi && b.r.commands[first] != nil {
				b.fail(p+".names", "%q would shadow the shipped rules for %q; add rules to %q instead", n, first, first)
				return
			}
		}
	}
	id := cmpOr(c.ID, c.Names[0])
	if b.tenant {
		id = "tenant:" + id
	}
	cmd := &command{
		name:       c.Names[0],
		def:        b.lr(p, rawLR{c.Level, c.Reason}, id),
		valueFlags: map[string]bool{},
		hosts:      c.Hosts,
		writes:     c.Writes,
		writeFlags: map[string]bool{},
		reads:      c.Reads,
		readFlags:  map[string]bool{},
	}
	for _, f := range c.ValueFlags {
		cmd.valueFlags[f] = true
	}
	for _, f := range c.WriteFlags {
		cmd.writeFlags[f], cmd.valueFlags[f] = true, true
	}
	for _, f := range c.ReadFlags {
		cmd.readFlags[f], cmd.valueFlags[f] = true, true
	}
	switch c.Reads {
	case "", "operands", "rest", "if":
	default:
		b.fail(p+".reads", "reads must be operands, rest or if, got %q", c.Reads)
	}
	switch c.Hosts {
	case "", "first", "colon":
	default:
		b.fail(p+".hosts", "hosts must be first or colon, got %q", c.Hosts)
	}
	switch c.Writes {
	case "", "operands", "last", "rest", "of":
	default:
		b.fail(p+".writes", "writes must be operands, last, rest or of, got %q", c.Writes)
	}
	if c.Exec != nil {
		e := &execSpec{style: cmpOr(c.Exec.Style, "argv"), operands: c.Exec.Operands, dashdash: c.Exec.DashDash, assignments: c.Exec.Assignments}
		switch e.style {
		case "argv", "shell", "find", "xargs":
		default:
			b.fail(p+".exec.style", "exec.style must be argv, shell, find or xargs, got %q", e.style)
		}
		if e.operands < 0 {
			b.fail(p+".exec.operands", "exec.operands must be >= 0")
		}
		e.alone = outcome{Level: L0, Rule: id, Reason: "no command to run"}
		if c.Exec.Alone != nil {
			e.alone = b.lr(p+".exec.alone", *c.Exec.Alone, id+":alone")
		}
		cmd.exec = e
	}
	if c.Code != nil {
		cs := &codeSpec{lang: c.Code.Lang, flags: map[string]bool{}, operand: -1, join: c.Code.Join, stdinFlags: c.Code.StdinFlags}
		switch cs.lang {
		case "shell", "sql", "opaque":
		default:
			b.fail(p+".code.lang", "code.lang must be shell, sql or opaque, got %q", cs.lang)
		}
		for _, f := range c.Code.Flags {
			cs.flags[f] = true
			cmd.valueFlags[f] = true
		}
		if c.Code.Operand != nil {
			cs.operand = *c.Code.Operand
		}
		if c.Code.Script != nil {
			o := b.lr(p+".code.script", *c.Code.Script, id+":script")
			cs.script = &o
		}
		if c.Code.Stdin != nil {
			o := b.lr(p+".code.stdin", *c.Code.Stdin, id+":stdin")
			cs.stdin = &o
		}
		cs.level = b.r.defaults.Unseen
		if c.Code.Level != nil {
			cs.level = b.lr(p+".code.level", *c.Code.Level, id+":code")
		}
		cmd.code = cs
	}
	cmd.layers = [][]rule{b.rules(p, id, c.Rules)}
	for _, n := range c.Names {
		if b.r.commands[n] != nil {
			b.fail(p+".names", "command %q is defined twice", n)
			continue
		}
		b.r.commands[n] = cmd
	}
}

// mergeTenant applies a tenant entry to a shipped command: it may raise the
// command's floor and add a layer of rules, never lower anything.
func (b *builder) mergeTenant(p string, c rawCommand) {
	for _, n := range c.Names {
		if b.r.commands[n] == nil {
			b.fail(p+".names", "%q mixes shipped and new commands in one entry", n)
			return
		}
	}
	if len(c.ValueFlags) > 0 || c.Exec != nil || c.Code != nil || c.Hosts != "" || c.Writes != "" ||
		len(c.WriteFlags) > 0 || c.Reads != "" || len(c.ReadFlags) > 0 {
		b.fail(p, "a tenant may only add level and rules to the shipped command %q", c.Names[0])
		return
	}
	id := "tenant:" + cmpOr(c.ID, c.Names[0])
	var floor outcome
	if c.Level != "" {
		floor = b.lr(p, rawLR{c.Level, c.Reason}, id)
	}
	layer := b.rules(p, id, c.Rules)
	done := map[*command]bool{}
	for _, n := range c.Names {
		old := b.r.commands[n]
		if done[old] {
			continue
		}
		done[old] = true
		cp := *old
		if floor.Level > cp.floor.Level {
			cp.floor = floor
		}
		cp.layers = append(slices.Clip(cp.layers), layer)
		for name, cmd := range b.r.commands {
			if cmd == old {
				b.r.commands[name] = &cp
			}
		}
	}
}

func (b *builder) rules(p, id string, in []rawRule) []rule {
	var out []rule
	for i, rr := range in {
		rp := fmt.Sprintf("%s.rules[%d]", p, i)
		rid := fmt.Sprintf("%s[%d]", id, i)
		if rr.ID != "" {
			rid = rr.ID
			if strings.HasPrefix(id, "tenant:") {
				rid = "tenant:" + rid
			}
		}
		r := rule{outcome: b.lr(rp, rawLR{rr.Level, rr.Reason}, rid), noOperands: rr.NoOperands, noexec: rr.NoExec}
		for _, s := range rr.Sub {
			r.sub = append(r.sub, compileGlobs(strings.Fields(strings.ToLower(s))))
		}
		r.flags = rr.Flags
		args := b.globs(rp+".args", rr.Args, false)
		operands := b.globs(rp+".operands", rr.Operands, false)
		last := b.globs(rp+".last", rr.Last, false)
		r.args, r.operands, r.last = newGlobSet(args), newGlobSet(operands), newGlobSet(last)
		if rr.Regex != "" {
			re, err := compilePattern(rr.Regex)
			if err != nil {
				b.fail(rp+".regex", "bad regex: %v", err)
			}
			r.re = re
		}
		if len(r.sub)+len(r.flags)+len(args)+len(operands)+len(last) == 0 && rr.Regex == "" && !r.noOperands {
			b.fail(rp, "a rule needs at least one condition (sub, flags, args, operands, last, regex, no_operands)")
		}
		out = append(out, r)
	}
	return out
}

// linkChildren marks commands that have "name sub" specs.
func (b *builder) linkChildren() {
	for n := range b.r.commands {
		if first, _, ok := strings.Cut(n, " "); ok {
			if parent := b.r.commands[first]; parent != nil && !parent.children {
				parent.children = true
			}
		}
	}
}

// Override returns a copy of r with a tenant's rules file applied on top. The
// tenant file uses the shipped format with every section optional. An override
// can only make things stricter, with one exception:
//   - defaults, sensitive_env: a level may be raised, never lowered;
//   - paths, sql rules: added as a new layer; the result is the highest level
//     any layer gives, so a tenant entry can only raise;
//   - an entry naming a shipped command may set a floor level and add rules
//     (again a new layer, highest wins); it cannot change flags, exec or code;
//   - sets: a tenant may add new sets, not change shipped ones (that could
//     make a shipped L0 rule match more and so lower a result);
//   - new commands (names the shipped file does not know) may have any level.
//     This is the one way to lower a result: an unknown program is L2 by
//     default, and a tenant may declare its own tools, say `mytool status`,
//     as L0. New names may not shadow a shipped program ("kubectl foo").
//
// We chose never to lower a shipped level, not even L1 to L0: a human approval
// is the control the product sells, and a tenant that wants a command to run
// unattended gets a standing order or a grant, which are audited per use.
// Errors wrap ErrInvalidRules and name the line in tenantYAML.
func (r *Rules) Override(tenantYAML []byte) (*Rules, error) {
	raw, lines, err := decode(tenantYAML)
	if err != nil {
		return nil, err
	}
	nr := r.clone()
	b := builder{r: nr, lines: lines, tenant: true}
	if raw.Version != 0 && raw.Version != 1 {
		b.fail("$.version", "version must be 1, got %d", raw.Version)
	}
	for k, v := range raw.Defaults {
		p := "$.defaults." + k
		o := b.lr(p, v, "tenant:"+k)
		var dst *outcome
		switch k {
		case "unknown_command":
			dst = &nr.defaults.Unknown
		case "dynamic_command":
			dst = &nr.defaults.Dynamic
		case "parse_error":
			dst = &nr.defaults.ParseError
		case "redirect":
			dst = &nr.defaults.Redirect
		case "dynamic_redirect":
			dst = &nr.defaults.DynamicRedirect
		case "remote_code":
			dst = &nr.defaults.RemoteCode
		case "unseen_code":
			dst = &nr.defaults.Unseen
		case "too_deep":
			dst = &nr.defaults.TooDeep
		default:
			b.fail(p, "unknown default %q", k)
			continue
		}
		if o.Level < dst.Level {
			b.fail(p+".level", "a tenant may not lower %s from %s to %s", k, dst.Level, o.Level)
			continue
		}
		*dst = o
	}
	b.compileShared(raw)
	if raw.SQL != nil && raw.SQL.Default != nil {
		o := b.lr("$.sql.default", *raw.SQL.Default, "tenant:sql")
		if o.Level < nr.sqlDefault.Level {
			b.fail("$.sql.default.level", "a tenant may not lower the SQL default from %s to %s", nr.sqlDefault.Level, o.Level)
		} else {
			nr.sqlDefault = o
		}
	}
	for i, c := range raw.Commands {
		b.compileCommand(fmt.Sprintf("$.commands[%d]", i), c)
	}
	b.linkChildren()
	if err := b.err(); err != nil {
		return nil, err
	}
	return nr, nil
}

func (r *Rules) clone() *Rules {
	nr := *r
	nr.sets = maps.Clone(r.sets)
	nr.commands = maps.Clone(r.commands)
	nr.env = maps.Clone(r.env)
	nr.downloads = maps.Clone(r.downloads)
	nr.paths = slices.Clip(r.paths)
	nr.secrets = slices.Clip(r.secrets)
	nr.blast = slices.Clip(r.blast)
	nr.sql = slices.Clip(r.sql)
	return &nr
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
