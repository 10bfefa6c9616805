package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// fakeIT0Tools serves IT0's two agent tool endpoints for `it0 mcp`, checking the token and session.
func fakeIT0Tools(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	auth := func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("X-IT0-Session-Id") != "s-1" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"code":"unauthorized","message":"bad token"}}`)
			return false
		}
		return true
	}
	mux.HandleFunc("GET /api/v1/agent/tools", func(w http.ResponseWriter, r *http.Request) {
		if !auth(w, r) {
			return
		}
		_, _ = io.WriteString(w, `{"tools":[
			{"name":"run_command","description":"Run a command.","input_schema":{"type":"object","properties":{"server":{"type":"string"},"command":{"type":"string"}},"required":["command"]}},
			{"name":"read_file","description":"Read a file.","input_schema":{"type":"object","properties":{"server":{"type":"string"},"path":{"type":"string"}},"required":["server","path"]}},
			{"name":"list_servers","description":"List servers.","input_schema":{"type":"object","properties":{}}}]}`)
	})
	mux.HandleFunc("POST /api/v1/agent/tools/{name}", func(w http.ResponseWriter, r *http.Request) {
		if !auth(w, r) {
			return
		}
		var body struct {
			Input map[string]any `json:"input"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		if cmd, _ := body.Input["command"].(string); strings.HasPrefix(cmd, "rm -rf") {
			_ = json.NewEncoder(w).Encode(map[string]any{"output": "refused: L3", "is_error": true})
			return
		}
		in, _ := json.Marshal(body.Input)
		_ = json.NewEncoder(w).Encode(map[string]any{"output": r.PathValue("name") + " " + string(in), "is_error": false})
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs
}

func TestMCPUsage(t *testing.T) {
	t.Parallel()
	hs := fakeIT0Tools(t)
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		usage bool     // a usageError (exit 2)
		want  []string // substrings of the error
	}{
		{"MissingBoth", nil, nil, true, []string{"IT0_URL and IT0_TOKEN"}},
		{"MissingToken", map[string]string{"IT0_URL": hs.URL}, nil, true, []string{"set IT0_TOKEN"}},
		{"MissingURL", map[string]string{"IT0_TOKEN": "tok"}, nil, true, []string{"set IT0_URL"}},
		{"BadURL", map[string]string{"IT0_URL": "localhost:8080", "IT0_TOKEN": "tok"}, nil, true, []string{"IT0_URL", "http(s)://"}},
		{"UnknownFlag", map[string]string{"IT0_URL": hs.URL, "IT0_TOKEN": "tok"}, []string{"--nope"}, true, []string{"flag provided but not defined"}},
		{"ExtraArg", map[string]string{"IT0_URL": hs.URL, "IT0_TOKEN": "tok"}, []string{"serve"}, true, []string{"unexpected argument"}},
		{"BadHTTPAddr", map[string]string{"IT0_URL": hs.URL, "IT0_TOKEN": "tok"}, []string{"--http", "8080"}, true, []string{"host:port"}},
		{"BadLogLevel", map[string]string{"IT0_URL": hs.URL, "IT0_TOKEN": "tok", "IT0_LOG_LEVEL": "loud"}, nil, true, []string{"IT0_LOG_LEVEL"}},
		{"WrongToken", map[string]string{"IT0_URL": hs.URL, "IT0_TOKEN": "nope", "IT0_SESSION_ID": "s-1"}, nil, false, []string{"rejected IT0_TOKEN"}},
		{"Unreachable", map[string]string{"IT0_URL": "http://127.0.0.1:1", "IT0_TOKEN": "tok"}, nil, false, []string{"cannot reach IT0", "IT0_URL"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			getenv := func(k string) string { return tc.env[k] }
			err := run(context.Background(), append([]string{"mcp"}, tc.args...), getenv, strings.NewReader(""), &out, &errb)
			if err == nil {
				t.Fatal("it0 mcp succeeded")
			}
			var ue usageError
			if isUsage := errors.As(err, &ue); isUsage != tc.usage {
				t.Errorf("usage error = %v, want %v (%v)", isUsage, tc.usage, err)
			}
			if wantCode := map[bool]int{true: 2, false: 1}[tc.usage]; exitCode(err) != wantCode {
				t.Errorf("exit code %d, want %d", exitCode(err), wantCode)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if out.Len() != 0 {
				t.Errorf("stdout must carry only MCP messages, got %q", out.String())
			}
		})
	}

	// Ensure --help prints the usage and succeeds.
	t.Run("Help", func(t *testing.T) {
		t.Parallel()
		var out bytes.Buffer
		if err := run(context.Background(), []string{"mcp", "--help"}, func(string) string { return "" }, strings.NewReader(""), &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "IT0_SESSION_ID") {
			t.Errorf("help = %q", out.String())
		}
	})
}

func mcpEnv(hs *httptest.Server) func(string) string {
	env := map[string]string{"IT0_URL": hs.URL, "IT0_TOKEN": "tok", "IT0_SESSION_ID": "s-1"}
	return func(k string) string { return env[k] }
}

func checkTools(t *testing.T, cs *mcp.ClientSession) {
	t.Helper()
	ctx := context.Background()
	lt, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, tool := range lt.Tools {
		got[tool.Name] = true
	}
	for _, want := range []string{"run_command", "read_file", "list_servers"} {
		if !got[want] {
			t.Errorf("tools/list lacks %s: %v", want, got)
		}
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_command", Arguments: map[string]any{"server": "web-1", "command": "uptime"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || res.Content[0].(*mcp.TextContent).Text != `run_command {"command":"uptime","server":"web-1"}` {
		t.Errorf("call = %v %+v", res.IsError, res.Content[0])
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_command", Arguments: map[string]any{"server": "web-1", "command": "rm -rf /"}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || res.Content[0].(*mcp.TextContent).Text != "refused: L3" {
		t.Errorf("refused call = %v %+v", res.IsError, res.Content[0])
	}
}

// Ensure a real MCP client lists and calls the tools of `it0 mcp` over stdin/stdout.
func TestMCPStdio(t *testing.T) {
	t.Parallel()
	hs := fakeIT0Tools(t)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"mcp"}, mcpEnv(hs), inR, outW, &stderr)
		outW.Close()
	}()
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkTools(t, cs)
	cs.Close()
	inW.Close() // EOF on stdin ends `it0 mcp`, as when Claude Code exits
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("it0 mcp: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("it0 mcp did not exit on stdin EOF")
	}
}

// lineSignal is a stderr that reports each write on a channel, so the test can wait for the listen
// address without polling.
type lineSignal struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (l *lineSignal) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	select {
	case l.lines <- string(p):
	default:
	}
	return len(p), nil
}

// Ensure `it0 mcp --http 127.0.0.1:0` serves streamable HTTP at /mcp and stops when ctx ends.
func TestMCPHTTP(t *testing.T) {
	t.Parallel()
	hs := fakeIT0Tools(t)
	stderr := &lineSignal{lines: make(chan string, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"mcp", "--http", "127.0.0.1:0"}, mcpEnv(hs), strings.NewReader(""), io.Discard, stderr)
	}()
	re := regexp.MustCompile(`http://(127\.0\.0\.1:\d+)/mcp`)
	var addr string
	for addr == "" {
		select {
		case line := <-stderr.lines:
			if m := re.FindStringSubmatch(line); m != nil {
				addr = m[1]
			}
		case err := <-done:
			t.Fatalf("it0 mcp exited: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("it0 mcp never said where it listens")
		}
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: "http://" + addr + "/mcp", MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkTools(t, cs)
	cs.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("it0 mcp: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("it0 mcp --http did not stop on cancel")
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.8.0.1": true, "::1": true, "[::1]": true, "localhost": true,
		"0.0.0.0": false, "": false, "10.0.0.1": false, "example.com": false, "::": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
