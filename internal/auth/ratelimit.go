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
