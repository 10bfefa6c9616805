package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/it0/it0/internal/store/storetest"
	"mvdan.cc/sh/v3/syntax"
)

// servedSpec fetches /api/v1/openapi.json from a server with every module and loads it with kin-openapi.
func servedSpec(t *testing.T) (*testBundle, []byte, *openapi3.T) {
	t.Helper()
	b := setupApp(t, storetest.OpenSQLite)
	r := b.do("GET", "/api/v1/openapi.json", "", nil)
	if r.status != 200 {
		t.Fatalf("openapi.json: %d %s", r.status, r.raw)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData([]byte(r.raw))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return b, []byte(r.raw), doc
}

// Ensure the served document is valid OpenAPI 3 (kin-openapi's validator, examples and defaults included)
// and carries what a client generator needs.
func TestOpenAPIDocumentValid(t *testing.T) {
	t.Parallel()
	b, raw, doc := servedSpec(t)
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation(), openapi3.EnableSchemaDefaultsValidation(),
		openapi3.EnableSchemaPatternValidation()); err != nil {
		t.Fatalf("invalid OpenAPI document: %v", err)
	}
	if len(doc.Servers) == 0 {
		t.Error("no servers")
	}
	if doc.Components.Schemas["Error"] == nil {
		t.Error("no Error component")
	}
	if n := bytes.Count(raw, []byte(`"hint"`)); n != 1 {
		t.Errorf("the error envelope's hint appears %d times: the envelope must be one component", n)
	}
	queries := 0
	for _, rt := range b.srv.routes {
		op := doc.Paths.Find(rt.path).GetOperation(rt.method)
		if op == nil {
			t.Errorf("%s %s missing", rt.method, rt.path)
			continue
		}
		if rt.public != (op.Security != nil && len(*op.Security) == 0) {
			t.Errorf("%s %s: public=%v but security=%v", rt.method, rt.path, rt.public, op.Security)
		}
		has4xx := false
		for code := range op.Responses.Map() {
			has4xx = has4xx || strings.HasPrefix(code, "4")
		}
		if !has4xx {
			t.Errorf("%s %s: no 4XX response", rt.method, rt.path)
		}
		if rt.req != nil && op.RequestBody == nil {
			t.Errorf("%s %s: no request schema", rt.method, rt.path)
		}
		for _, p := range op.Parameters {
			if p.Value.In == "query" {
				queries++
			}
		}
	}
	if queries < 40 {
		t.Errorf("only %d query parameters documented", queries)
	}
	// Spot checks of what reflection and the tables add.
	sess := doc.Components.Schemas["Session"].Value
	if sess == nil || !slices.Contains(sess.Required, "status") || len(sess.Properties["status"].Value.Enum) != len(sessionStatuses) {
		t.Errorf("Session: required or status enum missing: %+v", sess)
	}
	login := doc.Components.Schemas["LoginRequest"].Value
	if login == nil || !slices.Equal(login.Required, []string{"email", "password"}) {
		t.Errorf("LoginRequest required: %+v", login)
	}
	appr := doc.Components.Schemas["Approval"].Value
	if appr == nil || len(appr.Properties["risk_level"].Value.Enum) != 4 {
		t.Errorf("Approval risk_level enum missing")
	}
}

// Ensure the served document passes Redocly's linter with the strict ruleset (every warning is an
// error). The linter comes from npm (.ci/run installs it); locally the test skips without it.
func TestOpenAPILint(t *testing.T) {
	t.Parallel()
	bin := redoclyBinary()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("redocly CLI not found (npm install @redocly/cli; or set IT0_REDOCLY); .ci/run installs it")
		}
		t.Skip("redocly CLI not found; set IT0_REDOCLY or put redocly on PATH")
	}
	_, raw, _ := servedSpec(t)
	dir := t.TempDir()
	spec := filepath.Join(dir, "openapi.json")
	if err := os.WriteFile(spec, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := filepath.Abs("testdata/redocly.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "lint", "--config", cfg, "--format", "stylish", spec)
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redocly lint: %v\n%s", err, out)
	}
	if regexp.MustCompile(`(?m)^\s+\d+:\d+\s+warning\s`).Match(out) {
		t.Errorf("redocly lint warnings:\n%s", out)
	}
}

func redoclyBinary() string {
	if p := os.Getenv("IT0_REDOCLY"); p != "" {
		return p
	}
	if p, err := exec.LookPath("redocly"); err == nil {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "it0-ci", "redocly", "node_modules", ".bin", "redocly")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Ensure the query parameters documented for each route are exactly those its handler reads: a handler
// that starts reading ?foo= fails this test until the document says so.
func TestOpenAPIQueryParamsMatchHandlers(t *testing.T) {
	t.Parallel()
	read := queryReadsByFunc(t)
	b := setupApp(t, storetest.OpenSQLite)
	documented := map[string]bool{}
	for _, rt := range b.srv.routes {
		key := rt.method + " " + rt.path
		fn := handlerName(rt.handler)
		got := read[fn]
		if strings.HasPrefix(rt.path, "/ws/") && !rt.public {
			got = append(slices.Clone(got), "token") // authenticate reads ?token= on WebSocket routes
		}
		var want []string
		for _, q := range queryParams[key] {
			want = append(want, q.name)
		}
		slices.Sort(got)
		got = slices.Compact(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s (handler %s) reads query parameters %v; openapi_tables.go documents %v", key, fn, got, want)
		}
		documented[key] = true
	}
	for key := range queryParams {
		if !documented[key] {
			t.Errorf("queryParams documents %s, which is no route", key)
		}
	}
}

// handlerName is the name of the method a route's handler is or was made by ("listSessions", "decide").
func handlerName(h func(http.ResponseWriter, *http.Request) error) string {
	name := runtime.FuncForPC(reflect.ValueOf(h).Pointer()).Name()
	name = strings.TrimSuffix(name, "-fm")
	if i := strings.Index(name, ").") + 2; i > 1 {
		name = name[i:]
	}
	name, _, _ = strings.Cut(name, ".func")
	return name
}

// queryReadsByFunc parses this package's sources and returns, per function or method, the query
// parameter names it reads: r.URL.Query().Get("x"), q.Get("x") on a url.Values, queryInt(r, "x", …) and
// queryTime(r, "x"), following calls to other methods of Server.
func queryReadsByFunc(t *testing.T) map[string][]string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	direct := map[string][]string{}
	calls := map[string][]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			name := fd.Name.Name
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				switch fun := call.Fun.(type) {
				case *ast.Ident:
					if (fun.Name == "queryInt" || fun.Name == "queryTime") && len(call.Args) > 1 {
						if s, ok := stringLit(call.Args[1]); ok {
							direct[name] = append(direct[name], s)
						}
					}
				case *ast.SelectorExpr:
					if fun.Sel.Name == "Get" && len(call.Args) == 1 && isQueryValues(fun.X) {
						if s, ok := stringLit(call.Args[0]); ok {
							direct[name] = append(direct[name], s)
						}
					}
					if recv, ok := fun.X.(*ast.Ident); ok && recv.Name == "s" {
						calls[name] = append(calls[name], fun.Sel.Name)
					}
				}
				return true
			})
		}
	}
	out := map[string][]string{}
	var visit func(fn string, seen map[string]bool) []string
	visit = func(fn string, seen map[string]bool) []string {
		if seen[fn] {
			return nil
		}
		seen[fn] = true
		names := slices.Clone(direct[fn])
		for _, c := range calls[fn] {
			if c == "authenticate" || c == "wrap" {
				continue
			}
			names = append(names, visit(c, seen)...)
		}
		return names
	}
	for fn := range direct {
		out[fn] = visit(fn, map[string]bool{})
	}
	for fn := range calls {
		out[fn] = visit(fn, map[string]bool{})
	}
	return out
}

// isQueryValues reports whether x is r.URL.Query() or a variable named q (the package's name for it).
func isQueryValues(x ast.Expr) bool {
	if id, ok := x.(*ast.Ident); ok {
		return id.Name == "q"
	}
	call, ok := x.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "Query"
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// Ensure every type and field the tables name exists, so a renamed field cannot leave a stale entry.
func TestOpenAPITablesNameRealFields(t *testing.T) {
	t.Parallel()
	for typ, fields := range requiredFields {
		names := jsonNames(typ)
		for _, f := range fields {
			if !names[f] {
				t.Errorf("requiredFields: %s has no JSON field %q", typ, f)
			}
		}
	}
	_, _, doc := servedSpec(t)
	used := map[string]bool{}
	for _, s := range doc.Components.Schemas {
		for name, p := range s.Value.Properties {
			if len(p.Value.Enum) > 0 || (p.Value.Items != nil && len(p.Value.Items.Value.Enum) > 0) {
				used[name] = true
			}
		}
	}
	for key := range enumByField {
		field := key[strings.LastIndex(key, ".")+1:]
		if !used[field] {
			t.Errorf("enumByField %q matches no field of any schema", key)
		}
	}
}

func jsonNames(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			for k := range jsonNames(deref(f.Type)) {
				out[k] = true
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out[cmp.Or(name, f.Name)] = true
	}
	return out
}

// Ensure unknown paths and methods under /api/ answer in the JSON error envelope.
func TestAPIFallbackErrors(t *testing.T) {
	t.Parallel()
	b := setupApp(t, storetest.OpenSQLite)
	for _, tc := range []struct {
		name, method, path string
		status             int
		code, allow        string
	}{
		{"UnknownPath", "GET", "/api/v1/nope", 404, "not_found", ""},
		{"UnknownVersion", "POST", "/api/v2/auth/login", 404, "not_found", ""},
		{"WrongMethod", "DELETE", "/api/v1/auth/login", 405, "method_not_allowed", "POST"},
		{"WrongMethodWithID", "PUT", "/api/v1/agent/sessions/x", 405, "method_not_allowed", "GET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.do(tc.method, tc.path, b.adminTok, nil)
			if r.status != tc.status || r.errCode() != tc.code || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
				t.Fatalf("%s %s: %d %s %q", tc.method, tc.path, r.status, r.header.Get("Content-Type"), r.raw)
			}
			if r.header.Get("Allow") != tc.allow {
				t.Errorf("Allow = %q, want %q", r.header.Get("Allow"), tc.allow)
			}
		})
	}
	if r := b.do("GET", "/metrics", "", nil); !strings.Contains(r.raw, `it0_http_requests_total{method="GET",route="api_fallback",status="404"}`) {
		t.Errorf("fallback requests are not counted under route=api_fallback")
	}
}

// Ensure every curl example in the README names a real endpoint and sends what its schema accepts.
func TestREADMEExamplesMatchSchema(t *testing.T) {
	t.Parallel()
	b, _, doc := servedSpec(t)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := curlExamples(t, string(readme))
	if len(examples) < 30 {
		t.Fatalf("found only %d curl examples in README.md", len(examples))
	}
	checked := 0
	for _, ex := range examples {
		if !strings.HasPrefix(ex.path, "/api/") || ex.path == "/api/v1/openapi.json" {
			continue
		}
		t.Run(ex.method+" "+ex.path, func(t *testing.T) {
			rt, params, ok := matchRoute(b.srv.routes, ex.method, ex.path)
			if !ok {
				t.Fatalf("README example %q: no route %s %s", ex.line, ex.method, ex.path)
			}
			op := doc.Paths.Find(rt.path).GetOperation(rt.method)
			var body io.Reader
			if ex.body != "" {
				body = strings.NewReader(ex.body)
			}
			req, _ := http.NewRequest(ex.method, "http://it0.test"+ex.path+ex.query, body)
			req.Header.Set("Content-Type", "application/json")
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params,
				Route:   &routers.Route{Spec: doc, Path: rt.path, PathItem: doc.Paths.Find(rt.path), Method: rt.method, Operation: op},
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, ExcludeRequestBody: ex.bodyUnknown}}
			if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
				t.Errorf("README example %q is refused by the schema: %v", ex.line, err)
			}
		})
		checked++
	}
	if checked < 25 {
		t.Errorf("checked only %d API examples", checked)
	}
}

type curlExample struct {
	line, method, path, query, body string
	bodyUnknown                     bool // sent from a file or a process substitution
}

var placeholder = regexp.MustCompile(`<[a-z_]+>`)

// curlExamples parses the README's sh code blocks and returns their curl commands.
func curlExamples(t *testing.T, readme string) []curlExample {
	t.Helper()
	var out []curlExample
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(readme, -1)
	for _, blk := range blocks {
		// Placeholders such as <id> are shell redirections; make them words first.
		src := placeholder.ReplaceAllStringFunc(blk[1], func(s string) string { return "PH_" + strings.Trim(s, "<>") })
		f, err := syntax.NewParser().Parse(strings.NewReader(src), "README.md")
		if err != nil {
			t.Fatalf("README sh block does not parse: %v\n%s", err, src)
		}
		syntax.Walk(f, func(n syntax.Node) bool {
			call, ok := n.(*syntax.CallExpr)
			if !ok || len(call.Args) == 0 || call.Args[0].Lit() != "curl" {
				return true
			}
			ex := curlExample{line: src[call.Pos().Offset():call.End().Offset()]}
			method := ""
			args := call.Args[1:]
			for i := 0; i < len(args); i++ {
				w, known := wordString(args[i])
				next := func() (string, bool) {
					i++
					if i >= len(args) {
						return "", false
					}
					return wordString(args[i])
				}
				switch {
				case w == "-X":
					method, _ = next()
				case w == "-H":
					next()
				case w == "-d" || w == "--data" || w == "--data-binary":
					body, ok := next()
					ex.body = body
					if !ok || strings.HasPrefix(body, "@") {
						ex.bodyUnknown, ex.body = true, "{}"
					}
				case strings.HasPrefix(w, "-"):
				case known && strings.HasPrefix(w, "$API"):
					u := strings.TrimPrefix(w, "$API")
					u = regexp.MustCompile(`PH_[a-z_]+`).ReplaceAllString(u, "x")
					ex.path, ex.query, _ = strings.Cut(u, "?")
					if ex.query != "" {
						ex.query = "?" + ex.query
					}
				}
			}
			ex.method = method
			if ex.method == "" {
				ex.method = "GET"
				if ex.body != "" {
					ex.method = "POST"
				}
			}
			if ex.path != "" {
				out = append(out, ex)
			}
			return true
		})
	}
	return out
}

// wordString renders a shell word with parameters left as $NAME; known is false when the word holds a
// command or process substitution, whose output the test cannot know.
func wordString(w *syntax.Word) (string, bool) {
	var sb strings.Builder
	known := true
	var parts func([]syntax.WordPart)
	parts = func(ps []syntax.WordPart) {
		for _, p := range ps {
			switch p := p.(type) {
			case *syntax.Lit:
				sb.WriteString(p.Value)
			case *syntax.SglQuoted:
				sb.WriteString(p.Value)
			case *syntax.DblQuoted:
				parts(p.Parts)
			case *syntax.ParamExp:
				sb.WriteString("$" + p.Param.Value)
			default:
				known = false
			}
		}
	}
	parts(w.Parts)
	return sb.String(), known
}

// matchRoute finds the route of method and a concrete path, with its path parameters.
func matchRoute(routes []route, method, path string) (route, map[string]string, bool) {
	for _, rt := range routes {
		if rt.method != method {
			continue
		}
		tp, pp := strings.Split(rt.path, "/"), strings.Split(path, "/")
		if len(tp) != len(pp) {
			continue
		}
		params := map[string]string{}
		ok := true
		for i := range tp {
			if name, isParam := strings.CutPrefix(tp[i], "{"); isParam {
				params[strings.TrimSuffix(name, "}")] = pp[i]
			} else if tp[i] != pp[i] {
				ok = false
				break
			}
		}
		if ok {
			return rt, params, true
		}
	}
	return route{}, nil, false
}
