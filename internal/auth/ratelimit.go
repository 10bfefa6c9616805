package auth

import (
	"sync"
	"time"
)

// limiter counts events per key in a fixed window. It is in memory: with several replicas each enforces its
// own share, which still bounds guessing to replicas × limit per window.
type limiter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	seen   map[string]*windowCount
	swept  time.Time
}

type windowCount struct {
	start time.Time
	n     int
}

func newLimiter(limit int, window time.Duration) *limiter {
	return &limiter{limit: limit, window: window, seen: map[string]*windowCount{}}
}

// blocked reports whether key has used up its window, and when it may try again.
func (l *limiter) blocked(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.seen[key]
	if c == nil || now.Sub(c.start) >= l.window {
		return false, 0
	}
	if c.n >= l.limit {
		return true, c.start.Add(l.window).Sub(now)
	}
	return false, 0
}

// add counts one event for key.
func (l *limiter) add(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > l.window {
		for k, c := range l.seen {
			if now.Sub(c.start) >= l.window {
				delete(l.seen, k)
			}
		}
		l.swept = now
	}
	c := l.seen[key]
	if c == nil || now.Sub(c.start) >= l.window {
		c = &windowCount{start: now}
		l.seen[key] = c
	}
	c.n++
}

// reset forgets key (after a successful login).
func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.seen, key)
}

// throttle slows a key down after its free failures: attempt n beyond them must wait base·2^(n-1), at most
// max, after the previous failure. A key's failures are forgotten forget after its last one. Unlike a lock,
// waiting always ends, and one key's throttle never stops another key (the owner signing in from elsewhere).
// In memory, like limiter.
type throttle struct {
	mu     sync.Mutex
	free   int
	base   time.Duration
	max    time.Duration
	forget time.Duration
	seen   map[string]*failures
	swept  time.Time
}

type failures struct {
	n    int
	last time.Time
}

func newThrottle(free int, base, max, forget time.Duration) *throttle {
	return &throttle{free: free, base: base, max: max, forget: forget, seen: map[string]*failures{}}
}

// wait returns how long key must wait before its next attempt (0: it may try now).
func (t *throttle) wait(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.seen[key]
	if f == nil || now.Sub(f.last) >= t.forget || f.n < t.free {
		return 0
	}
	d := t.max
	if k := f.n - t.free; k < 30 {
		d = min(t.base<<k, t.max)
	}
	return max(f.last.Add(d).Sub(now), 0)
}

// fail counts one failure for key.
func (t *throttle) fail(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.swept) > t.forget {
		for k, f := range t.seen {
			if now.Sub(f.last) >= t.forget {
				delete(t.seen, k)
			}
		}
		t.swept = now
	}
	f := t.seen[key]
	if f == nil || now.Sub(f.last) >= t.forget {
		f = &failures{}
		t.seen[key] = f
	}
	f.n++
	f.last = now
}

// reset forgets key's failures.
func (t *throttle) reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.seen, key)
}

// recent remembers keys for a while: the (account, IP) pairs that signed in successfully.
type recent struct {
	mu   sync.Mutex
	ttl  time.Duration
	max  int
	seen map[string]time.Time
}

func newRecent(ttl time.Duration, max int) *recent {
	return &recent{ttl: ttl, max: max, seen: map[string]time.Time{}}
}

func (r *recent) add(key string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) >= r.max {
		for k, at := range r.seen {
			if now.Sub(at) >= r.ttl {
				delete(r.seen, k)
			}
		}
		if len(r.seen) >= r.max { // still full: start over rather than grow without bound
			clear(r.seen)
		}
	}
	r.seen[key] = now
}

func (r *recent) has(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.seen[key]
	return ok && now.Sub(at) < r.ttl
}
