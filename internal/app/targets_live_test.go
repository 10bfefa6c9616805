package app

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestTargetsCheck checks what a process needs from the others, the warnings and gauge it derives from the
// replica registry, and the log lines when a needed target goes missing and comes back.
func TestTargetsCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{DatabaseURL: freshDatabase(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.MigrateAll(ctx); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	beat := func(id string, targets ...string) {
		t.Helper()
		now := time.Now().UTC()
		if err := db.ReplicaBeat(ctx, store.Replica{ID: id, HasBus: true, Targets: targets, SeenAt: now}, now.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}

	// Ensure a process needs what its targets hand over, less what it runs itself.
	for _, tc := range []struct {
		targets []string
		needs   []string
	}{
		{[]string{API}, []string{Agent, Ops, Monitor, Comm, Voice}},
		{[]string{API, Agent}, []string{Ops, Monitor, Comm, Voice}},
		{[]string{Agent}, []string{Ops, Comm}},
		{[]string{Monitor}, nil},
		{deployTargets, nil},
	} {
		if got := newTargetsCheck(db, tc.targets, prometheus.NewRegistry(), log).needs; !slices.Equal(got, tc.needs) {
			t.Errorf("%v needs %v, want %v", tc.targets, got, tc.needs)
		}
	}

	// Ensure an api process alone warns of every other target, counts the live ones, and logs each
	// missing target once after the start-up grace.
	reg := prometheus.NewRegistry()
	c := newTargetsCheck(db, []string{API}, reg, log)
	c.start = time.Now().Add(-targetsGrace)
	beat("api-1", API)
	warnings := c.Warnings(ctx)
	if len(warnings) != 5 || !strings.HasPrefix(warnings[0], "no live process runs the agent target: ") {
		t.Fatalf("warnings: %q", warnings)
	}
	if live := gauge(t, c.live.WithLabelValues(API)); live != 1 {
		t.Errorf("it0_targets_live{target=api} = %v", live)
	}
	c.refresh(ctx)
	c.refresh(ctx)
	if n := strings.Count(logs.String(), "no live process runs a target this process needs"); n != 5 {
		t.Errorf("%d warnings logged for 5 missing targets:\n%s", n, logs.String())
	}

	// Ensure a live agent replica clears its warning, is counted, and its return is logged.
	beat("agent-1", Agent)
	beat("agent-2", Agent, Ops)
	if warnings := c.Warnings(ctx); len(warnings) != 3 || strings.Contains(strings.Join(warnings, "\n"), "agent target") {
		t.Errorf("warnings with agent replicas: %q", warnings)
	}
	c.refresh(ctx)
	if live := gauge(t, c.live.WithLabelValues(Agent)); live != 2 {
		t.Errorf("it0_targets_live{target=agent} = %v", live)
	}
	if !strings.Contains(logs.String(), "a live process runs a needed target again") || !strings.Contains(logs.String(), "target=agent") {
		t.Errorf("no log line for the agent target coming back:\n%s", logs.String())
	}
}

// gauge reads g's value.
func gauge(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
