package jobs

import (
	"context"
	"sync"
	"time"
)

// pool runs claimed jobs, each on a goroutine of its own, at most Config.Workers at once. One goroutine
// uses it: the Start loop, or RunDue's caller.
//
// While a backlog is being drained (the last claim got every job it asked for), a claim also takes up to
// Workers jobs beyond the free workers; they wait in ready and start as workers free up. Each claim is a
// commit (and carries the outcomes queued since the last one), so this halves the commits per job when
// handlers are quick. A job waits in ready at most leaseMargin/2 (else it goes back to pending without using
// an attempt), so its handler still ends within its lease.
type pool struct {
	r        *Runner
	base     context.Context // cancelled when the handlers must stop
	busy     int             // handlers started and not yet counted as returned
	started  int             // handlers started in all
	ready    []*claimed      // claimed, not yet started; oldest due first
	backlog  bool            // the last claim got as many jobs as it asked for
	cool     time.Time       // after a full claim, no partial claim before this (see claimable)
	finished chan struct{}   // one value per handler that returned
	wg       sync.WaitGroup
}

// claimed is a job claimed by this runner and not yet started.
type claimed struct {
	job    *Job
	at     time.Time          // when it was claimed (Config.Now)
	ctx    context.Context    // cancelled by Cancel (or when base is)
	cancel context.CancelFunc // registered in Runner.running from the claim on
}

func (r *Runner) newPool(base context.Context) *pool {
	return &pool{r: r, base: base, finished: make(chan struct{}, r.cfg.Workers)}
}

func (p *pool) free() int { return p.r.cfg.Workers - p.busy }

func (p *pool) quarter() int { return max(1, p.r.cfg.Workers/4) }

// claimable reports whether to claim now: when no claimed job waits, and nothing runs or at least a quarter
// of the workers are free, so that a burst is claimed in batches rather than one job per finished job. While
// a backlog is being drained, a partial claim also waits out a cooldown as long as the last claim took:
// handlers quicker than a claim (most are) have returned by then, so the next claim fills every worker
// instead of alternating part-batches.
func (p *pool) claimable() bool {
	if len(p.ready) > 0 {
		return false
	}
	free := p.free()
	return free > 0 && (p.busy == 0 || free >= p.quarter() && !time.Now().Before(p.cool))
}

// claim claims jobs for the free workers (and, draining a backlog, Workers more) and starts what it can.
// It reports whether the claim got every job it asked for (more may be due).
func (p *pool) claim(ctx context.Context) (bool, error) {
	limit := p.free()
	if p.backlog {
		limit += p.r.cfg.Workers
	}
	begin := time.Now()
	list, err := p.r.claim(ctx, limit)
	p.backlog = err == nil && len(list) == limit
	p.cool = time.Time{}
	if p.backlog {
		p.cool = time.Now().Add(time.Since(begin))
	}
	now := p.r.now()
	p.r.mu.Lock()
	for _, j := range list {
		c := &claimed{job: j, at: now}
		c.ctx, c.cancel = context.WithCancel(p.base)
		p.r.running[j.ID] = c.cancel
		p.ready = append(p.ready, c)
	}
	p.r.mu.Unlock()
	p.start()
	return p.backlog, err
}

// start starts waiting jobs on the free workers. A job cancelled meanwhile is dropped (its row says so
// already); one that waited too long, or when the pool is stopping, goes back to pending.
func (p *pool) start() {
	for p.busy < p.r.cfg.Workers && len(p.ready) > 0 {
		c := p.ready[0]
		p.ready = p.ready[1:]
		switch {
		case p.base.Err() != nil || p.r.now().Sub(c.at) > leaseMargin/2:
			p.giveBack(c)
		case c.ctx.Err() != nil:
			p.r.forget(c)
		default:
			p.busy++
			p.started++
			p.wg.Go(func() {
				p.r.work(p.base, c)
				p.finished <- struct{}{}
			})
		}
	}
}

// giveBack returns a claimed job that will not start to pending, without using an attempt.
func (p *pool) giveBack(c *claimed) {
	p.r.forget(c)
	p.r.comp.add(result{ID: c.job.ID, State: Pending, LastError: "", Undo: 1})
}

// close waits for the running handlers and gives back the jobs that did not start.
func (p *pool) close() {
	p.wg.Wait()
	for _, c := range p.ready {
		p.giveBack(c)
	}
	p.ready = nil
}

// forget unregisters a claimed job from Cancel's reach.
func (r *Runner) forget(c *claimed) {
	c.cancel()
	r.mu.Lock()
	delete(r.running, c.job.ID)
	r.mu.Unlock()
}

// reap counts the handlers that have returned, without waiting, starts waiting jobs on their workers,
// and returns how many it counted.
func (p *pool) reap() int {
	n := 0
	for {
		select {
		case <-p.finished:
			p.busy--
			n++
		default:
			p.start()
			return n
		}
	}
}

// waitLimit returns how long the pool may wait for a handler to return: d (0: no limit), or less when a
// claim's cooldown ends sooner.
func (p *pool) waitLimit(d time.Duration) time.Duration {
	if p.busy == 0 || len(p.ready) > 0 || p.free() < p.quarter() {
		return d
	}
	if c := time.Until(p.cool); c > 0 && (d == 0 || c < d) {
		return c
	}
	return d
}

// wait returns when a handler returns, stop is closed, wake receives, or after d (0: no limit).
func (p *pool) wait(stop <-chan struct{}, wake <-chan struct{}, d time.Duration) {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-p.finished:
		p.busy--
	case <-stop:
	case <-wake:
	case <-timeout:
	}
}
