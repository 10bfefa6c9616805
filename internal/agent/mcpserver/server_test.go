package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const (
	testToken   = "tok-secret-123"
	testSession = "sess-42"
	approval    = "IT0-APPROVAL-REQUIRED approval_id=ap-7 risk_level=1: systemctl restart nginx changes a service"
)

var baseTools = []Tool{
	{Name: "run_command", Description: "Run a shell command on a managed server.", InputSchema: json.RawMessage(
		`{"type":"object","properties":{"server":{"type":"string"},"command":{"type":"string"}},"required":["command"]}`)},
	{Name: "read_file", Description: "Read a file on a managed server.", InputSchema: json.RawMessage(
		`{"type":"object","properties":{"server":{"type":"string"},"path":{"type":"string"}},"required":["server","path"]}`)},
	{Name: "list_servers", Description: "List managed servers.", InputSchema: json.RawMessage(`{"type":"object","properties":{}}`)},
	// Awkward entries a server might send: they must neither crash us nor show up broken.
	{Name: "bad name!", Description: "invalid name", InputSchema: json.RawMessage(`{"type":"object"}`)},
	{Name: "no_schema", Description: "missing schema"},
	{Name: "array_schema", Description: "schema of the wrong type", InputSchema: json.RawMessage(`{"type":"array"}`)},
}

// fakeIT0 implements IT0's two agent tool endpoints the way the real server documents them.
type fakeIT0 struct {
	t  *testing.T
	mu sync.Mutex
	// tools is what GET /tools returns.
	tools []Tool
	// calls records each call's tool name and raw input.
	calls []string
	// status, when set, is returned for every request.
	status int
}

func (f *fakeIT0) setTools(tools []Tool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tools = tools
}

func (f *fakeIT0) setStatus(code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = code
}

func (f *fakeIT0) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func apiErr(w http.ResponseWriter, code int, c, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]string{"code": c, "message": msg}})
}

func (f *fakeIT0) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	status := f.status
	tools := slices.Clone(f.tools)
	f.mu.Unlock()
	if status != 0 {
		apiErr(w, status, "forced", "forced failure")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		apiErr(w, http.StatusUnauthorized, "unauthorized", "invalid token")
		return
	}
	if got := r.Header.Get("X-IT0-Session-Id"); got != testSession {
		apiErr(w, http.StatusBadRequest, "session", "want X-IT0-Session-Id "+testSession+", got "+got)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/it0/api/v1/agent/tools":
		writeJSON(w, http.StatusOK, map[string]any{"tools": tools})
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/it0/api/v1/agent/tools/"):
		name := strings.TrimPrefix(r.URL.Path, "/it0/api/v1/agent/tools/")
		var body struct {
			Input map[string]any `json:"input"`
		}
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&body) != nil || body.Input == nil {
			apiErr(w, http.StatusBadRequest, "bad_request", `body must be {"input":{…}}`)
			return
		}
		in, _ := json.Marshal(body.Input)
		f.mu.Lock()
		f.calls = append(f.calls, name+" "+string(in))
		f.mu.Unlock()
		if !slices.ContainsFunc(tools, func(t Tool) bool { return t.Name == name }) {
			apiErr(w, http.StatusNotFound, "not_found", "no tool "+name)
			return
		}
		cmd, _ := body.Input["command"].(string)
		switch {
		case name == "run_command" && strings.Contains(cmd, "restart"):
			writeJSON(w, http.StatusOK, Result{Output: approval, IsError: true})
		case name == "run_command" && cmd == "slow":
			// Long enough for a client's EOF to arrive while the call is in flight.
			time.Sleep(200 * time.Millisecond)
			writeJSON(w, http.StatusOK, Result{Output: "slept"})
		case name == "run_command" && cmd == "explode":
			apiErr(w, http.StatusInternalServerError, "internal", "Internal error")
		case name == "run_command" && cmd == "garbage":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, "{not json")
		default:
			writeJSON(w, http.StatusOK, Result{Output: "ran " + name + " with " + string(in)})
		}
	default:
		http.NotFound(w, r)
	}
}

type bundle struct {
	it0    *fakeIT0
	it0srv *httptest.Server
	server *Server
	logs   *bytes.Buffer
}

// setup starts a fake IT0 and an MCP server in front of it.
func setup(t *testing.T) (*Server, *bundle) {
	t.Helper()
	f := &fakeIT0{t: t, tools: baseTools}
	hs := httptest.NewServer(f)
	t.Cleanup(hs.Close)
	logs := &bytes.Buffer{}
	s, err := New(context.Background(), Config{
		URL: hs.URL + "/it0/", Token: testToken, SessionID: testSession,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, &bundle{it0: f, it0srv: hs, server: s, logs: logs}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// connectStdio serves s over a pair of pipes, as `it0 mcp` does over stdin/stdout, and connects the
// SDK's client to the other ends.
func connectStdio(t *testing.T, s *Server, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	inR, inW := io.Pipe()   // client → server
	outR, outW := io.Pipe() // server → client
	done := make(chan error, 1)
	go func() {
		done <- s.ServeStdio(ctx, inR, outW)
		outW.Close()
	}()
	client := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, opts)
	cs, err := client.Connect(ctx, &mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		cancel()
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() {
		// Close the server's stdin first, as a client process exiting would: closing the client session
		// first can close the pipe the server is still answering on.
		inW.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ServeStdio: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("ServeStdio did not return after the client closed stdin")
		}
		cs.Close()
		cancel()
	})
	return cs
}

// connectHTTP serves s over streamable HTTP and connects the SDK's client to it.
func connectHTTP(t *testing.T, s *Server, opts HTTPOptions, hc *http.Client, copts *mcp.ClientOptions) (*mcp.ClientSession, error) {
	t.Helper()
	hs := httptest.NewServer(s.Handler(opts))
	t.Cleanup(hs.Close)
	client := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, copts)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: hs.URL + Path, HTTPClient: hc, MaxRetries: -1}, nil)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { cs.Close() })
	return cs, nil
}

func text(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	if len(res.Content) != 1 {
		t.Fatalf("content has %d items, want 1", len(res.Content))
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("content is %T, want text", res.Content[0])
	}
	return tc.Text
}

// exercise runs the behaviour every transport must show.
func exercise(t *testing.T, cs *mcp.ClientSession, b *bundle) {
	ctx := context.Background()

	// Ensure the handshake reports IT0 and its instructions.
	init := cs.InitializeResult()
	if init == nil || init.ServerInfo.Name != "it0" || !strings.Contains(init.Instructions, "IT0-APPROVAL-REQUIRED") {
		t.Errorf("initialize result = %+v", init)
	}

	// Ensure tools/list shows IT0's tools with their schemas, in IT0's order, and nothing broken.
	lt, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range lt.Tools {
		names = append(names, tool.Name)
	}
	if want := []string{"run_command", "read_file", "list_servers", "no_schema", "array_schema"}; !slices.Equal(names, want) {
		// The SDK lists tools sorted by name; compare as sets.
		slices.Sort(names)
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Fatalf("tools = %v, want %v", names, want)
		}
	}
	for _, tool := range lt.Tools {
		schema, _ := json.Marshal(tool.InputSchema)
		var m map[string]any
		if err := json.Unmarshal(schema, &m); err != nil || m["type"] != "object" {
			t.Errorf("%s schema = %s, want an object schema", tool.Name, schema)
		}
		if tool.Name == "run_command" {
			if !strings.Contains(string(schema), `"required":["command"]`) || !strings.Contains(string(schema), `"server"`) {
				t.Errorf("run_command schema lost its fields: %s", schema)
			}
			if tool.Description != baseTools[0].Description {
				t.Errorf("description = %q", tool.Description)
			}
		}
	}

	// Ensure a call round-trips input and output.
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_command", Arguments: map[string]any{"server": "web-1", "command": "df -h"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || text(t, res) != `ran run_command with {"command":"df -h","server":"web-1"}` {
		t.Errorf("result = %v %q", res.IsError, text(t, res))
	}

	// Ensure a call without arguments sends {"input":{}}.
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_servers"})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || text(t, res) != "ran list_servers with {}" {
		t.Errorf("result = %v %q", res.IsError, text(t, res))
	}

	// Ensure IT0's is_error results, approvals included, come back unchanged as MCP tool errors.
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_command", Arguments: map[string]any{"server": "web-1", "command": "systemctl restart nginx"}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || text(t, res) != approval {
		t.Errorf("approval result = %v %q", res.IsError, text(t, res))
	}

	// Ensure IT0 failures become tool errors with a useful message, not protocol errors.
	for _, tc := range []struct{ cmd, want string }{
		{"explode", "500 internal: Internal error"},
		{"garbage", "decode IT0 answer"},
	} {
		res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_command", Arguments: map[string]any{"command": tc.cmd}})
		if err != nil {
			t.Fatalf("%s: protocol error %v", tc.cmd, err)
		}
		if !res.IsError || !strings.Contains(text(t, res), tc.want) {
			t.Errorf("%s: result = %v %q, want an error containing %q", tc.cmd, res.IsError, text(t, res), tc.want)
		}
	}

	// Ensure an unknown tool is a protocol error (the SDK's -32602), as the spec asks.
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "nope"}); err == nil {
		t.Error("calling an unknown tool succeeded")
	}

	if calls := b.it0.callLog(); len(calls) < 5 {
		t.Errorf("IT0 saw %d calls: %v", len(calls), calls)
	}
}

func TestStdio(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	cs := connectStdio(t, s, nil)
	exercise(t, cs, b)
}

func TestStreamableHTTP(t *testing.T) {
	t.Parallel()

	// Ensure the full behaviour over streamable HTTP at /mcp.
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t)
		cs, err := connectHTTP(t, s, HTTPOptions{}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		exercise(t, cs, b)
	})

	// Ensure RequireToken turns away clients without IT0_TOKEN and admits those with it.
	t.Run("RequireToken", func(t *testing.T) {
		t.Parallel()
		s, _ := setup(t)
		if _, err := connectHTTP(t, s, HTTPOptions{RequireToken: true}, nil, nil); err == nil {
			t.Fatal("connected without a token")
		}
		wrong := &http.Client{Transport: bearer{"nope"}}
		if _, err := connectHTTP(t, s, HTTPOptions{RequireToken: true}, wrong, nil); err == nil {
			t.Fatal("connected with a wrong token")
		}
		right := &http.Client{Transport: bearer{testToken}}
		cs, err := connectHTTP(t, s, HTTPOptions{RequireToken: true}, right, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cs.ListTools(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	})

	// Ensure a cross-origin browser request is refused.
	t.Run("CrossOrigin", func(t *testing.T) {
		t.Parallel()
		s, _ := setup(t)
		hs := httptest.NewServer(s.Handler(HTTPOptions{}))
		t.Cleanup(hs.Close)
		req, _ := http.NewRequest(http.MethodPost, hs.URL+Path, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
	})
}

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// Ensure ServeHTTP serves on a listener and stops cleanly when ctx ends.
func TestServeHTTP(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeHTTP(ctx, ln, HTTPOptions{}) }()
	client := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: "http://" + ln.Addr().String() + Path, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.ListTools(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	cs.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeHTTP did not stop")
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()

	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	f := &fakeIT0{tools: baseTools}
	live := httptest.NewServer(f)
	t.Cleanup(live.Close)

	tests := []struct {
		name     string
		cfg      Config
		want     []string
		sentinel error
	}{
		{"MissingBoth", Config{}, []string{"IT0_URL is required", "IT0_TOKEN is required"}, nil},
		{"BadURL", Config{URL: "ftp://x", Token: "t"}, []string{"IT0_URL", "http(s)"}, nil},
		{"Unreachable", Config{URL: closedURL, Token: "t"}, []string{"cannot reach IT0", "IT0_URL"}, nil},
		{"Unauthorized", Config{URL: live.URL + "/it0", Token: "wrong", SessionID: testSession}, []string{"rejected IT0_TOKEN", "401"}, ErrUnauthorized},
		{"WrongPath", Config{URL: live.URL, Token: testToken, SessionID: testSession}, []string{"check IT0_URL", "404"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(context.Background(), tc.cfg)
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("error %q is not %v", err, tc.sentinel)
			}
			if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), "wrong") && tc.name == "Unauthorized" {
				t.Errorf("error leaks the token: %q", err)
			}
		})
	}

	// Ensure a cancelled ctx stops the start-up fetch.
	t.Run("Cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := New(ctx, Config{URL: live.URL + "/it0", Token: testToken, SessionID: testSession}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

// Ensure a failing IT0 after start-up gives tool errors that name the problem, and never a crash.
func TestCallFailures(t *testing.T) {
	t.Parallel()

	t.Run("IT0Down", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t)
		cs := connectStdio(t, s, nil)
		b.it0srv.Close()
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "run_command", Arguments: map[string]any{"command": "uptime"}})
		if err != nil {
			t.Fatal(err)
		}
		if !res.IsError || !strings.Contains(text(t, res), "cannot reach IT0") || !strings.Contains(text(t, res), "IT0_URL") {
			t.Fatalf("result = %v %q", res.IsError, text(t, res))
		}
	})

	t.Run("TokenRevoked", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t)
		cs := connectStdio(t, s, nil)
		b.it0.setStatus(http.StatusUnauthorized)
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "read_file", Arguments: map[string]any{"server": "a", "path": "/etc/hosts"}})
		if err != nil {
			t.Fatal(err)
		}
		if !res.IsError || !strings.Contains(text(t, res), "IT0_TOKEN") {
			t.Fatalf("result = %v %q", res.IsError, text(t, res))
		}
	})

	t.Run("Timeout", func(t *testing.T) {
		t.Parallel()
		block := make(chan struct{})
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				writeJSON(w, http.StatusOK, map[string]any{"tools": baseTools[:1]})
				return
			}
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(func() { close(block); hs.Close() })
		s, err := New(context.Background(), Config{URL: hs.URL, Token: "t", CallTimeout: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		cs := connectStdio(t, s, nil)
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "run_command", Arguments: map[string]any{"command": "sleep 99"}})
		if err != nil {
			t.Fatal(err)
		}
		if !res.IsError || !strings.Contains(text(t, res), "did not finish within 50ms") {
			t.Fatalf("result = %v %q", res.IsError, text(t, res))
		}
	})
}

// Ensure Refresh picks up IT0's new tool list and tells connected clients.
func TestRefresh(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	changed := make(chan struct{}, 8)
	cs := connectStdio(t, s, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed <- struct{}{} },
	})
	ctx := context.Background()

	newTools := append(slices.Clone(baseTools[:2]), Tool{Name: "list_alerts", Description: "List alerts.", InputSchema: json.RawMessage(`{"type":"object"}`)})
	b.it0.setTools(newTools)
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no notifications/tools/list_changed")
	}
	lt, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range lt.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if want := []string{"list_alerts", "read_file", "run_command"}; !slices.Equal(names, want) {
		t.Fatalf("tools after refresh = %v, want %v", names, want)
	}
	if got := s.ToolNames(); !slices.Equal(got, []string{"run_command", "read_file", "list_alerts"}) {
		t.Errorf("ToolNames = %v", got)
	}

	// Ensure a call to a tool IT0 has dropped refreshes the list by itself.
	b.it0.setTools(baseTools[:1])
	// read_file is still offered here, but IT0 answers 404 for it now.
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_file", Arguments: map[string]any{"server": "a", "path": "/x"}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || !strings.Contains(text(t, res), "refreshed") {
		t.Fatalf("result = %v %q", res.IsError, text(t, res))
	}
	if got := s.ToolNames(); !slices.Equal(got, []string{"run_command"}) {
		t.Errorf("ToolNames after a 404 = %v", got)
	}
}

// Ensure the token never shows up in logs, formatted values or JSON.
func TestTokenRedacted(t *testing.T) {
	t.Parallel()
	tok := Token(testToken)
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("config", "token", tok, "cfg", Config{URL: "http://x", Token: tok})
	j, _ := json.Marshal(struct{ T Token }{tok})
	for _, out := range []string{buf.String(), fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s %q", tok, tok, tok, tok, tok), string(j)} {
		if strings.Contains(out, testToken) {
			t.Errorf("token leaked: %s", out)
		}
	}
	// And the server's own logs of a whole session.
	s, b := setup(t)
	cs := connectStdio(t, s, nil)
	if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "run_command", Arguments: map[string]any{"command": "explode"}}); err != nil {
		t.Fatal(err)
	}
	b.it0srv.Close()
	_, _ = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "run_command", Arguments: map[string]any{"command": "uptime"}})
	if strings.Contains(b.logs.String(), testToken) {
		t.Errorf("server logs leak the token:\n%s", b.logs)
	}
}

func TestObjectSchema(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
	}{
		{`{"type":"object","properties":{"a":{"type":"string"}}}`, `{"type":"object","properties":{"a":{"type":"string"}}}`},
		{``, `{"type":"object"}`},
		{`null`, `{"type":"object"}`},
		{`[]`, `{"type":"object"}`},
		{`{"type":"string"}`, `{"type":"object"}`},
		{`{"properties":{}}`, `{"type":"object"}`},
		{`{"type":"object","properties":{"a":{"type":"array","x-mcp-header":"A"}}}`, `{"type":"object"}`},
	}
	for _, tc := range tests {
		got, _ := json.Marshal(objectSchema(json.RawMessage(tc.in)))
		if string(got) != tc.want {
			t.Errorf("objectSchema(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestStdioAnswersBeforeEOF ensures the requests a client wrote before closing stdin are all answered
// before ServeStdio returns, as a script piping requests into `it0 mcp` expects.
func TestStdioAnswersBeforeEOF(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	in := strings.Join([]string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"script","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":"two","method":"tools/call","params":{"name":"run_command","arguments":{"command":"slow"}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_servers","arguments":{}}}`,
	}, "\n") + "\n"
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := s.ServeStdio(ctx, strings.NewReader(in), &out); err != nil {
		t.Fatalf("ServeStdio: %v", err)
	}
	answers := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m struct {
			ID     json.RawMessage `json:"id"`
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		answers[string(m.ID)] = string(m.Result)
	}
	for id, want := range map[string]string{"1": "protocolVersion", `"two"`: "slept", "3": "ran list_servers"} {
		if !strings.Contains(answers[id], want) {
			t.Errorf("answer to %s = %q, want it to contain %q (all: %v)", id, answers[id], want, answers)
		}
	}
}

func TestInflightIDs(t *testing.T) {
	t.Parallel()
	f := newInflight()
	f.see([]byte(`[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":"x","method":"b"},{"jsonrpc":"2.0","method":"note"}]`), true)
	select {
	case <-f.wait():
		t.Fatal("idle with two requests in flight")
	default:
	}
	f.see([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`), false)
	f.see([]byte(`{"jsonrpc":"2.0","id":"1","result":{}}`), false) // a string id is another id
	f.see([]byte(`not json`), false)
	select {
	case <-f.wait():
		t.Fatal("idle with one request in flight")
	default:
	}
	f.see([]byte(`{"jsonrpc":"2.0","id":"x","error":{"code":-1,"message":"no"}}`), false)
	select {
	case <-f.wait():
	default:
		t.Fatal("not idle after every request was answered")
	}
}
