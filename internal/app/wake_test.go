package app

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/comm"
)

// TestWakeOthers checks that work queued for another process's runner is announced on the bus, and work
// this process runs itself is not.
func TestWakeOthers(t *testing.T) {
	t.Parallel()
	b := newSplitBundle(t)
	api, _ := b.start(API, nil)
	worker, _ := b.start(Agent, nil)
	ctx := tenantCtx(t, api)
	sub, err := api.Bus.Subscribe(ctx, wakeTopic)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// until reads wake messages until one for kind and returns the kinds before it (other work of the
	// processes may wake the runners meanwhile).
	until := func(kind string) []string {
		t.Helper()
		var seen []string
		deadline := time.After(30 * time.Second)
		for {
			select {
			case m := <-sub.C:
				var w wake
				if err := json.Unmarshal(m, &w); err != nil {
					t.Fatalf("wake message %q: %v", m, err)
				}
				if w.Kind == kind {
					return seen
				}
				seen = append(seen, w.Kind)
			case <-deadline:
				t.Fatalf("no wake for %s in 30s (saw %v)", kind, seen)
			}
		}
	}

	// Ensure a run the api process hands over wakes the agent processes.
	if _, _, err := api.Agent.StartTask(ctx, agent.StartParams{Prompt: "anything to do?"}); err != nil {
		t.Fatal(err)
	}
	until(agent.JobRun)
	// Ensure work the agent process runs itself, or due after the next poll, wakes no one, and work due now
	// for the comm target does
	// (the messages of one process reach the topic in order).
	worker.wakeOthers(ctx, agent.JobResume, time.Time{})
	worker.wakeOthers(ctx, comm.JobRetry, time.Now().Add(24*time.Hour)) // due after the next poll: no wake needed
	worker.wakeOthers(ctx, comm.JobStep, time.Time{})
	if seen := until(comm.JobStep); slices.Contains(seen, agent.JobResume) || slices.Contains(seen, comm.JobRetry) {
		t.Fatalf("the agent process woke others for its own %s jobs or for later work: %v", agent.JobResume, seen)
	}
}
