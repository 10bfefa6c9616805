package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// apiClient talks to a running IT0 server for the CLI commands (IT0_URL, IT0_TOKEN).
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func newAPIClient(getenv func(string) string) (*apiClient, error) {
	base, token := strings.TrimRight(getenv("IT0_URL"), "/"), getenv("IT0_TOKEN")
	if base == "" {
		base = "http://127.0.0.1:8000"
	}
	if token == "" {
		return nil, usageError{"set IT0_TOKEN to an API key (POST /api/v1/auth/api-keys) or an access token; IT0_URL defaults to http://127.0.0.1:8000"}
	}
	return &apiClient{base: base, token: token, http: &http.Client{Timeout: 0}}, nil
}

// apiError is an error answer of the API, shown as the server worded it.
type apiError struct {
	Status  int
	Code    string
	Message string
	Hint    string
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
	if e.Hint != "" {
		s += "\n  hint: " + e.Hint
	}
	return s
}

// do sends body as JSON and returns the response for the caller to read; non-2xx answers become *apiError.
func (c *apiClient) do(ctx context.Context, method, path string, body any, accept string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach IT0 at %s: %w (is it running? set IT0_URL)", c.base, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var e struct {
			Error struct{ Code, Message, Hint string } `json:"error"`
		}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(raw, &e) != nil || e.Error.Message == "" {
			e.Error.Message = strings.TrimSpace(string(raw))
		}
		return nil, &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, Hint: e.Error.Hint}
	}
	return resp, nil
}

// call sends body and decodes a JSON answer into out (when not nil).
func (c *apiClient) call(ctx context.Context, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	resp, err := c.do(ctx, method, path, body, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// getItems GETs a list endpoint (every one answers {"items":[…]}) and returns its items.
func getItems[T any](ctx context.Context, c *apiClient, path string) ([]T, error) {
	var resp struct {
		Items []T `json:"items"`
	}
	err := c.call(ctx, "GET", path, nil, &resp)
	return resp.Items, err
}
