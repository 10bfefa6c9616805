package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/tenant"
)

// RelayConfig tunes a Relay; zero fields take defaults.
type RelayConfig struct {
	// Batch is how many rows one transaction publishes at most (default 500).
	Batch int
	// Parallel is how many tenants' outboxes are drained at once (default 4).
	Parallel int
	// Poll is how often every tenant's outbox is checked when nobody calls Notify (default 500 ms):
	// rows written by other replicas are found this way.
	Poll   time.Duration
	Logger *slog.Logger
	// Metrics, when set, records how long events waited (it0_bus_outbox_delay_seconds) and the age of the
	// oldest one a pass could not publish (it0_bus_outbox_oldest_seconds).
	Metrics *bus.Metrics
	// Now is the clock events' ages are measured on (default time.Now).
	Now func() time.Time
}

// Relay publishes outbox rows on the bus.
type Relay struct {
	cfg     RelayConfig
	store   Store
	bus     bus.Bus
	tenants func(ctx context.Context) ([]string, error)
	wake    chan struct{}

	mu     sync.Mutex
	stuck  time.Time           // the oldest created_at of rows the current pass failed to publish
	asked  map[string]struct{} // tenants Notify asked for since the loop last woke
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// NewRelay returns a relay of the outboxes of the tenants that tenants lists.
func NewRelay(cfg RelayConfig, s Store, b bus.Bus, tenants func(ctx context.Context) ([]string, error)) *Relay {
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Logger = cfg.Logger.With(slog.String("component", "outbox"))
	return &Relay{cfg: cfg, store: s, bus: b, tenants: tenants, wake: make(chan struct{}, 1), asked: map[string]struct{}{}}
}

// Notify asks the relay to publish tenant tenantID's outbox now (after this process wrote an event there).
// Only that tenant is visited: a full pass over every tenant, which finds the rows other replicas wrote,
// comes with each poll (which is also what an empty tenantID gets).
func (r *Relay) Notify(tenantID string) {
	if tenantID == "" {
		return
	}
	r.mu.Lock()
	r.asked[tenantID] = struct{}{}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// RunOnce publishes every outbox row of every tenant, and returns how many it published. A tenant whose
// rows cannot be published (the bus is down) keeps them; the error says which.
func (r *Relay) RunOnce(ctx context.Context) (int, error) {
	ids, err := r.tenants(ctx)
	if err != nil {
		return 0, fmt.Errorf("list tenants: %w", err)
	}
	if ids, err = r.store.OutboxWaiting(ctx, ids); err != nil {
		return 0, fmt.Errorf("probe the outboxes: %w", err)
	}
	r.mu.Lock()
	r.stuck = time.Time{}
	r.mu.Unlock()
	total, err := r.drainAll(ctx, ids)
	r.mu.Lock()
	oldest := time.Duration(0)
	if !r.stuck.IsZero() {
		oldest = r.cfg.Now().Sub(r.stuck)
	}
	r.mu.Unlock()
	r.cfg.Metrics.OutboxOldest(oldest)
	return total, err
}

// runAsked publishes the outboxes of the tenants Notify asked for.
func (r *Relay) runAsked(ctx context.Context) error {
	r.mu.Lock()
	asked := r.asked
	r.asked = map[string]struct{}{}
	r.mu.Unlock()
	ids := make([]string, 0, len(asked))
	for id := range asked {
		ids = append(ids, id)
	}
	_, err := r.drainAll(ctx, ids)
	return err
}

// drainAll drains the outboxes of tenants ids, Parallel at a time (each tenant by one goroutine, so its
// rows keep their order), and returns how many rows it published.
func (r *Relay) drainAll(ctx context.Context, ids []string) (int, error) {
	var (
		mu    sync.Mutex
		total int
		list  []error
		wg    sync.WaitGroup
		slots = make(chan struct{}, r.cfg.Parallel)
	)
	for _, id := range ids {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			n, err := r.drain(tenant.WithID(ctx, id))
			mu.Lock()
			defer mu.Unlock()
			total += n
			if err != nil {
				list = append(list, fmt.Errorf("tenant %s: %w", id, err))
			}
		})
	}
	wg.Wait()
	return total, errors.Join(list...)
}

// drain publishes the tenant's outbox batch by batch until it is empty.
func (r *Relay) drain(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := r.store.OutboxRelay(ctx, r.cfg.Batch, r.publish)
		total += n
		if err != nil || n < r.cfg.Batch {
			return total, err
		}
	}
}

// publish sends evs in order, in one batch; a failure rolls the batch back (it is sent again: at least once).
func (r *Relay) publish(ctx context.Context, evs []Event) error {
	msgs := make([]bus.Outgoing, len(evs))
	for i, e := range evs {
		msgs[i] = bus.Outgoing{Stream: e.Stream, Data: e.Payload}
	}
	if err := r.bus.PublishBatch(ctx, msgs); err != nil {
		r.mu.Lock()
		if r.stuck.IsZero() || evs[0].CreatedAt.Before(r.stuck) {
			r.stuck = evs[0].CreatedAt
		}
		r.mu.Unlock()
		return err
	}
	now := r.cfg.Now()
	for _, e := range evs {
		r.cfg.Metrics.OutboxDelay(e.Stream, now.Sub(e.CreatedAt))
	}
	return nil
}

// Start runs the relay in the background until Stop.
func (r *Relay) Start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	go r.loop(ctx)
}

func (r *Relay) loop(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.cfg.Poll)
	defer t.Stop()
	failing := false
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, err = r.RunOnce(ctx)
		case <-r.wake:
			err = r.runAsked(ctx)
		}
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			// Logged once per outage: the rows wait in the outbox, and the readiness check shows the bus.
			r.cfg.Logger.WarnContext(ctx, "outbox relay", slog.String("error", err.Error()))
			failing = true
		case err == nil && failing:
			r.cfg.Logger.InfoContext(ctx, "outbox relay recovered")
			failing = false
		}
	}
}

// Stop ends the background relay.
func (r *Relay) Stop() {
	r.once.Do(func() {
		if r.cancel != nil {
			r.cancel()
			<-r.done
		}
	})
}
