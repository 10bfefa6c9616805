package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"time"

	"github.com/it0/it0/internal/jobs"
)

// wakeTopic carries, to every process, the kind of a job that became due for another process's runner: a
// run the api process hands to the agent target, an approval's timeout the agent process leaves to the ops
// target, an escalation step for the comm target. Each runner that claims the kind looks at once instead of
// at its next poll (up to jobs.DefaultPollInterval later). Losing a message (a process that was
// reconnecting to Redis) costs only that poll: the job itself is durable.
const wakeTopic = "jobs.wake"

// wake is one message on wakeTopic.
type wake struct {
	Kind string `json:"kind"`
}

// wakeOthers tells the other processes that a job of kind, due at at, is queued when no runner of this
// process claims that kind (Enqueue already woke this process's own runner). A job due after the next poll
// needs no wake: every runner looks at least once per poll and then waits for the earliest due job.
func (a *App) wakeOthers(ctx context.Context, kind string, at time.Time) {
	if a.cfg.RedisURL == "" || a.Bus == nil || a.claims(kind) || at.After(time.Now().Add(jobs.DefaultPollInterval)) {
		return // no other process, or this one runs it, or the poll finds it in time
	}
	b, _ := json.Marshal(wake{Kind: kind})
	// Detached on purpose: the job is queued whatever happens to the caller's ctx; bounded, since a wake
	// is only a shortcut.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := a.Bus.Broadcast(ctx, wakeTopic, b); err != nil {
		// The job waits for the runners' next poll instead.
		a.log.WarnContext(ctx, "wake the runners of another process", slog.String("job_kind", kind), slog.String("error", err.Error()))
	}
}

// claims reports whether this process's runner claims jobs of kind.
func (a *App) claims(kind string) bool {
	a.kindsMu.Lock()
	defer a.kindsMu.Unlock()
	return a.jobsStarted && slices.Contains(a.jobKinds, kind)
}

// listenWakes wakes this process's runner when another process queues a job of a kind it claims, until the
// returned func is called.
func (a *App) listenWakes(ctx context.Context) (func(), error) {
	sub, err := a.Bus.Subscribe(ctx, wakeTopic)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range sub.C {
			var w wake
			if json.Unmarshal(b, &w) == nil && a.claims(w.Kind) {
				a.Jobs.Notify()
			}
		}
	}()
	return func() { sub.Close(); <-done }, nil
}
