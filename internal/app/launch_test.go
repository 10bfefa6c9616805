package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/agent/agenttest"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/bus/bustest"
	"github.com/it0/it0/internal/tenant"
)

// splitBundle is processes of a split deployment, in this test process, on one PostgreSQL database and
// one Redis.
type splitBundle struct {
	t   testing.TB
	cfg Config
}

func newSplitBundle(t testing.TB) *splitBundle {
	t.Helper()
	bustest.RequireRedis(t)
	key := make([]byte, 32)
	rand.Read(key)
	model := agenttest.AnthropicServer(t, "launch-key", []agenttest.Step{{Text: "Done: nothing to do."}})
	return &splitBundle{t: t, cfg: Config{Addr: "127.0.0.1:0", DatabaseURL: freshDatabase(t),
		RedisURL: bustest.StartRedis(t).URL(), JWTSecret: strings.Repeat("j", 32), AuditKey: strings.Repeat("a", 32),
		VaultMasterKey: base64.StdEncoding.EncodeToString(key), BootstrapEmail: "admin@it0.local", BootstrapPass: "first-password",
		AnthropicKey: "launch-key", AnthropicBaseURL: model.URL}}
}

// start starts a process running target; opts may fail the scheduling of jobs.
func (b *splitBundle) start(target string, beforeSchedule func(ctx context.Context, kind string) error) (*App, func()) {
	b.t.Helper()
	cfg := b.cfg
	cfg.Target, cfg.DataDir = target, b.t.TempDir()
	a := New(cfg, slog.New(slog.DiscardHandler), io.Discard)
	a.SetOptions(Options{Argon2: auth.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1}, BeforeSchedule: beforeSchedule})
	stop, err := a.Start(context.Background())
	if err != nil {
		b.t.Fatalf("start %s: %v", target, err)
	}
	var once bool
	halt := func() {
		if !once {
			once = true
			if err := stop(context.Background()); err != nil {
				b.t.Errorf("stop %s: %v", target, err)
			}
		}
	}
	b.t.Cleanup(halt)
	return a, halt
}

// tenantCtx is the context of the bootstrap tenant.
func tenantCtx(t testing.TB, a *App) context.Context {
	t.Helper()
	ts, err := a.Auth.Tenants(context.Background())
	if err != nil || len(ts) != 1 {
		t.Fatalf("tenants: %v %v", ts, err)
	}
	return tenant.WithID(context.Background(), ts[0].ID)
}

// runEnds records the sessions whose runs end in process a.
func runEnds(a *App) func() []string {
	var mu sync.Mutex
	var ids []string
	a.Agent.OnRunEnd(func(_ context.Context, s *agent.Session) {
		mu.Lock()
		defer mu.Unlock()
		ids = append(ids, s.ID)
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(ids)
	}
}

// waitStatus waits until session id has left status running and returns it as stored.
func waitStatus(t testing.TB, ctx context.Context, a *App, id string) *agent.Session {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := a.Agent.Session(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Status != agent.StatusRunning {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s still running after 30s", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLaunchHandsRunsOver runs an api process and an agent process: a task started through the api
// process runs on the agent process; a run the api process cannot hand over fails at once, saying so;
// and a run cancelled before any agent process took it is left alone when one does.
func TestLaunchHandsRunsOver(t *testing.T) {
	t.Parallel()
	b := newSplitBundle(t)
	scheduleDown := errors.New("the job database is unreachable")
	var failRuns atomic.Bool
	api, _ := b.start(API, func(_ context.Context, kind string) error {
		if failRuns.Load() && kind == agent.JobRun {
			return scheduleDown
		}
		return nil
	})
	ctx := tenantCtx(t, api)
	endedOnAPI := runEnds(api)

	// Ensure a run started on the api process runs on the agent process.
	worker, stopWorker := b.start(Agent, nil)
	endedOnWorker := runEnds(worker)
	sess, _, err := api.Agent.StartTask(ctx, agent.StartParams{Prompt: "anything to do?"})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitStatus(t, ctx, api, sess.ID); got.Status != agent.StatusCompleted || got.Summary == "" {
		t.Fatalf("handed-over session: %+v", got)
	}
	if !slices.Contains(endedOnWorker(), sess.ID) || slices.Contains(endedOnAPI(), sess.ID) {
		t.Fatalf("runs ended on the agent process %v, on the api process %v", endedOnWorker(), endedOnAPI())
	}
	stopWorker()

	// Ensure a run that cannot be handed over fails at once, with the reason.
	failRuns.Store(true)
	sess, _, err = api.Agent.StartTask(ctx, agent.StartParams{Prompt: "anything else?"})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitStatus(t, ctx, api, sess.ID); got.Status != agent.StatusFailed || !strings.Contains(got.Error, scheduleDown.Error()) {
		t.Fatalf("session whose run could not be handed over: %+v", got)
	}
	failRuns.Store(false)

	// Ensure a run cancelled while no agent process runs is not started when one comes.
	sess, _, err = api.Agent.StartTask(ctx, agent.StartParams{Prompt: "and now?"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.Agent.Cancel(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
	worker, _ = b.start(Agent, nil)
	// The agent process's first claim takes the queued run: wait until the queue has nothing due.
	deadline := time.Now().Add(30 * time.Second)
	for {
		stats, err := worker.Jobs.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		busy := false
		for _, k := range stats {
			busy = busy || (k.Kind == agent.JobRun && k.Due+k.Running > 0)
		}
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent.run jobs still queued: %+v", stats)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got, _ := worker.Agent.Session(ctx, sess.ID); got.Status != agent.StatusCancelled {
		t.Fatalf("cancelled session after an agent process came: %+v", got)
	}
}
