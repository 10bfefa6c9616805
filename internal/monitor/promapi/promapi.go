// Package promapi queries a Prometheus server over its HTTP API (GET /api/v1/query and
// /api/v1/query_range, the JSON envelope documented at prometheus.io/docs/prometheus/latest/querying/api),
// for metrics.Service. It decodes the envelope itself: the official client would pull in a JSON library
// for four fields.
package promapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/it0/it0/internal/monitor/metrics"
)

// maxBody bounds an answer; a query that returns more should be narrowed.
const maxBody = 32 << 20

// Client runs PromQL against any Prometheus base URL.
type Client struct {
	HTTP *http.Client
}

var _ metrics.PromQuerier = (*Client)(nil)

// New returns a client using hc (default: a client with a 30s timeout).
func New(hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{HTTP: hc}
}

// Error is an error answer of the API ("status":"error"), with its errorType (bad_data, timeout,
// execution…) and the HTTP status.
type Error struct {
	Status int
	Type   string
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("prometheus %s (HTTP %d): %s", e.Type, e.Status, e.Msg)
}

// envelope is every API answer.
type envelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

type queryData struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

type series struct {
	Metric map[string]string `json:"metric"`
	Value  *pair             `json:"value"`  // vector
	Values []pair            `json:"values"` // matrix
}

// pair is [unix seconds (float), "value"].
type pair struct {
	At    time.Time
	Value float64
}

func (p *pair) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if len(raw) != 2 {
		return fmt.Errorf("sample pair has %d elements, want 2", len(raw))
	}
	var ts float64
	var v string
	if err := json.Unmarshal(raw[0], &ts); err != nil {
		return fmt.Errorf("sample time: %w", err)
	}
	if err := json.Unmarshal(raw[1], &v); err != nil {
		return fmt.Errorf("sample value: %w", err)
	}
	f, err := strconv.ParseFloat(v, 64) // also "NaN", "+Inf"
	if err != nil {
		return fmt.Errorf("sample value %q: %w", v, err)
	}
	sec, frac := math.Modf(ts)
	p.At, p.Value = time.Unix(int64(sec), int64(math.Round(frac*1e3))*1e6).UTC(), f
	return nil
}

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)
}

// Query runs an instant query at time at. Vector and scalar results are supported.
func (c *Client) Query(ctx context.Context, baseURL, query string, at time.Time) ([]metrics.PromSample, error) {
	q := url.Values{"query": {query}}
	if !at.IsZero() {
		q.Set("time", formatTime(at))
	}
	return c.get(ctx, baseURL, "/api/v1/query", q)
}

// QueryRange runs a range query and returns every point of every series.
func (c *Client) QueryRange(ctx context.Context, baseURL, query string, from, to time.Time, step time.Duration) ([]metrics.PromSample, error) {
	if step <= 0 {
		return nil, errors.New("query_range needs a positive step")
	}
	q := url.Values{"query": {query}, "start": {formatTime(from)}, "end": {formatTime(to)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}
	return c.get(ctx, baseURL, "/api/v1/query_range", q)
}

func (c *Client) get(ctx context.Context, baseURL, path string, q url.Values) ([]metrics.PromSample, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/") + path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("prometheus url %q is not an http(s) URL", baseURL)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read prometheus answer: %w", err)
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("prometheus answer is over %d MiB; narrow the query", maxBody>>20)
	}
	return Decode(body, resp.StatusCode)
}

// Decode reads an API answer (the JSON envelope) received with HTTP status: the samples of a success,
// *Error for an error answer, another error for anything that is not the API's JSON.
func Decode(body []byte, status int) ([]metrics.PromSample, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("prometheus answered HTTP %d with something that is not its API JSON: %w", status, err)
	}
	if env.Status != "success" {
		if env.ErrorType == "" {
			env.ErrorType = "unknown"
		}
		return nil, &Error{Status: status, Type: env.ErrorType, Msg: env.Error}
	}
	var d queryData
	if err := json.Unmarshal(env.Data, &d); err != nil {
		return nil, fmt.Errorf("prometheus data: %w", err)
	}
	return flatten(d)
}

// flatten turns a result into samples, dropping NaN and infinite values (they cannot be stored).
func flatten(d queryData) ([]metrics.PromSample, error) {
	var out []metrics.PromSample
	add := func(labels map[string]string, p pair) {
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			return
		}
		if labels == nil {
			labels = map[string]string{}
		}
		out = append(out, metrics.PromSample{Labels: labels, Value: p.Value, At: p.At})
	}
	switch d.ResultType {
	case "vector", "matrix":
		var list []series
		if err := json.Unmarshal(d.Result, &list); err != nil {
			return nil, fmt.Errorf("prometheus %s result: %w", d.ResultType, err)
		}
		for _, s := range list {
			if s.Value != nil {
				add(s.Metric, *s.Value)
			}
			for _, p := range s.Values {
				add(s.Metric, p)
			}
		}
	case "scalar":
		var p pair
		if err := json.Unmarshal(d.Result, &p); err != nil {
			return nil, fmt.Errorf("prometheus scalar result: %w", err)
		}
		add(nil, p)
	default:
		return nil, fmt.Errorf("unsupported result type %q (want vector, matrix or scalar)", d.ResultType)
	}
	return out, nil
}
