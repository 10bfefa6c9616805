package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/bus/redisbus"
	"github.com/it0/it0/internal/httpapi"
	"github.com/it0/it0/internal/outbox"
	"github.com/it0/it0/internal/store"
)

// Modules of the event bus.
const (
	// Bus is the event bus (in-process, or Redis with IT0_REDIS_URL) and the outbox relay feeding it.
	Bus = "bus"
	// Replicas links this process's live session events and cancels to the other replicas.
	Replicas = "replicas"
)

// initBus opens the bus, starts the outbox relay and, on PostgreSQL, the replica registry.
func (a *App) initBus(ctx context.Context) (func(context.Context) error, error) {
	cfg := bus.Config{Metrics: bus.NewMetrics(a.registry)}
	if a.cfg.RedisURL != "" {
		rb, err := redisbus.New(a.cfg.RedisURL, cfg)
		if err != nil {
			return nil, err
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = rb.Ping(pctx)
		cancel()
		if err != nil {
			rb.Close()
			return nil, fmt.Errorf("IT0_REDIS_URL: %w", err)
		}
		a.Bus = rb
	} else {
		// Nothing outlives the process in memory: keep the streams short.
		cfg.MaxLen = 10_000
		a.Bus = bus.NewMemory(cfg)
	}
	a.Relay = outbox.NewRelay(outbox.RelayConfig{Logger: a.log, Metrics: cfg.Metrics, Now: a.Store.Now}, a.Store, a.Bus, a.tenantIDs)
	a.Relay.Start(context.WithoutCancel(ctx))
	stops := []func(context.Context) error{
		func(context.Context) error { return a.Bus.Close() },
		func(context.Context) error { a.Relay.Stop(); return nil },
	}
	if a.Store.Dialect() == store.Postgres {
		a.replicaCheck = &replicaCheck{db: a.Store, id: a.replicaID, targets: a.targetList(), hasBus: a.cfg.RedisURL != "", log: a.log}
		a.targetsCheck = newTargetsCheck(a.Store, a.targetList(), a.registry, a.log)
		beat := func(ctx context.Context) { a.replicaCheck.beat(ctx); a.targetsCheck.refresh(ctx) }
		beat(ctx)
		rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() { defer close(done); every(rctx, replicaBeatEvery, replicaBeatEvery, beat) }()
		stops = append(stops, func(ctx context.Context) error {
			stop()
			<-done
			return a.Store.ReplicaForget(ctx, a.replicaID)
		})
	}
	return func(ctx context.Context) error {
		var list []error
		for i := len(stops) - 1; i >= 0; i-- {
			list = append(list, stops[i](ctx))
		}
		return errors.Join(list...)
	}, nil
}

// initReplicas links the agent's live events and cancels, and cache invalidations, to the other replicas
// through a shared bus.
// With the in-process bus there are no other replicas to reach.
func (a *App) initReplicas(ctx context.Context) (func(context.Context) error, error) {
	if a.cfg.RedisURL == "" {
		return nil, nil
	}
	disconnect, err := a.Agent.ConnectReplicas(ctx, bus.Topics{Bus: a.Bus}, a.replicaID)
	if err != nil {
		return nil, fmt.Errorf("connect the agent to the other replicas: %w", err)
	}
	// Detached from the start-up ctx on purpose: the listener lives until the module is stopped.
	stopListening, err := a.listenInvalidations(context.WithoutCancel(ctx))
	if err != nil {
		disconnect()
		return nil, fmt.Errorf("listen for cache invalidations: %w", err)
	}
	return func(context.Context) error { stopListening(); disconnect(); return nil }, nil
}

// tenantIDs lists every tenant's id (the outbox relay's tenants).
func (a *App) tenantIDs(ctx context.Context) ([]string, error) {
	list, err := a.Store.TenantList(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(list))
	for i, t := range list {
		ids[i] = t.ID
	}
	return ids, nil
}

// readyChecks is what /readyz checks in this process: the database, the bus, the job runner and, on
// PostgreSQL, that no other replica runs on a different bus and, as warnings that leave the process ready,
// which targets its work needs that no live replica runs (targets_live.go).
func (a *App) readyChecks() map[string]httpapi.Pinger {
	m := map[string]httpapi.Pinger{"database": a.Store}
	if a.Bus != nil {
		m["bus"] = a.Bus
	}
	if a.Jobs != nil && a.runsJobs() { // a process whose targets have no jobs starts no runner
		m["jobs"] = a.Jobs
	}
	if a.replicaCheck != nil {
		m["replicas"] = a.replicaCheck
	}
	if a.targetsCheck != nil && len(a.targetsCheck.needs) > 0 {
		m["targets"] = a.targetsCheck
	}
	return m
}

// replicaName names this process among replicas: the host name (the pod's, in Kubernetes) and a random
// suffix, since one host may run several.
func replicaName() string {
	host, _ := os.Hostname()
	b := make([]byte, 3)
	rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}

// Timings of the replica registry.
const (
	replicaBeatEvery = 5 * time.Second
	replicaAliveFor  = 15 * time.Second // a replica silent longer is considered gone
)

// replicaCheck announces this replica in the database and notices when it runs without the shared bus
// while other replicas are alive: their live session events and cancels would not reach each other.
type replicaCheck struct {
	db      *store.DB
	id      string
	targets []string // the deploy targets this replica runs
	hasBus  bool
	log     *slog.Logger

	mu      sync.Mutex
	problem error
}

// Ping implements httpapi.Pinger: it reports the problem the last beat found.
func (c *replicaCheck) Ping(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.problem
}

func (c *replicaCheck) beat(ctx context.Context) {
	now := time.Now().UTC()
	err := c.db.ReplicaBeat(ctx, store.Replica{ID: c.id, HasBus: c.hasBus, Targets: c.targets, SeenAt: now}, now.Add(-time.Minute))
	var problem error
	if err == nil && !c.hasBus {
		var others []store.Replica
		others, err = c.db.ReplicaList(ctx, c.id, now.Add(-replicaAliveFor))
		if len(others) > 0 {
			problem = fmt.Errorf("replica %s shares this database and this one runs without IT0_REDIS_URL: live session events and cancels do not cross between them; set IT0_REDIS_URL on every replica", others[0].ID)
		}
	}
	if err != nil {
		problem = fmt.Errorf("replica registry: %w", err)
	}
	c.mu.Lock()
	was := c.problem
	c.problem = problem
	c.mu.Unlock()
	if problem != nil && was == nil {
		c.log.WarnContext(ctx, "replica not ready", slog.String("reason", problem.Error()))
	}
}
