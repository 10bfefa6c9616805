package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
)

// Wire limits for IT0's answers. A tool output bigger than this is the server's bug; refusing it keeps a
// runaway command from exhausting this process.
const (
	maxListBytes   = 4 << 20
	maxOutputBytes = 16 << 20
)

// Sentinel errors of the IT0 client.
var (
	// ErrUnauthorized means IT0 rejected IT0_TOKEN (HTTP 401 or 403).
	ErrUnauthorized = errors.New("IT0 rejected the token")
	// ErrUnknownTool means IT0 has no tool by that name (HTTP 404 on a call).
	ErrUnknownTool = errors.New("unknown tool")
)

// Token is IT0_TOKEN. It never prints, logs or marshals its value.
type Token string

// String redacts the token.
func (Token) String() string { return "REDACTED" }

// GoString redacts the token in %#v.
func (Token) GoString() string { return "REDACTED" }

// LogValue redacts the token in slog output.
func (Token) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// MarshalJSON redacts the token in JSON.
func (Token) MarshalJSON() ([]byte, error) { return []byte(`"REDACTED"`), nil }

// Tool is one tool as IT0 lists it at GET /api/v1/agent/tools.
type Tool struct {
	Name        string          `json:"name"`
	Title       string          `json:"title,omitempty"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// Result is IT0's answer to a tool call. IsError results are still answers: the model reads Output
// (for example "IT0-APPROVAL-REQUIRED approval_id=…") and adapts.
type Result struct {
	Output  string `json:"output"`
	IsError bool   `json:"is_error"`
}

// APIError is a non-2xx answer from IT0, with the code and message of its error body when it had one.
type APIError struct {
	Status  int
	Code    string
	Message string
}

// Error formats the status and IT0's message.
func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Code != "" {
		return fmt.Sprintf("IT0 answered %d %s: %s", e.Status, e.Code, msg)
	}
	return fmt.Sprintf("IT0 answered %d: %s", e.Status, msg)
}

// Is makes 401/403 match ErrUnauthorized and 404 match ErrUnknownTool.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrUnknownTool:
		return e.Status == http.StatusNotFound
	}
	return false
}

// Client calls the two agent tool endpoints of an IT0 server:
//
//	GET  {URL}/api/v1/agent/tools          → {"tools":[{"name","description","input_schema"}]}
//	POST {URL}/api/v1/agent/tools/{name}   {"input":{…}} → {"output":"…","is_error":bool}
//
// Both carry "Authorization: Bearer {token}" and, when a session id is set, "X-IT0-Session-Id".
type Client struct {
	base      *url.URL
	token     Token
	sessionID string
	http      *http.Client
}

// NewClient returns a client for the IT0 server at baseURL (http or https, no query).
func NewClient(baseURL string, token Token, sessionID string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("IT0_URL %q: want http(s)://host[:port]", baseURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: u, token: token, sessionID: sessionID, http: hc}, nil
}

// URL is the base URL of the IT0 server, for messages.
func (c *Client) URL() string { return c.base.String() }

// Tools lists the tools IT0 offers this token. Returns an error matching ErrUnauthorized when IT0
// rejects the token, *APIError for other statuses, and a transport error when IT0 cannot be reached.
func (c *Client) Tools(ctx context.Context) ([]Tool, error) {
	var out struct {
		Tools []Tool `json:"tools"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/agent/tools", nil, maxListBytes, &out); err != nil {
		return nil, err
	}
	return out.Tools, nil
}

// Call runs tool name with input (a JSON object; nil means {}). Errors are as for Tools, plus
// ErrUnknownTool when IT0 answers 404.
func (c *Client) Call(ctx context.Context, name string, input json.RawMessage) (Result, error) {
	if len(bytes.TrimSpace(input)) == 0 || string(bytes.TrimSpace(input)) == "null" {
		input = json.RawMessage(`{}`)
	}
	body, err := json.Marshal(struct {
		Input json.RawMessage `json:"input"`
	}{input})
	if err != nil {
		return Result{}, fmt.Errorf("encode input: %w", err)
	}
	var res Result
	if err := c.do(ctx, http.MethodPost, "/api/v1/agent/tools/"+url.PathEscape(name), body, maxOutputBytes, &res); err != nil {
		return Result{}, err
	}
	return res, nil
}

// do sends one request; path is already escaped.
func (c *Client) do(ctx context.Context, method, path string, body []byte, limit int64, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+string(c.token))
	}
	if c.sessionID != "" {
		req.Header.Set("X-IT0-Session-Id", c.sessionID)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("read IT0 answer: %w", err)
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("IT0 answer is larger than %d bytes", limit)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode IT0 answer: %w", err)
	}
	return nil
}

// apiError reads IT0's {"error":{"code","message"}} body, tolerating anything else.
func apiError(status int, data []byte) *APIError {
	e := &APIError{Status: status}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &body) == nil {
		e.Code, e.Message = body.Error.Code, body.Error.Message
	}
	if e.Message == "" {
		if s := strings.TrimSpace(string(data)); s != "" && len(s) <= 300 && !strings.ContainsAny(s, "<{") {
			e.Message = s
		}
	}
	return e
}
