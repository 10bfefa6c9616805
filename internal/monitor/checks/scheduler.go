package checks

import (
	"container/heap"
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/dueheap"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/tenant"
	"github.com/it0/it0/internal/testsignal"
	"github.com/prometheus/client_golang/prometheus"
)

// SchedulerConfig tunes the scheduler.
type SchedulerConfig struct {
	// Tenants lists the ids of the tenants whose checks run here (the active ones).
	Tenants func(ctx context.Context) ([]string, error)
	// Now is the clock; Run waits on real timers for the time it reads from it.
	Now func() time.Time
	// Concurrency bounds the checks running at once. Default 64.
	Concurrency int
	// ReloadInterval is how often the checks are reloaded even without a change signal (new tenants, edits
	// made through another replica). Default 1 minute.
	ReloadInterval time.Duration
	// ResultRetention is how long results are kept. Default 7 days; pruned hourly.
	ResultRetention time.Duration
	// Jitter returns a random duration in [0, n); default math/rand/v2.
	Jitter func(n time.Duration) time.Duration
	// Registerer takes it0_checks_down; nil registers nothing.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Scheduler runs every enabled check of every tenant once per interval.
//
// Each check has a fixed phase within its interval, a hash of its tenant and id, so that checks with the
// same interval are spread evenly over it rather than bunched at the moment they were loaded; every run
// is further delayed by a random jitter below the check's jitter_seconds. Runs go to at most Concurrency
// workers. A check whose run is still going at its next slot skips that slot; a scheduler that fell behind
// by more than an interval (a paused process) resumes at the next slot instead of running a burst.
// Lateness (start − scheduled time) is recorded per result and in it0_check_lateness_seconds.
//
// Replicas sharing a database compute the same slots (the phase depends only on the tenant and id), and
// each run first claims its slot in the database: whichever replica claims it runs the check, the others
// skip that slot. State and results are therefore written by one replica per slot.
type Scheduler struct {
	// TestSignals report the scheduler's steps to tests; disabled unless a test initialises them.
	TestSignals SchedulerTestSignals

	cfg    SchedulerConfig
	checks *Service
	log    *slog.Logger

	mu      sync.Mutex
	entries map[string]*schedEntry // by tenant/id
	queue   dueheap.Heap[*schedEntry]
	signal  chan struct{} // a reload is wanted
	sem     chan struct{}
	wg      sync.WaitGroup
}

// SchedulerTestSignals are the steps of a Scheduler a test can wait for instead of polling on wall time.
type SchedulerTestSignals struct {
	Reloaded testsignal.Signal[int]    // a reload finished; the value is how many checks are scheduled
	Ran      testsignal.Signal[string] // a run finished and its state is kept; the value is the check id
}

// schedEntry is one check in the schedule. check is the scheduler's copy, whose state is kept current by
// the runs; the definition is replaced on reload.
type schedEntry struct {
	key           string
	tenantID      string
	check         Check
	slot          time.Time // the current slot, on the check's phase
	lastRun       time.Time // the slot this replica last ran
	running       bool
	removed       bool
	dueheap.Entry // slot + this run's jitter, and the entry's place in the queue
}

// NewScheduler returns a scheduler for checks; it signals the scheduler when checks change.
func NewScheduler(cfg SchedulerConfig, checks *Service) *Scheduler {
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Now().UTC() }
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.ReloadInterval <= 0 {
		cfg.ReloadInterval = time.Minute
	}
	if cfg.ResultRetention <= 0 {
		cfg.ResultRetention = 7 * 24 * time.Hour
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func(n time.Duration) time.Duration { return rand.N(n) }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{cfg: cfg, checks: checks, log: cfg.Logger.With(slog.String("component", "check_scheduler")),
		entries: map[string]*schedEntry{}, signal: make(chan struct{}, 1), sem: make(chan struct{}, cfg.Concurrency)}
	checks.onChange = s.Notify
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "it0_checks_down",
			Help: "Health checks whose state is down."}, func() float64 { return float64(s.Down()) }))
	}
	return s
}

// Notify asks the running scheduler to reload the checks soon. It never blocks.
func (s *Scheduler) Notify() {
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// Down counts the scheduled checks whose state is down.
func (s *Scheduler) Down() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.entries {
		if e.check.State == Down {
			n++
		}
	}
	return n
}

// Len is the number of scheduled checks.
func (s *Scheduler) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// checkPhase is the check's fixed offset within its interval.
func checkPhase(key string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(key))
	return time.Duration(h.Sum64() % uint64(interval))
}

// slotAtOrAfter returns the first time at or after t that lies on the check's phase.
func slotAtOrAfter(t time.Time, interval, phase time.Duration) time.Time {
	n := t.UnixNano()
	k := (n - int64(phase)) / int64(interval)
	s := time.Unix(0, k*int64(interval)+int64(phase)).UTC()
	for s.Before(t) {
		s = s.Add(interval)
	}
	return s
}

func (s *Scheduler) jitter(c *Check) time.Duration {
	if c.JitterSeconds <= 0 {
		return 0
	}
	return s.cfg.Jitter(c.Jitter())
}

// Reload loads every enabled check of every tenant, keeping the schedule and in-memory state of the checks
// it already has. A tenant whose checks cannot be read keeps its current schedule.
func (s *Scheduler) Reload(ctx context.Context) error {
	tids, err := s.cfg.Tenants(ctx)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	var failed []error
	seen := map[string]bool{}
	keepTenant := map[string]bool{}
	type loaded struct {
		tid string
		c   Check
	}
	var all []loaded
	for _, tid := range tids {
		list, err := s.checks.store.CheckList(tenant.WithID(ctx, tid))
		if err != nil {
			failed = append(failed, err)
			keepTenant[tid] = true
			continue
		}
		for _, c := range list {
			if c.Enabled {
				all = append(all, loaded{tid, c})
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range all {
		key := l.tid + "/" + l.c.ID
		seen[key] = true
		e, ok := s.entries[key]
		if !ok {
			e = &schedEntry{key: key, tenantID: l.tid, check: l.c}
			phase := checkPhase(key, l.c.Interval())
			e.slot = slotAtOrAfter(now, l.c.Interval(), phase)
			e.Due = e.slot.Add(s.jitter(&e.check))
			s.entries[key] = e
			heap.Push(&s.queue, e)
			continue
		}
		// Keep whichever state is newer: the stored one when another replica ran the check since, the one
		// in memory when a run of ours finished after the list was read.
		st := e.check
		if newerState(&l.c, &st) {
			st.State, st.Streak, st.StateChangedAt = l.c.State, l.c.Streak, l.c.StateChangedAt
			st.LastCheckedAt, st.LastStatus, st.LastMessage = l.c.LastCheckedAt, l.c.LastStatus, l.c.LastMessage
		}
		interval := e.check.Interval()
		if !l.c.UpdatedAt.Equal(e.check.UpdatedAt) {
			e.check = l.c
		}
		e.check.State, e.check.Streak, e.check.StateChangedAt = st.State, st.Streak, st.StateChangedAt
		e.check.LastCheckedAt, e.check.LastStatus, e.check.LastMessage = st.LastCheckedAt, st.LastStatus, st.LastMessage
		if e.check.Interval() != interval {
			e.slot = slotAtOrAfter(now, e.check.Interval(), checkPhase(key, e.check.Interval()))
			e.Due = e.slot.Add(s.jitter(&e.check))
			heap.Fix(&s.queue, e.Index())
		}
	}
	for key, e := range s.entries {
		if !seen[key] && !keepTenant[e.tenantID] {
			e.removed = true
			heap.Remove(&s.queue, e.Index())
			delete(s.entries, key)
		}
	}
	s.TestSignals.Reloaded.Signal(len(s.entries))
	return errors.Join(failed...)
}

// newerState reports whether a's state comes from a later result than b's.
func newerState(a, b *Check) bool {
	return a.LastCheckedAt != nil && (b.LastCheckedAt == nil || a.LastCheckedAt.After(*b.LastCheckedAt))
}

// dispatch starts every check due at now (waiting for a free worker when all are busy) and returns when the
// next one is due (zero when none is scheduled).
func (s *Scheduler) dispatch(ctx context.Context, now time.Time) time.Time {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			return time.Time{}
		}
		e := s.queue[0]
		if e.Due.After(now) {
			s.mu.Unlock()
			return e.Due
		}
		due, slot, run := e.Due, e.slot, !e.running
		c := e.check
		// The next slot; after a stall longer than an interval, the next one from now rather than a burst.
		e.slot = e.slot.Add(c.Interval())
		if e.slot.Before(now) {
			e.slot = slotAtOrAfter(now, c.Interval(), checkPhase(e.key, c.Interval()))
		}
		e.Due = e.slot.Add(s.jitter(&c))
		heap.Fix(&s.queue, e.Index())
		if run {
			e.running = true
		}
		s.mu.Unlock()
		if !run {
			s.log.WarnContext(ctx, "check still running at its next slot; slot skipped", slog.String("check_id", c.ID))
			continue
		}
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			s.mu.Lock()
			e.running = false
			s.mu.Unlock()
			return time.Time{}
		}
		s.wg.Add(1)
		go func() {
			defer func() { <-s.sem; s.wg.Done() }()
			s.run(ctx, e, c, slot, due)
		}()
	}
}

// run claims the slot, runs one check and keeps its new state in the schedule.
func (s *Scheduler) run(ctx context.Context, e *schedEntry, c Check, slot, due time.Time) {
	rctx := audit.WithActor(tenant.WithID(ctx, e.tenantID), audit.Actor{Type: audit.ActorSystem, ID: "monitor"})
	claimed, err := s.checks.store.CheckClaim(rctx, c.ID, slot)
	if err == nil && !claimed {
		s.mu.Lock()
		e.running = false
		s.mu.Unlock()
		return // another replica runs this slot
	}
	// Unless this replica ran the previous slot, the state in memory may be stale (another replica ran
	// it, or this one was stalled): start from the stored state.
	s.mu.Lock()
	fresh := e.lastRun.Equal(slot.Add(-c.Interval()))
	s.mu.Unlock()
	if err == nil && !fresh {
		var stored *Check
		if stored, err = s.checks.store.CheckGet(rctx, c.ID); err == nil {
			c.State, c.Streak, c.StateChangedAt = stored.State, stored.Streak, stored.StateChangedAt
			c.LastCheckedAt, c.LastStatus, c.LastMessage = stored.LastCheckedAt, stored.LastStatus, stored.LastMessage
		}
	}
	if err == nil {
		_, err = s.checks.Run(rctx, &c, due)
	}
	s.mu.Lock()
	e.running = false
	if err == nil && !e.removed {
		e.lastRun = slot
		e.check.State, e.check.Streak, e.check.StateChangedAt = c.State, c.Streak, c.StateChangedAt
		e.check.LastCheckedAt, e.check.LastStatus, e.check.LastMessage = c.LastCheckedAt, c.LastStatus, c.LastMessage
	}
	s.mu.Unlock()
	if err == nil {
		s.TestSignals.Ran.Signal(c.ID)
	}
	// A check deleted during its run is not an error: the next reload drops it.
	if err != nil && ctx.Err() == nil && !errs.Is(err, errs.NotFound) {
		s.log.ErrorContext(ctx, "run check", slog.String("check_id", c.ID), slog.String("tenant_id", e.tenantID),
			slog.String("error", err.Error()))
	}
}

// RunDue starts the checks due at now and waits for every run to finish. Tests drive the schedule with it
// and a controllable clock.
func (s *Scheduler) RunDue(ctx context.Context, now time.Time) (next time.Time) {
	next = s.dispatch(ctx, now)
	s.wg.Wait()
	return next
}

// Run loads the checks and runs them on schedule until ctx ends, then waits for the runs in progress.
func (s *Scheduler) Run(ctx context.Context) {
	defer s.wg.Wait()
	reload := func() {
		if err := s.Reload(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "reload checks", slog.String("error", err.Error()))
		}
	}
	reload()
	lastReload, lastPrune := time.Now(), time.Time{}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if time.Since(lastPrune) >= time.Hour {
			s.prune(ctx)
			lastPrune = time.Now()
		}
		next := s.dispatch(ctx, s.cfg.Now())
		wait := time.Until(lastReload.Add(s.cfg.ReloadInterval))
		if !next.IsZero() {
			wait = min(wait, next.Sub(s.cfg.Now()))
		}
		timer.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return
		case <-s.signal:
			reload()
			lastReload = time.Now()
		case <-timer.C:
			if time.Since(lastReload) >= s.cfg.ReloadInterval {
				reload()
				lastReload = time.Now()
			}
		}
	}
}

// prune deletes results older than the retention in every tenant.
func (s *Scheduler) prune(ctx context.Context) {
	tids, err := s.cfg.Tenants(ctx)
	if err != nil {
		return
	}
	before := s.cfg.Now().Add(-s.cfg.ResultRetention)
	for _, tid := range tids {
		pctx, cancel := context.WithTimeout(tenant.WithID(ctx, tid), time.Minute)
		n, err := s.checks.store.CheckResultPrune(pctx, before)
		cancel()
		if err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "prune check results", slog.String("tenant_id", tid), slog.String("error", err.Error()))
		} else if n > 0 {
			s.log.DebugContext(ctx, "pruned check results", slog.String("tenant_id", tid), slog.Int64("results", n))
		}
	}
}
