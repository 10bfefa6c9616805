// Package skill reads, validates, renders and writes Agent Skills: a SKILL.md file of YAML frontmatter
// between "---" lines followed by a Markdown body, in a directory named after the skill.
//
// Parse, Render, Marshal and PromptSection are pure. ReadDir, ReadFS, WriteDir and RemoveDir are the only
// functions that touch a file system, and they stay inside the root they are given.
package skill

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// FileName is the name of the file that defines a skill inside its directory.
const FileName = "SKILL.md"

// Limits from the Agent Skills specification, plus a size cap of our own.
const (
	MaxNameLen          = 64       // runes in name
	MaxDescriptionLen   = 1024     // runes in description
	MaxCompatibilityLen = 500      // runes in compatibility
	MaxSize             = 1 << 20  // bytes in a SKILL.md; the spec advises well under 500 lines
	MaxFrontmatter      = 64 << 10 // bytes between the "---" lines
	maxFlowDepth        = 64       // nesting of [ and { in the frontmatter
)

// Sentinel errors. Parse and Validate wrap them in *Error, so test with errors.Is.
var (
	ErrNoFrontmatter = errors.New("missing YAML frontmatter: the file must start with a line \"---\"")
	ErrUnterminated  = errors.New("frontmatter is not closed by a line \"---\"")
	ErrTooLarge      = fmt.Errorf("SKILL.md is larger than %d bytes", MaxSize)
	ErrInvalidName   = errors.New("invalid skill name")
	ErrInvalid       = errors.New("invalid field")
)

// Error is a problem in a SKILL.md, located by field and line. Line is 1-based in the whole file and 0
// when unknown (for example when a Skill built in code fails Validate).
type Error struct {
	Field string // frontmatter key such as "description"; "frontmatter" for a YAML syntax error
	Line  int
	Msg   string
	Err   error // ErrInvalid, ErrInvalidName, ErrNoFrontmatter…
}

// Error formats the problem as "line N: field: message".
func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the sentinel this error belongs to.
func (e *Error) Unwrap() error { return e.Err }

// Skill is one parsed SKILL.md. The JSON form is what the skills API returns.
//
// UserInvocable defaults to true in Parse when the field is absent; a Skill built in code must set it.
type Skill struct {
	Name          string            `json:"name"`
	Description   string            `json:"description"`
	License       string            `json:"license,omitempty"`
	Compatibility string            `json:"compatibility,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	AllowedTools  []string          `json:"allowed_tools,omitempty"`

	// Claude Code extensions (not portable to other agents).
	ArgumentHint           string          `json:"argument_hint,omitempty"`
	DisableModelInvocation bool            `json:"disable_model_invocation"`
	UserInvocable          bool            `json:"user_invocable"`
	Model                  string          `json:"model,omitempty"`
	Context                string          `json:"context,omitempty"`          // "fork" runs the skill in a subagent
	Agent                  string          `json:"agent,omitempty"`            // the subagent for context: fork
	DisallowedTools        []string        `json:"disallowed_tools,omitempty"` // tools removed while active
	Arguments              []string        `json:"arguments,omitempty"`        // named positional arguments ($host)
	Hooks                  json.RawMessage `json:"hooks,omitempty"`            // same shape as settings hooks

	// Extra keeps frontmatter keys this package does not know, as JSON, so Marshal writes them back.
	Extra map[string]json.RawMessage `json:"extra,omitempty"`

	// Body is the Markdown after the closing "---" line, byte for byte.
	Body string `json:"body"`
}

// frontmatter keys, in the order Marshal writes them.
const (
	keyName                   = "name"
	keyDescription            = "description"
	keyLicense                = "license"
	keyCompatibility          = "compatibility"
	keyMetadata               = "metadata"
	keyAllowedTools           = "allowed-tools"
	keyArgumentHint           = "argument-hint"
	keyDisableModelInvocation = "disable-model-invocation"
	keyUserInvocable          = "user-invocable"
	keyModel                  = "model"
	keyContext                = "context"
	keyAgent                  = "agent"
	keyDisallowedTools        = "disallowed-tools"
	keyArguments              = "arguments"
	keyHooks                  = "hooks"
)

// Parse reads a SKILL.md. dir is the name of the directory holding it: the frontmatter name must equal it.
// Pass "" when there is no directory yet (for example content posted to the API); the name is then only
// checked against the naming rules.
//
// Every problem found is returned, joined; each is an *Error naming the field and the line.
func Parse(dir string, data []byte) (s *Skill, err error) {
	if len(data) > MaxSize {
		return nil, &Error{Msg: ErrTooLarge.Error(), Err: ErrTooLarge}
	}
	fm, body, fmLine, err := split(data)
	if err != nil {
		return nil, err
	}
	if len(fm) > MaxFrontmatter {
		return nil, &Error{Field: "frontmatter", Line: 1, Msg: fmt.Sprintf("is larger than %d bytes", MaxFrontmatter), Err: ErrTooLarge}
	}
	if flowDepth(fm) > maxFlowDepth {
		// goccy/go-yaml takes time quadratic in the nesting of flow collections ("[[[[…" of 100 KB
		// took 37s), so deep nesting, which no SKILL.md needs, is refused before parsing.
		return nil, &Error{Field: "frontmatter", Line: 1, Msg: fmt.Sprintf("nests [ or { deeper than %d", maxFlowDepth), Err: ErrInvalid}
	}
	// The YAML library must not take the process down on hostile input; a panic there is a parse error.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, &Error{Field: "frontmatter", Msg: fmt.Sprintf("unparseable YAML (%v)", r), Err: ErrInvalid}
		}
	}()
	f, err := parser.ParseBytes(fm, 0)
	if err != nil {
		return nil, yamlError(err, fmLine)
	}
	s = &Skill{UserInvocable: true, Body: body}
	lines := map[string]int{}
	var errs []error
	if len(f.Docs) > 1 {
		return nil, &Error{Field: "frontmatter", Line: fmLine, Msg: "must be a single YAML document", Err: ErrInvalid}
	}
	var root ast.Node
	if len(f.Docs) == 1 {
		root = f.Docs[0].Body
	}
	if c, ok := root.(*ast.CommentGroupNode); ok && c != nil {
		root = nil
	}
	if root != nil {
		if bad := findAnchor(root); bad != nil {
			return nil, &Error{Field: "frontmatter", Line: fmLine + line(bad), Msg: "anchors, aliases and tags are not allowed", Err: ErrInvalid}
		}
		pairs, ok := mappingPairs(root)
		if !ok {
			return nil, &Error{Field: "frontmatter", Line: fmLine + line(root), Msg: "must be a mapping of keys to values", Err: ErrInvalid}
		}
		for _, p := range pairs {
			key, ok := scalarText(p.Key)
			at := fmLine + line(p.Key)
			if !ok || key == "" {
				errs = append(errs, &Error{Field: "frontmatter", Line: at, Msg: "keys must be plain strings", Err: ErrInvalid})
				continue
			}
			if _, dup := lines[key]; dup {
				errs = append(errs, &Error{Field: key, Line: at, Msg: "duplicate key", Err: ErrInvalid})
				continue
			}
			lines[key] = at
			if err := s.set(key, p.Value); err != nil {
				errs = append(errs, &Error{Field: key, Line: at, Msg: err.Error(), Err: ErrInvalid})
			}
		}
	}
	errs = append(errs, s.validate(dir, lines, fmLine)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// Validate checks the skill against the specification's rules: name (and, when dir is not "", that it
// equals dir), description and compatibility lengths, and tool names. Each problem is an *Error; they
// are joined.
func (s *Skill) Validate(dir string) error {
	return errors.Join(s.validate(dir, nil, 0)...)
}

// ValidName returns an error saying what is wrong unless name is a valid skill name: 1–64 characters
// of a-z, 0-9 and "-", with no leading, trailing or doubled "-". A valid name is also a safe single
// path element.
func ValidName(name string) error {
	switch {
	case name == "":
		return errors.New("is required")
	case len(name) > MaxNameLen:
		return fmt.Errorf("is %d characters; at most %d", len(name), MaxNameLen)
	case name[0] == '-' || name[len(name)-1] == '-':
		return errors.New("must not start or end with \"-\"")
	case strings.Contains(name, "--"):
		return errors.New("must not contain \"--\"")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Errorf("%q: only lowercase letters a-z, digits and \"-\" are allowed", name)
		}
	}
	return nil
}

func (s *Skill) validate(dir string, lines map[string]int, fmLine int) []error {
	var errs []error
	at := func(key string) int {
		if l, ok := lines[key]; ok {
			return l
		}
		return fmLine
	}
	if err := ValidName(s.Name); err != nil {
		errs = append(errs, &Error{Field: keyName, Line: at(keyName), Msg: err.Error(), Err: ErrInvalidName})
	} else if dir != "" && s.Name != dir {
		errs = append(errs, &Error{Field: keyName, Line: at(keyName), Msg: fmt.Sprintf("%q must equal the directory name %q", s.Name, dir), Err: ErrInvalidName})
	}
	switch n := utf8.RuneCountInString(s.Description); {
	case strings.TrimSpace(s.Description) == "":
		errs = append(errs, &Error{Field: keyDescription, Line: at(keyDescription), Msg: "is required: say what the skill does and when to use it", Err: ErrInvalid})
	case n > MaxDescriptionLen:
		errs = append(errs, &Error{Field: keyDescription, Line: at(keyDescription), Msg: fmt.Sprintf("is %d characters; at most %d", n, MaxDescriptionLen), Err: ErrInvalid})
	}
	if n := utf8.RuneCountInString(s.Compatibility); n > MaxCompatibilityLen {
		errs = append(errs, &Error{Field: keyCompatibility, Line: at(keyCompatibility), Msg: fmt.Sprintf("is %d characters; at most %d", n, MaxCompatibilityLen), Err: ErrInvalid})
	}
	for _, f := range []struct {
		key  string
		list []string
	}{{keyAllowedTools, s.AllowedTools}, {keyDisallowedTools, s.DisallowedTools}, {keyArguments, s.Arguments}} {
		for _, t := range f.list {
			if t == "" || strings.ContainsAny(t, "\n\r") {
				errs = append(errs, &Error{Field: f.key, Line: at(f.key), Msg: fmt.Sprintf("%q is not a valid entry", t), Err: ErrInvalid})
			}
		}
	}
	for _, a := range s.Arguments {
		if !validArgName(a) {
			errs = append(errs, &Error{Field: keyArguments, Line: at(keyArguments), Msg: fmt.Sprintf("%q: argument names are letters, digits and _ and start with a letter", a), Err: ErrInvalid})
		}
	}
	if s.Context != "" && s.Context != "fork" {
		errs = append(errs, &Error{Field: keyContext, Line: at(keyContext), Msg: fmt.Sprintf("%q: the only supported value is \"fork\"", s.Context), Err: ErrInvalid})
	}
	if len(s.Hooks) > 0 && !isJSONObject(s.Hooks) {
		errs = append(errs, &Error{Field: keyHooks, Line: at(keyHooks), Msg: "must be a mapping", Err: ErrInvalid})
	}
	for k, v := range s.Extra {
		if k == "" || !json.Valid(v) || isKnownKey(k) {
			errs = append(errs, &Error{Field: k, Line: at(k), Msg: "invalid extra field", Err: ErrInvalid})
		}
	}
	return errs
}

func validArgName(a string) bool {
	if a == "" || a == "ARGUMENTS" || a == "CLAUDE_SESSION_ID" || a == "CLAUDE_SKILL_DIR" {
		return false
	}
	for i, r := range a {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_'
		if !letter && !(i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func isJSONObject(b json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && m != nil
}

func isKnownKey(k string) bool {
	switch k {
	case keyName, keyDescription, keyLicense, keyCompatibility, keyMetadata, keyAllowedTools, keyArgumentHint,
		keyDisableModelInvocation, keyUserInvocable, keyModel, keyContext, keyAgent, keyDisallowedTools,
		keyArguments, keyHooks:
		return true
	}
	return false
}

// set decodes one frontmatter value into the field for key.
func (s *Skill) set(key string, v ast.Node) error {
	var err error
	switch key {
	case keyName:
		s.Name, err = stringValue(v)
	case keyDescription:
		s.Description, err = stringValue(v)
		s.Description = strings.TrimRight(s.Description, "\n")
	case keyLicense:
		s.License, err = stringValue(v)
	case keyCompatibility:
		s.Compatibility, err = stringValue(v)
	case keyArgumentHint:
		s.ArgumentHint, err = stringValue(v)
		if _, isSeq := v.(*ast.SequenceNode); isSeq {
			err = errors.New("must be a string; quote it, as in argument-hint: \"[host] [service]\"")
		}
	case keyModel:
		s.Model, err = stringValue(v)
	case keyContext:
		s.Context, err = stringValue(v)
	case keyAgent:
		s.Agent, err = stringValue(v)
	case keyMetadata:
		s.Metadata, err = metadataValue(v)
	case keyAllowedTools:
		s.AllowedTools, err = listValue(v)
	case keyDisallowedTools:
		s.DisallowedTools, err = listValue(v)
	case keyArguments:
		s.Arguments, err = listValue(v)
	case keyDisableModelInvocation:
		s.DisableModelInvocation, err = boolValue(v, false)
	case keyUserInvocable:
		s.UserInvocable, err = boolValue(v, true)
	case keyHooks:
		if isNull(v) {
			return nil
		}
		if _, ok := mappingPairs(v); !ok {
			return errors.New("must be a mapping")
		}
		s.Hooks, err = jsonValue(v)
	default:
		var raw json.RawMessage
		raw, err = jsonValue(v)
		if err == nil {
			if s.Extra == nil {
				s.Extra = map[string]json.RawMessage{}
			}
			s.Extra[key] = raw
		}
	}
	return err
}

// split cuts data into frontmatter and body. fmLine is the file line of the frontmatter's first line
// minus one, so a YAML line n is file line fmLine+n.
func split(data []byte) (fm []byte, body string, fmLine int, err error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	first, rest, ok := cutLine(data)
	if !isFence(first) {
		return nil, "", 0, &Error{Field: "frontmatter", Line: 1, Msg: ErrNoFrontmatter.Error(), Err: ErrNoFrontmatter}
	}
	if !ok {
		return nil, "", 0, &Error{Field: "frontmatter", Line: 1, Msg: ErrUnterminated.Error(), Err: ErrUnterminated}
	}
	off := 0
	for {
		l, next, more := cutLine(rest[off:])
		if isFence(l) {
			fm = rest[:off]
			body = string(rest[off+len(l):])
			body = strings.TrimPrefix(body, "\n")
			return fm, body, 1, nil
		}
		if !more {
			return nil, "", 0, &Error{Field: "frontmatter", Line: 1, Msg: ErrUnterminated.Error(), Err: ErrUnterminated}
		}
		off = len(rest) - len(next)
	}
}

// flowDepth is the deepest nesting of [ and { in b, counting brackets inside quotes too: an
// overestimate is harmless at the limit we use.
func flowDepth(b []byte) int {
	depth, peak := 0, 0
	for _, c := range b {
		switch c {
		case '[', '{':
			depth++
			peak = max(peak, depth)
		case ']', '}':
			depth = max(depth-1, 0)
		}
	}
	return peak
}

// cutLine returns the first line of b without its "\n" (and "\r"), the rest after the "\n", and whether
// a "\n" was found.
func cutLine(b []byte) (line, rest []byte, found bool) {
	line, rest, found = bytes.Cut(b, []byte("\n"))
	return line, rest, found
}

func isFence(l []byte) bool {
	return string(bytes.TrimRight(l, " \t\r")) == "---"
}

// yamlError turns a YAML library error into an *Error with a file line and a one-line message.
func yamlError(err error, fmLine int) error {
	e := &Error{Field: "frontmatter", Line: fmLine, Msg: "invalid YAML", Err: ErrInvalid}
	var ye yaml.Error
	if errors.As(err, &ye) {
		e.Msg = "invalid YAML: " + ye.GetMessage()
		if tok := ye.GetToken(); tok != nil && tok.Position != nil {
			e.Line = fmLine + tok.Position.Line
		}
		if strings.Contains(e.Msg, "mapping value is not allowed") {
			e.Msg += " (quote values that contain \": \")"
		}
	}
	return e
}

func line(n ast.Node) int {
	if n == nil {
		return 0
	}
	if tok := n.GetToken(); tok != nil && tok.Position != nil {
		return tok.Position.Line
	}
	return 0
}

// mappingPairs returns the key/value pairs of a mapping node; goccy gives a one-pair mapping either as a
// MappingNode or as a bare MappingValueNode.
func mappingPairs(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}, true
	}
	return nil, false
}

type anchorFinder struct{ found ast.Node }

func (a *anchorFinder) Visit(n ast.Node) ast.Visitor {
	if a.found != nil || n == nil {
		return nil
	}
	switch n.(type) {
	case *ast.AnchorNode, *ast.AliasNode, *ast.TagNode, *ast.MergeKeyNode:
		a.found = n
		return nil
	}
	return a
}

// findAnchor returns the first anchor, alias, tag or merge key under n. They have no use in a SKILL.md
// and aliases are how a small YAML document expands into a huge value.
func findAnchor(n ast.Node) ast.Node {
	a := &anchorFinder{}
	ast.Walk(a, n)
	return a.found
}

func isNull(n ast.Node) bool {
	_, ok := n.(*ast.NullNode)
	return n == nil || ok
}

// scalarText returns the text of a scalar as written (so "1.0" stays "1.0").
func scalarText(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		if tok := v.GetToken(); tok != nil && tok.Type == token.StringType && strings.Contains(tok.Origin, "\t") {
			return foldPlain(tok.Origin), true
		}
		return v.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value, true
	case *ast.LiteralNode:
		var s string
		if err := yaml.NodeToValue(v, &s); err != nil {
			return "", false
		}
		return s, true
	}
	return "", false
}

// foldPlain folds a plain (unquoted) scalar as YAML does: lines are trimmed, a line break becomes a
// space and an empty line a newline. goccy/go-yaml v1.19 drops tabs inside plain scalars ("a\tb"
// becomes "ab"), which would glue allowed-tools entries together, so plain scalars holding a tab are
// folded here from the token's source text.
func foldPlain(origin string) string {
	var b strings.Builder
	pendingSpace := false
	for _, l := range strings.Split(origin, "\n") {
		l = strings.Trim(l, " \t\r")
		if l == "" {
			if b.Len() > 0 {
				b.WriteByte('\n')
				pendingSpace = false
			}
			continue
		}
		if pendingSpace {
			b.WriteByte(' ')
		}
		b.WriteString(l)
		pendingSpace = true
	}
	return strings.TrimRight(b.String(), "\n")
}

func stringValue(n ast.Node) (string, error) {
	if isNull(n) {
		return "", nil
	}
	s, ok := scalarText(n)
	if !ok {
		return "", fmt.Errorf("must be a string, not a %s", kind(n))
	}
	return s, nil
}

func boolValue(n ast.Node, def bool) (bool, error) {
	if isNull(n) {
		return def, nil
	}
	if b, ok := n.(*ast.BoolNode); ok {
		return b.Value, nil
	}
	if s, ok := n.(*ast.StringNode); ok {
		switch s.Value {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, errors.New("must be true or false")
}

// listValue accepts a YAML list of strings or one string of entries separated by spaces or commas.
// Separators inside parentheses belong to the entry, so "Read, Bash(git *)" is two entries.
func listValue(n ast.Node) ([]string, error) {
	if isNull(n) {
		return nil, nil
	}
	if seq, ok := n.(*ast.SequenceNode); ok {
		out := make([]string, 0, len(seq.Values))
		for _, v := range seq.Values {
			s, ok := scalarText(v)
			if !ok {
				return nil, fmt.Errorf("list entries must be strings, not a %s", kind(v))
			}
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out, nil
	}
	s, ok := scalarText(n)
	if !ok {
		return nil, fmt.Errorf("must be a string or a list of strings, not a %s", kind(n))
	}
	return SplitTools(s), nil
}

// SplitTools splits an allowed-tools string into entries: separators are spaces and commas outside
// parentheses, so "Read, Grep, Bash(git *)" gives [Read Grep Bash(git *)].
func SplitTools(s string) []string {
	var out []string
	var cur strings.Builder
	depth := 0
	flush := func() {
		if t := strings.TrimSpace(cur.String()); t != "" {
			out = append(out, t)
		}
		cur.Reset()
	}
	for _, r := range s {
		switch {
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case depth == 0 && (r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'):
			flush()
			continue
		}
		cur.WriteRune(r)
	}
	flush()
	return out
}

func metadataValue(n ast.Node) (map[string]string, error) {
	if isNull(n) {
		return nil, nil
	}
	pairs, ok := mappingPairs(n)
	if !ok {
		return nil, fmt.Errorf("must be a mapping of strings to strings, not a %s", kind(n))
	}
	out := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, ok := scalarText(p.Key)
		if !ok || k == "" {
			return nil, errors.New("keys must be strings")
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("duplicate key %q", k)
		}
		v, err := stringValue(p.Value)
		if err != nil {
			return nil, fmt.Errorf("%s %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

func jsonValue(n ast.Node) (json.RawMessage, error) {
	var v any
	if err := yaml.NodeToValue(n, &v); err != nil {
		return nil, errors.New("cannot be decoded")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, errors.New("must use string keys and plain values")
	}
	return b, nil
}

func kind(n ast.Node) string {
	switch n.(type) {
	case *ast.SequenceNode:
		return "list"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "mapping"
	}
	return strings.ToLower(n.Type().String())
}

// Marshal writes the skill as a SKILL.md: frontmatter in a fixed key order, then the body. Parse of the
// result gives back an equal Skill.
func (s *Skill) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString("---\n")
	put := func(key string, v any) {
		out, err := yaml.MarshalWithOptions(map[string]any{key: v}, yaml.UseLiteralStyleIfMultiline(false))
		if err != nil {
			// Only plain strings, lists, maps and JSON-decoded values reach here.
			panic(fmt.Sprintf("skill: marshal %s: %v", key, err))
		}
		b.Write(out)
	}
	putString := func(key, v string) {
		if v != "" {
			put(key, v)
		}
	}
	putString(keyName, s.Name)
	putString(keyDescription, s.Description)
	putString(keyLicense, s.License)
	putString(keyCompatibility, s.Compatibility)
	if len(s.Metadata) > 0 {
		put(keyMetadata, s.Metadata)
	}
	putList := func(key string, l []string) {
		if len(l) == 0 {
			return
		}
		if joined := strings.Join(l, " "); slices.Equal(SplitTools(joined), l) {
			put(key, joined)
			return
		}
		put(key, l)
	}
	putList(keyAllowedTools, s.AllowedTools)
	putString(keyArgumentHint, s.ArgumentHint)
	if s.DisableModelInvocation {
		put(keyDisableModelInvocation, true)
	}
	if !s.UserInvocable {
		put(keyUserInvocable, false)
	}
	putString(keyModel, s.Model)
	putString(keyContext, s.Context)
	putString(keyAgent, s.Agent)
	putList(keyDisallowedTools, s.DisallowedTools)
	putList(keyArguments, s.Arguments)
	putJSON := func(key string, raw json.RawMessage) {
		var v any
		if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
			return
		}
		put(key, v)
	}
	putJSON(keyHooks, s.Hooks)
	for _, k := range slices.Sorted(maps.Keys(s.Extra)) {
		putJSON(k, s.Extra[k])
	}
	b.WriteString("---\n")
	b.WriteString(s.Body)
	return b.Bytes()
}
