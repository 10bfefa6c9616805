package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/agent/agenttest"
)

// markerModel is an Anthropic test server that notes when the first request carrying a marker arrives.
type markerModel struct {
	srv *httptest.Server

	mu      sync.Mutex
	waiters map[string]chan time.Time
}

func newMarkerModel(tb testing.TB, key string) *markerModel {
	tb.Helper()
	u, _ := url.Parse(agenttest.AnthropicServer(tb, key, []agenttest.Step{{Text: "Done: nothing to do."}}).URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	m := &markerModel{waiters: map[string]chan time.Time{}}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		body, _ := io.ReadAll(r.Body)
		m.mu.Lock()
		for marker, ch := range m.waiters {
			if bytes.Contains(body, []byte(marker)) {
				ch <- at
				delete(m.waiters, marker)
			}
		}
		m.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	tb.Cleanup(m.srv.Close)
	return m
}

// expect returns a channel that receives when the first request carrying marker arrives.
func (m *markerModel) expect(marker string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	m.mu.Lock()
	m.waiters[marker] = ch
	m.mu.Unlock()
	return ch
}

// handOver is a deployment whose api process takes tasks: one process (the floor) or an api process and
// an agent process (the split).
type handOver struct {
	api   *App
	ctx   context.Context
	token string
}

func newHandOver(b *testing.B, model *markerModel, targets ...string) *handOver {
	b.Helper()
	bundle := newSplitBundle(b)
	bundle.cfg.AnthropicBaseURL = model.srv.URL
	var procs []*App
	for _, target := range targets {
		a, _ := bundle.start(target, nil)
		procs = append(procs, a)
	}
	api := procs[0] // the first process started takes the tasks
	ctx := tenantCtx(b, api)
	users, err := api.Auth.Users(ctx)
	if err != nil || len(users) == 0 {
		b.Fatalf("users: %v %v", users, err)
	}
	tok, err := api.Auth.IssueToken(ctx, users[0].ID, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return &handOver{api: api, ctx: ctx, token: tok}
}

// task posts a task carrying marker to the api process and returns how long its run took to send the
// model its first request, once the session has ended.
func (h *handOver) task(b *testing.B, model *markerModel, marker string) time.Duration {
	b.Helper()
	arrived := model.expect(marker)
	body, _ := json.Marshal(map[string]string{"prompt": "anything to do? " + marker})
	req, _ := http.NewRequest("POST", "http://"+h.api.Addr+"/api/v1/agent/tasks", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var out struct {
		SessionID string `json:"session_id"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || out.SessionID == "" {
		b.Fatalf("POST /api/v1/agent/tasks: %d %+v", resp.StatusCode, out)
	}
	var at time.Time
	select {
	case at = <-arrived:
	case <-time.After(30 * time.Second):
		b.Fatalf("the run of %s sent the model nothing in 30s", marker)
	}
	if s := waitStatus(b, h.ctx, h.api, out.SessionID); s.Status != agent.StatusCompleted {
		b.Fatalf("session %s: %+v", marker, s)
	}
	return at.Sub(start)
}

// BenchmarkHandOver measures the hand-over latency of a split deployment: from POST /api/v1/agent/tasks
// on the api process to the agent process's run sending the engine its first request. The floor is the
// same in one process running both targets, measured in the same run, interleaved with the split so that
// both see the same machine load. It reports p50 and p99 of each (ms) and the split's ratios to the floor.
func BenchmarkHandOver(b *testing.B) {
	model := newMarkerModel(b, "launch-key")
	floor := newHandOver(b, model, API+","+Agent)
	split := newHandOver(b, model, API, Agent)
	// One task each first: the first run pays for connections and caches.
	floor.task(b, model, "warm-floor")
	split.task(b, model, "warm-split")
	var floorLat, splitLat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		floorLat = append(floorLat, floor.task(b, model, fmt.Sprintf("floor-%d", i)))
		splitLat = append(splitLat, split.task(b, model, fmt.Sprintf("split-%d", i)))
	}
	b.StopTimer()
	fp50, fp99 := percentiles(floorLat)
	sp50, sp99 := percentiles(splitLat)
	b.ReportMetric(ms(fp50), "floor_p50_ms")
	b.ReportMetric(ms(fp99), "floor_p99_ms")
	b.ReportMetric(ms(sp50), "split_p50_ms")
	b.ReportMetric(ms(sp99), "split_p99_ms")
	b.ReportMetric(ms(sp50)/ms(fp50), "p50_ratio")
	b.ReportMetric(ms(sp99)/ms(fp99), "p99_ratio")
}

// percentiles returns the 50th and 99th percentiles of list.
func percentiles(list []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(list)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[int(p*float64(len(s)-1))] }
	return at(0.50), at(0.99)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
