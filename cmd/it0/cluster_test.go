package main

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
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/it0/it0/internal/agent/agenttest"
	"github.com/it0/it0/internal/bus/bustest"
	"github.com/it0/it0/internal/inventory/sshtest"
	"github.com/redis/go-redis/v9"
)

// cluster is several `it0 serve` replicas on one PostgreSQL database and one Redis of the test's own.
type cluster struct {
	env     []string
	redis   *bustest.RedisServer
	members []*child
	tok     string
}

// startCluster starts n replicas (the first alone, so that it bootstraps the admin, then the others) and
// logs in as the admin.
func startCluster(t *testing.T, n int, env ...string) *cluster {
	t.Helper()
	rs := bustest.StartRedis(t)
	c := &cluster{redis: rs, env: backendEnv(t, "postgres", append(env, "IT0_BOOTSTRAP_ADMIN_PASSWORD=first-password",
		"IT0_LOG_LEVEL=info", "IT0_REDIS_URL="+rs.URL())...)}
	for range n {
		c.members = append(c.members, startServe(t, c.env, "--data-dir", t.TempDir()))
	}
	c.tok = c.must(t, 0, 200, "POST", "/api/v1/auth/login", "", map[string]string{"email": "admin@it0.local", "password": "first-password"})["access_token"].(string)
	t.Cleanup(func() {
		if t.Failed() {
			for i, m := range c.members {
				t.Logf("replica %d log:\n%s", i, m.out.String())
			}
		}
	})
	return c
}

// must calls replica i and fails the test unless the status is want.
func (c *cluster) must(t *testing.T, i, want int, method, path, token string, body any) map[string]any {
	t.Helper()
	st, m := c.members[i].call(t, method, path, token, body)
	if st != want {
		t.Fatalf("replica %d: %s %s: %d %v", i, method, path, st, m)
	}
	return m
}

// addServer registers target as web-1 through replica 0.
func (c *cluster) addServer(t *testing.T, target *sshtest.Server) {
	t.Helper()
	cred := c.must(t, 0, 201, "POST", "/api/v1/inventory/credentials", c.tok, map[string]string{"name": "key", "type": "ssh_key", "secret": target.UserKey.Reveal()})
	c.must(t, 0, 201, "POST", "/api/v1/inventory/servers", c.tok, map[string]any{"name": "web-1", "host": target.Addr, "port": target.Port,
		"ssh_user": target.User, "credential_id": cred["id"], "host_key": target.HostKey})
}

// gatedModel plays steps like agenttest.AnthropicServer, except that requests wait until open is called,
// and the requests numbered in hang (1-based) never get an answer: their run stays in flight until the
// process that sent it dies.
func gatedModel(t *testing.T, key string, steps []agenttest.Step, hang ...int) (srv *httptest.Server, open func(), hung <-chan struct{}) {
	model := agenttest.AnthropicServer(t, key, steps)
	u, _ := url.Parse(model.URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	gate := make(chan struct{})
	ch := make(chan struct{}, 8)
	var n atomic.Int32
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		i := int(n.Add(1))
		for _, h := range hang {
			if h == i {
				ch <- struct{}{}
				<-r.Context().Done()
				return
			}
		}
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	var once sync.Once
	return srv, func() { once.Do(func() { close(gate) }) }, ch
}

// wsEvent is what the test reads of an event on /ws/agent.
type wsEvent struct {
	Seq  int64  `json:"seq"`
	Type string `json:"type"`
}

// follow reads session sid's events from replica m's WebSocket until one of type last, and returns them.
func follow(ctx context.Context, m *child, tok, sid, last string) ([]wsEvent, error) {
	c, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://%s/ws/agent?session=%s&after=0&token=%s", m.addr, sid, tok), nil)
	if err != nil {
		return nil, err
	}
	defer c.CloseNow()
	var out []wsEvent
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return out, fmt.Errorf("read after %d events: %w", len(out), err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			var e wsEvent
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				return out, fmt.Errorf("bad event line %q: %w", line, err)
			}
			out = append(out, e)
			if e.Type == last {
				return out, nil
			}
		}
	}
}

// TestClusterLiveEvents runs three replicas on PostgreSQL and Redis: WebSocket clients on replicas B and C
// follow a session that runs on replica A, live, and see every event once, in order, exactly as stored.
func TestClusterLiveEvents(t *testing.T) {
	t.Parallel()
	target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.60"})
	var steps []agenttest.Step
	for i := range 8 {
		steps = append(steps, agenttest.Step{Text: fmt.Sprintf("Step %d.", i), Server: "web-1", Command: fmt.Sprintf("echo step-%d", i)})
	}
	steps = append(steps, agenttest.Step{Text: "Done: eight steps."})
	model, open, _ := gatedModel(t, "live-key", steps)
	c := startCluster(t, 3, "IT0_ANTHROPIC_API_KEY=live-key", "IT0_ANTHROPIC_BASE_URL="+model.URL)
	c.addServer(t, target)

	sid := c.must(t, 0, 201, "POST", "/api/v1/agent/tasks", c.tok, map[string]string{"prompt": "run the eight steps on web-1"})["session_id"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type result struct {
		evs []wsEvent
		err error
	}
	results := make([]chan result, 3)
	for i := 1; i < 3; i++ {
		results[i] = make(chan result, 1)
		go func() {
			evs, err := follow(ctx, c.members[i], c.tok, sid, "completed")
			results[i] <- result{evs, err}
		}()
	}
	// The followers are connected before the run produces anything: what they see is live, not a replay.
	time.Sleep(500 * time.Millisecond)
	open()
	seen := make([][]wsEvent, 3)
	for i := 1; i < 3; i++ {
		r := <-results[i]
		seen[i] = r.evs
		if r.err != nil {
			t.Fatalf("replica %d follower: %v", i, r.err)
		}
		for j, e := range r.evs {
			if e.Seq != int64(j+1) {
				t.Fatalf("replica %d follower: event %d has seq %d (gap, duplicate or out of order): %+v", i, j, e.Seq, r.evs)
			}
		}
		if len(r.evs) < 8*3 {
			t.Fatalf("replica %d follower saw %d events: %+v", i, len(r.evs), r.evs)
		}
	}
	// What they saw is what was stored. An event is published before it is stored, so the last one may
	// still be on its way to the database when the followers return.
	var stored []any
	waitFor(t, 30*time.Second, "the last event to be stored", func() bool {
		stored, _ = c.must(t, 2, 200, "GET", "/api/v1/agent/sessions/"+sid+"/events", c.tok, nil)["events"].([]any)
		return len(stored) >= len(seen[1])
	})
	for i := 1; i < 3; i++ {
		if len(seen[i]) != len(stored) {
			t.Fatalf("replica %d follower saw %d events, %d stored", i, len(seen[i]), len(stored))
		}
		for j, e := range stored {
			if m := e.(map[string]any); m["type"] != seen[i][j].Type || int64(m["seq"].(float64)) != seen[i][j].Seq {
				t.Fatalf("replica %d follower: event %d is %+v, stored %v", i, j, seen[i][j], m)
			}
		}
	}
}

// TestClusterKill runs three replicas on PostgreSQL and Redis and kills replica A with SIGKILL while a
// session runs on it and an L1 approval it asked for waits: a survivor marks the session interrupted, two
// replicas asked at once to resume it resume it once, the approval is still decided at its moment by a
// survivor and its session completes, and the audit chain verifies.
func TestClusterKill(t *testing.T) {
	t.Parallel()
	target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.61"})
	// Request 1 is the approval session's first turn (it asks to restart nginx); request 2 is the other
	// session's first turn, which hangs until A dies.
	model, open, hung := gatedModel(t, "kill-key", []agenttest.Step{
		{Text: "Restarting nginx.", Server: "web-1", Command: "systemctl restart nginx"},
		{Text: "Done.", Server: "", Command: ""}}, 2)
	open()
	c := startCluster(t, 3, "IT0_ANTHROPIC_API_KEY=kill-key", "IT0_ANTHROPIC_BASE_URL="+model.URL)
	c.addServer(t, target)
	c.must(t, 1, 200, "PUT", "/api/v1/ops/approval-timeouts", c.tok, map[string]int{"l1_seconds": 20})

	// On A: a session pauses on an L1 confirmation, and another one's run is in flight.
	paused := c.must(t, 0, 201, "POST", "/api/v1/agent/tasks", c.tok, map[string]string{"prompt": "restart nginx on web-1"})["session_id"].(string)
	var approval map[string]any
	waitFor(t, 30*time.Second, "the approval", func() bool {
		items := c.must(t, 1, 200, "GET", "/api/v1/agent/approvals?status=pending&session_id="+paused, c.tok, nil)["items"].([]any)
		if len(items) > 0 {
			approval = items[0].(map[string]any)
		}
		return approval != nil
	})
	running := c.must(t, 0, 201, "POST", "/api/v1/agent/tasks", c.tok, map[string]string{"prompt": "look at web-1"})["session_id"].(string)
	select {
	case <-hung:
	case <-time.After(30 * time.Second):
		t.Fatal("the run never reached the model")
	}

	a := c.members[0]
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()

	// A survivor marks the run interrupted.
	var sess map[string]any
	waitFor(t, 60*time.Second, "the interrupted session", func() bool {
		sess = c.must(t, 2, 200, "GET", "/api/v1/agent/sessions/"+running, c.tok, nil)
		return sess["status"] != "running"
	})
	if sess["status"] != "failed" || !strings.Contains(fmt.Sprint(sess["error"]), "interrupted") {
		t.Fatalf("session after its replica died: %v", sess)
	}
	// Resumed on B and C at once: one of them runs it.
	var wg sync.WaitGroup
	codes := make([]int, 3)
	for i := 1; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = c.members[i].call(t, "POST", "/api/v1/agent/sessions/"+running+"/messages", c.tok, map[string]string{"message": "continue"})
		}()
	}
	wg.Wait()
	if won := (codes[1] < 300) != (codes[2] < 300); !won || (codes[1] != 409 && codes[2] != 409) {
		t.Fatalf("two replicas resuming the same session: %d and %d (want one success and one 409)", codes[1], codes[2])
	}
	waitFor(t, 30*time.Second, "the resumed session to complete", func() bool {
		return c.must(t, 1, 200, "GET", "/api/v1/agent/sessions/"+running, c.tok, nil)["status"] == "completed"
	})

	// The approval A asked for is decided at its moment by a survivor, and its session completes.
	aid := approval["id"].(string)
	expires, _ := time.Parse(time.RFC3339Nano, approval["expires_at"].(string))
	var decided map[string]any
	waitFor(t, 60*time.Second, "the approval's timeout", func() bool {
		decided = c.must(t, 1, 200, "GET", "/api/v1/agent/approvals/"+aid, c.tok, nil)
		return decided["status"] != "pending"
	})
	at, _ := time.Parse(time.RFC3339Nano, decided["decided_at"].(string))
	if decided["status"] != "approved" || at.Before(expires) || at.Sub(expires) > 5*time.Second {
		t.Fatalf("approval expiring at %s: %s at %s", expires, decided["status"], at)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("approved session: %v\nits events: %v", c.must(t, 2, 200, "GET", "/api/v1/agent/sessions/"+paused, c.tok, nil),
				c.must(t, 2, 200, "GET", "/api/v1/agent/sessions/"+paused+"/events", c.tok, nil))
		}
	})
	waitFor(t, 60*time.Second, "the approved session to complete", func() bool {
		return c.must(t, 2, 200, "GET", "/api/v1/agent/sessions/"+paused, c.tok, nil)["status"] == "completed"
	})
	recs := c.must(t, 1, 200, "GET", "/api/v1/inventory/command-records?session_id="+paused, c.tok, nil)["items"].([]any)
	if len(recs) != 1 {
		t.Fatalf("the approved command must run exactly once: %v", recs)
	}
	if v := c.must(t, 2, 200, "GET", "/api/v1/audit/verify", c.tok, nil); v["ok"] != true {
		t.Fatalf("audit chain after the kill: %v", v)
	}
}

// TestClusterRedisRestart runs two replicas on PostgreSQL and a Redis of the test's own, and kills Redis
// mid-run: /readyz says the bus is down, an approval asked for during the outage reaches its stream once
// Redis is back (the outbox replays it), and live events cross between the replicas again.
func TestClusterRedisRestart(t *testing.T) {
	t.Parallel()
	target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.62"})
	model, open, _ := gatedModel(t, "redis-key", []agenttest.Step{
		{Text: "Restarting nginx.", Server: "web-1", Command: "systemctl restart nginx"},
		{Text: "Done.", Server: "", Command: ""}})
	open()
	c := startCluster(t, 2, "IT0_ANTHROPIC_API_KEY=redis-key", "IT0_ANTHROPIC_BASE_URL="+model.URL)
	c.addServer(t, target)
	ready := func(i int) (int, map[string]any) { return c.members[i].call(t, "GET", "/readyz", "", nil) }

	c.redis.Kill()
	waitFor(t, 30*time.Second, "/readyz to report the bus down", func() bool {
		st, m := ready(0)
		checks, _ := m["checks"].(map[string]any)
		return st == 503 && strings.HasPrefix(fmt.Sprint(checks["bus"]), "error")
	})
	sid := c.must(t, 0, 201, "POST", "/api/v1/agent/tasks", c.tok, map[string]string{"prompt": "restart nginx on web-1"})["session_id"].(string)
	var aid string
	waitFor(t, 30*time.Second, "the approval asked for during the outage", func() bool {
		items := c.must(t, 1, 200, "GET", "/api/v1/agent/approvals?status=pending&session_id="+sid, c.tok, nil)["items"].([]any)
		if len(items) > 0 {
			aid = items[0].(map[string]any)["id"].(string)
		}
		return aid != ""
	})

	c.redis.Start()
	for i := range c.members {
		waitFor(t, 30*time.Second, "/readyz after Redis came back", func() bool { st, _ := ready(i); return st == 200 })
	}
	opt, err := redis.ParseURL(c.redis.URL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	waitFor(t, 30*time.Second, "the approval's event on its stream", func() bool {
		msgs, err := rdb.XRange(context.Background(), "it0:events.approvals", "-", "+").Result()
		if err != nil {
			return false
		}
		n := 0
		for _, m := range msgs {
			if strings.Contains(fmt.Sprint(m.Values["d"]), aid) {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("approval %s published %d times", aid, n)
		}
		return n == 1
	})

	// Live events cross between the replicas again: B follows A's session to its end.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	var evs []wsEvent
	go func() {
		var err error
		evs, err = follow(ctx, c.members[1], c.tok, sid, "completed")
		done <- err
	}()
	c.must(t, 0, 200, "POST", "/api/v1/agent/approvals/"+aid+"/approve", c.tok, nil)
	if err := <-done; err != nil {
		t.Fatalf("follower on B: %v (saw %+v)", err, evs)
	}
	for j, e := range evs {
		if e.Seq != int64(j+1) {
			t.Fatalf("follower on B: event %d has seq %d: %+v", j, e.Seq, evs)
		}
	}
}

// TestClusterReplicaWithoutRedis starts a replica on the cluster's PostgreSQL without IT0_REDIS_URL while
// another one is alive: it warns loudly and /readyz says why.
func TestClusterReplicaWithoutRedis(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1)
	var env []string
	for _, kv := range c.env {
		if !strings.HasPrefix(kv, "IT0_REDIS_URL=") {
			env = append(env, kv)
		}
	}
	alone := startServe(t, env, "--data-dir", t.TempDir())
	var checks map[string]any
	waitFor(t, 30*time.Second, "/readyz of the replica without Redis", func() bool {
		st, m := alone.call(t, "GET", "/readyz", "", nil)
		checks, _ = m["checks"].(map[string]any)
		return st == 503
	})
	if why := fmt.Sprint(checks["replicas"]); !strings.Contains(why, "IT0_REDIS_URL") {
		t.Fatalf("/readyz checks: %v", checks)
	}
	if !strings.Contains(alone.out.String(), `"level":"WARN","msg":"replica not ready"`) {
		t.Fatalf("no warning in the log:\n%s", alone.out.String())
	}
	if st, m := c.members[0].call(t, "GET", "/readyz", "", nil); st != 200 {
		t.Fatalf("/readyz of the replica with Redis: %d %v", st, m)
	}
}

// TestClusterKillCron runs two replicas on PostgreSQL and Redis with a standing order due every minute,
// and kills the replica running the first tick's run with SIGKILL: the survivor marks that run's
// execution failed (interrupted), the next tick runs once, on the survivor, and the audit chain verifies.
func TestClusterKillCron(t *testing.T) {
	t.Parallel()
	target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.63"})
	model, open, hung := gatedModel(t, "cron-key", []agenttest.Step{
		{Text: "Checking the disk.", Server: "web-1", Command: "df -h"},
		{Text: "Done: the disk is fine.", Server: "", Command: ""}}, 1)
	open()
	c := startCluster(t, 2, "IT0_ANTHROPIC_API_KEY=cron-key", "IT0_ANTHROPIC_BASE_URL="+model.URL)
	c.addServer(t, target)
	oid := c.must(t, 0, 201, "POST", "/api/v1/ops/standing-orders", c.tok, map[string]any{"name": "disk every minute",
		"trigger":            map[string]string{"type": "cron", "cron_expression": "* * * * *", "timezone": "UTC"},
		"targets":            map[string]any{"all_servers": true},
		"agent_instructions": map[string]any{"prompt": "check the disk of web-1", "max_risk_level": 0}})["id"].(string)
	executions := func(i int) []map[string]any {
		var out []map[string]any
		for _, e := range c.must(t, i, 200, "GET", "/api/v1/ops/standing-orders/"+oid+"/executions", c.tok, nil)["items"].([]any) {
			out = append(out, e.(map[string]any))
		}
		return out
	}
	select {
	case <-hung:
	case <-time.After(90 * time.Second):
		t.Fatal("the first tick's run never reached the model")
	}
	first := executions(0)
	if len(first) != 1 {
		t.Fatalf("executions of the first tick: %v", first)
	}
	// Kill the replica running it (the session names it).
	sid := first[0]["session_id"].(string)
	runner := strings.TrimSpace(psql(t, c.env, fmt.Sprintf(`SELECT runner FROM it0_t_%s.agent_sessions WHERE id = '%s'`, strings.ReplaceAll(tenantOf(t, c), "-", "_"), sid)))
	victim, survivor := -1, -1
	for i, m := range c.members {
		if strings.Contains(m.out.String(), `"replica":"`+runner+`"`) {
			victim, survivor = i, 1-i
		}
	}
	if victim < 0 {
		t.Fatalf("no replica is %q", runner)
	}
	c.members[victim].cmd.Process.Signal(syscall.SIGKILL)
	c.members[victim].cmd.Wait()

	waitFor(t, 60*time.Second, "the interrupted execution", func() bool {
		e := executions(survivor)
		return len(e) >= 1 && e[len(e)-1]["status"] == "failed"
	})
	waitFor(t, 90*time.Second, "the next tick's run to complete", func() bool {
		e := executions(survivor)
		return len(e) >= 2 && e[0]["status"] == "completed"
	})
	all := executions(survivor)
	seen := map[string]bool{}
	for _, e := range all {
		tc := string(mustJSON(e["trigger_context"]))
		if seen[tc] {
			t.Fatalf("a tick ran twice: %v", all)
		}
		seen[tc] = true
	}
	if v := c.must(t, survivor, 200, "GET", "/api/v1/audit/verify", c.tok, nil); v["ok"] != true {
		t.Fatalf("audit chain after the kill: %v", v)
	}
}

// tenantOf returns the id of the cluster's (only) tenant, from the admin's profile.
func tenantOf(t *testing.T, c *cluster) string {
	t.Helper()
	me := c.must(t, len(c.members)-1, 200, "GET", "/api/v1/auth/me", c.tok, nil)
	if ten, ok := me["tenant"].(map[string]any); ok {
		if id, ok := ten["id"].(string); ok {
			return id
		}
	}
	t.Fatalf("no tenant id in /auth/me: %v", me)
	return ""
}

// psql runs query on the cluster's database and returns its unaligned output.
func psql(t *testing.T, env []string, query string) string {
	t.Helper()
	var dsn string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "IT0_DATABASE_URL="); ok {
			dsn = v
		}
	}
	out, err := exec.Command("psql", dsn, "-tAc", query).CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q: %v: %s", query, err, out)
	}
	return string(out)
}

// TestClusterSuspension suspends a tenant on replica A while replica B has its status cached: B refuses
// the tenant's next request (403) at once, not when its cache entry expires.
func TestClusterSuspension(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 2)
	ten := c.must(t, 0, 201, "POST", "/api/v1/auth/tenants", c.tok, map[string]any{"name": "Acme", "slug": "acme",
		"admin_email": "admin@acme.example", "admin_password": "acme-password-1"})
	tid := ten["id"].(string)
	tok := c.must(t, 1, 200, "POST", "/api/v1/auth/login", "", map[string]string{"email": "admin@acme.example", "password": "acme-password-1"})["access_token"].(string)
	c.must(t, 1, 200, "GET", "/api/v1/auth/me", tok, nil) // B caches the tenant's status (active)
	c.must(t, 0, 200, "POST", "/api/v1/auth/tenants/"+tid+"/suspend", c.tok, nil)
	// B's cache entry lives 5 s; the invalidation arrives in milliseconds.
	deadline := time.Now().Add(2 * time.Second)
	for {
		st, m := c.members[1].call(t, "GET", "/api/v1/auth/me", tok, nil)
		if st == 403 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica B still serves the suspended tenant: %d %v", st, m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
