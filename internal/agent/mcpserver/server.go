// Package mcpserver is IT0's MCP server: a thin proxy, built on the official Go SDK, that exposes the
// agent tools of an IT0 server to an MCP client such as Claude Code. It runs as its own process
// (`it0 mcp`), holds no credentials but IT0_TOKEN, and never decides anything itself: IT0 classifies,
// approves, runs and audits every call, and its answers (including IT0-APPROVAL-REQUIRED results) pass
// through unchanged.
package mcpserver

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Instructions tell the model how IT0's tools behave; MCP clients show them to the model.
const Instructions = "Tools for operating IT0-managed servers. IT0 runs every command over SSH after " +
	"classifying its risk: read-only commands (L0) run at once, L1/L2 wait for a human approval, L3 " +
	"(destructive) are refused. When a result says IT0-APPROVAL-REQUIRED, stop and tell the user which " +
	"approval is pending; never retry, split or rephrase the command to get around the guard."

// Config configures a Server.
type Config struct {
	URL       string // IT0_URL: base URL of the IT0 server
	Token     Token  // IT0_TOKEN: bearer token for IT0's API
	SessionID string // IT0_SESSION_ID: the agent session the calls belong to (optional)

	// HTTPClient talks to IT0; nil means a plain http.Client.
	HTTPClient *http.Client
	// ListTimeout bounds fetching the tool list (default 30s).
	ListTimeout time.Duration
	// CallTimeout bounds one tool call (default 10m). IT0 answers approval-bound calls at once, so only
	// long commands come near it.
	CallTimeout time.Duration
	// Logger receives diagnostics; nil discards them. In stdio mode it must not write to stdout.
	Logger *slog.Logger
	// Version is reported as the server's version in the MCP handshake.
	Version string
}

// Validate reports every missing or malformed setting, naming the environment variable.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.URL) == "" {
		errs = append(errs, errors.New("IT0_URL is required (the IT0 server's base URL)"))
	}
	if strings.TrimSpace(string(c.Token)) == "" {
		errs = append(errs, errors.New("IT0_TOKEN is required (an IT0 API token)"))
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.ListTimeout <= 0 {
		c.ListTimeout = 30 * time.Second
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Version == "" {
		c.Version = "dev"
	}
}

// Server proxies MCP tool calls to IT0. It is safe for concurrent use by many MCP sessions.
type Server struct {
	cfg    Config
	client *Client
	mcp    *mcp.Server
	log    *slog.Logger

	refresh sync.Mutex // serializes Refresh, so an older list never replaces a newer one
	mu      sync.Mutex // guards names
	names   []string
}

// New connects to IT0, fetches the tool list and returns a server offering those tools. It fails when
// IT0 cannot be reached (naming IT0_URL) or rejects the token (naming IT0_TOKEN).
func New(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	client, err := NewClient(cfg.URL, cfg.Token, cfg.SessionID, cfg.HTTPClient)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, client: client, log: cfg.Logger.With("component", "mcpserver")}
	s.mcp = mcp.NewServer(&mcp.Implementation{Name: "it0", Title: "IT0", Version: cfg.Version}, &mcp.ServerOptions{
		Instructions: Instructions,
		Logger:       s.log,
		// Tools may change on Refresh; the SDK then sends notifications/tools/list_changed.
		Capabilities: &mcp.ServerCapabilities{Tools: &mcp.ToolCapabilities{ListChanged: true}},
	})
	if err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// MCP returns the SDK server, for transports this package does not wrap.
func (s *Server) MCP() *mcp.Server { return s.mcp }

// ToolNames lists the tools currently offered, in IT0's order.
func (s *Server) ToolNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.names)
}

// Refresh fetches IT0's tool list again and replaces the offered tools; connected clients are notified.
// Tools with an invalid name are skipped (and logged). The errors are as for New.
func (s *Server) Refresh(ctx context.Context) error {
	s.refresh.Lock()
	defer s.refresh.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ListTimeout)
	defer cancel()
	tools, err := s.client.Tools(ctx)
	if err != nil {
		return s.describe(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	seen := map[string]bool{}
	for _, t := range tools {
		if !validToolName(t.Name) || seen[t.Name] {
			s.log.WarnContext(ctx, "skipping tool with an invalid or duplicate name", "tool", t.Name)
			continue
		}
		seen[t.Name] = true
		names = append(names, t.Name)
		s.mcp.AddTool(&mcp.Tool{
			Name:        t.Name,
			Title:       t.Title,
			Description: t.Description,
			InputSchema: objectSchema(t.InputSchema),
		}, s.call(t.Name))
	}
	var gone []string
	for _, n := range s.names {
		if !seen[n] {
			gone = append(gone, n)
		}
	}
	if len(gone) > 0 {
		s.mcp.RemoveTools(gone...)
	}
	s.names = names
	s.log.DebugContext(ctx, "tool list loaded", "num_tools", len(names), "num_removed", len(gone))
	return nil
}

// describe turns a start-up failure into an error that says which setting to fix.
func (s *Server) describe(err error) error {
	var apiErr *APIError
	switch {
	case errors.Is(err, ErrUnauthorized):
		return fmt.Errorf("IT0 at %s rejected IT0_TOKEN: %w", s.client.URL(), err)
	case errors.As(err, &apiErr):
		return fmt.Errorf("list tools from IT0 at %s (check IT0_URL): %w", s.client.URL(), err)
	default:
		return fmt.Errorf("cannot reach IT0 at %s (check IT0_URL and that the server runs): %w", s.client.URL(), err)
	}
}

var toolNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

func validToolName(n string) bool { return toolNameRE.MatchString(n) }

// objectSchema returns IT0's input schema when it is a JSON object of type "object", and otherwise a
// schema accepting any object: the SDK panics on anything else, and a remote server must not be able to
// crash this process.
func objectSchema(raw json.RawMessage) any {
	var m map[string]any
	if json.Unmarshal(raw, &m) == nil && m != nil {
		if m["type"] == "object" && headersOK(raw) {
			return raw
		}
	}
	return map[string]any{"type": "object"}
}

// headersOK reports whether the schema uses no x-mcp-header annotations, which the SDK validates
// with panics; IT0 has no use for them.
func headersOK(raw json.RawMessage) bool {
	return !strings.Contains(string(raw), "x-mcp-header")
}

// call returns the MCP handler for one IT0 tool. Every failure becomes a tool error result the model
// can read; none becomes a protocol error, and none ends the process.
func (s *Server) call(name string) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var args json.RawMessage
		if req != nil && req.Params != nil {
			args = req.Params.Arguments
		}
		ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
		defer cancel()
		res, err := s.client.Call(ctx, name, args)
		if err != nil {
			s.log.WarnContext(ctx, "tool call failed", "tool", name, "err", err)
			return toolError(s.callErrorText(ctx, name, err)), nil
		}
		return &mcp.CallToolResult{
			Content: []mcp.Content{&mcp.TextContent{Text: res.Output}},
			IsError: res.IsError,
		}, nil
	}
}

func (s *Server) callErrorText(ctx context.Context, name string, err error) string {
	switch {
	case errors.Is(err, ErrUnauthorized):
		return fmt.Sprintf("IT0 rejected the token (IT0_TOKEN) for tool %s: %v. The call did not run; tell the user to check IT0_TOKEN.", name, err)
	case errors.Is(err, ErrUnknownTool):
		// IT0's tool set changed under us; pick up the new list so the client sees it.
		if rerr := s.Refresh(ctx); rerr != nil {
			s.log.WarnContext(ctx, "tool list refresh failed", "err", rerr)
		}
		return fmt.Sprintf("IT0 has no tool %q any more: %v. The tool list was refreshed; list the tools again.", name, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("tool %s did not finish within %s; IT0 may still be running it, so check before retrying.", name, s.cfg.CallTimeout)
	case errors.Is(err, context.Canceled):
		return fmt.Sprintf("tool %s was cancelled.", name)
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return fmt.Sprintf("tool %s failed: %v", name, err)
	}
	return fmt.Sprintf("tool %s failed: cannot reach IT0 at %s (IT0_URL): %v", name, s.client.URL(), err)
}

func toolError(text string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}, IsError: true}
}

// ServeStdio speaks MCP on r and w (newline-delimited JSON-RPC) until the client closes r or ctx ends.
// Requests read before the client closed r are answered first.
func (s *Server) ServeStdio(ctx context.Context, r io.Reader, w io.Writer) error {
	in := newInflight()
	t := &mcp.IOTransport{Reader: &stdinReader{ctx: ctx, r: bufio.NewReader(r), in: in}, Writer: &stdoutWriter{w: w, in: in}}
	err := s.mcp.Run(ctx, t)
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("serve mcp over stdio: %w", err)
}

// HTTPOptions configures the streamable HTTP endpoint.
type HTTPOptions struct {
	// RequireToken makes the endpoint demand "Authorization: Bearer <IT0_TOKEN>". Set it whenever the
	// endpoint is reachable from anything but the local host: whoever can reach it acts with this token.
	RequireToken bool
}

// Path is where the streamable HTTP endpoint is served.
const Path = "/mcp"

// Handler returns an http.Handler serving MCP's streamable HTTP transport at Path. It refuses
// cross-origin browser requests and, through the SDK, requests to loopback with a foreign Host header
// (DNS rebinding).
func (s *Server) Handler(opts HTTPOptions) http.Handler {
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.mcp }, &mcp.StreamableHTTPOptions{
		Logger: s.log,
	})
	var inner http.Handler = h
	if opts.RequireToken {
		want := []byte("Bearer " + string(s.cfg.Token))
		inner = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got := []byte(r.Header.Get("Authorization"))
			if subtle.ConstantTimeCompare(got, want) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="it0-mcp"`)
				http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	mux := http.NewServeMux()
	mux.Handle(Path, http.NewCrossOriginProtection().Handler(inner))
	return mux
}

// ServeHTTP serves Handler(opts) on ln until ctx ends, then shuts down gracefully (bounded to 5s).
func (s *Server) ServeHTTP(ctx context.Context, ln net.Listener, opts HTTPOptions) error {
	srv := &http.Server{
		Handler:           s.Handler(opts),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve mcp over http: %w", err)
	case <-ctx.Done():
	}
	// Detached on purpose: ctx is already done, and shutdown needs its own short deadline.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down mcp http server: %w", err)
	}
	<-errc
	return nil
}
