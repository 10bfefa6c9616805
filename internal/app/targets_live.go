package app

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/it0/it0/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// targetNeeds names, for each deploy target, the targets its work hands work to: without a live process
// running them, that work waits. The api target takes every request, so it needs all the others.
var targetNeeds = map[string][]string{
	API:   {Agent, Ops, Monitor, Comm, Voice},
	Agent: {Ops, Comm}, // its approvals' timeouts and escalations
	Ops:   {Agent, Comm},
	Voice: {Agent}, // a conversation's turns are agent runs
}

// targetLoss says what stops while no live process runs a target.
var targetLoss = map[string]string{
	Agent:   "agent tasks, standing-order runs and voice turns wait as agent.run jobs and do not start",
	Ops:     "approvals do not time out and standing orders' cron runs and digests do not happen",
	Monitor: "no metric is collected, no alert rule is evaluated and no health check runs",
	Comm:    "approvals are not escalated to people and failed messages are not retried",
	Voice:   "the voice API and streams (/api/v1/voice/*, /ws/voice, Twilio media) have no process to serve them",
}

// targetsGrace is how long after start a missing target is not logged: the processes of a split usually
// start together, and a sibling's first heartbeat may come a little after this process's.
const targetsGrace = 2 * replicaBeatEvery

// targetsCheck watches the replica registry for the deploy targets this process's work needs (targetNeeds)
// and feeds it0_targets_live. A needed target that no live replica runs leaves the process ready — it still
// serves everything else, and a gateway keeps routing to it — but /readyz lists it under "warnings" and the
// log says so once, loudly.
type targetsCheck struct {
	db    *store.DB
	needs []string // targets this process needs and does not run itself
	live  *prometheus.GaugeVec
	log   *slog.Logger
	start time.Time

	mu     sync.Mutex
	warned []string // missing targets logged, until they come back
}

// newTargetsCheck returns the check of a process running targets, registering it0_targets_live on reg.
func newTargetsCheck(db *store.DB, targets []string, reg prometheus.Registerer, log *slog.Logger) *targetsCheck {
	c := &targetsCheck{db: db, log: log, start: time.Now(),
		live: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "it0_targets_live",
			Help: "Live replicas running each deploy target, as the replica registry shows them (PostgreSQL only)."}, []string{"target"})}
	reg.MustRegister(c.live)
	for _, t := range targets {
		for _, n := range targetNeeds[t] {
			if !slices.Contains(targets, n) && !slices.Contains(c.needs, n) {
				c.needs = append(c.needs, n)
			}
		}
	}
	// In the usual order of the targets, so that warnings read the same every time.
	slices.SortFunc(c.needs, func(a, b string) int { return slices.Index(deployTargets, a) - slices.Index(deployTargets, b) })
	return c
}

// missing reads the registry, updates the gauge and returns the needed targets no live replica runs.
func (c *targetsCheck) missing(ctx context.Context) ([]string, error) {
	list, err := c.db.ReplicaList(ctx, "", time.Now().UTC().Add(-replicaAliveFor))
	if err != nil {
		return nil, fmt.Errorf("read the replica registry: %w", err)
	}
	count := map[string]int{}
	for _, r := range list {
		for _, t := range r.Targets {
			count[t]++
		}
	}
	for _, t := range deployTargets {
		c.live.WithLabelValues(t).Set(float64(count[t]))
	}
	var missing []string
	for _, t := range c.needs {
		if count[t] == 0 {
			missing = append(missing, t)
		}
	}
	return missing, nil
}

// refresh checks the registry and logs the needed targets that went missing or came back (after the
// start-up grace). It runs after each heartbeat.
func (c *targetsCheck) refresh(ctx context.Context) {
	missing, err := c.missing(ctx)
	if err != nil || time.Since(c.start) < targetsGrace {
		return // the replicas check reports a registry that cannot be read
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range missing {
		if !slices.Contains(c.warned, t) {
			c.log.WarnContext(ctx, "no live process runs a target this process needs", slog.String("target", t),
				slog.String("effect", targetLoss[t]), slog.String("fix", "start a process with -target="+t))
		}
	}
	for _, t := range c.warned {
		if !slices.Contains(missing, t) {
			c.log.InfoContext(ctx, "a live process runs a needed target again", slog.String("target", t))
		}
	}
	c.warned = missing
}

// Ping implements httpapi.Pinger: a missing target leaves the process ready (see Warnings).
func (c *targetsCheck) Ping(context.Context) error { return nil }

// Warnings implements httpapi.Warner: one line per needed target that no live replica runs, read from the
// registry now (a process that just started or stopped shows at once).
func (c *targetsCheck) Warnings(ctx context.Context) []string {
	missing, err := c.missing(ctx)
	if err != nil {
		return []string{err.Error()}
	}
	var list []string
	for _, t := range missing {
		list = append(list, fmt.Sprintf("no live process runs the %s target: %s; start one with -target=%s", t, targetLoss[t], t))
	}
	return list
}
