package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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

// reset forgets key.
func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.seen, key)
}

// Throttle is one progressive-delay throttle of the login limits: a key past its Free failures must wait
// Base·2^(n-1), at most Max, after its previous failure before attempt n beyond them. A key's failures are
// forgotten Forget after its last one. Unlike a lock, waiting always ends, and one key's throttle never stops
// another key (the owner signing in from elsewhere).
type Throttle struct {
	Free   int
	Base   time.Duration
	Max    time.Duration
	Forget time.Duration
}

// Wait returns how long a key that failed n times, the last at last, must wait at now before its next
// attempt (0: it may try now). Every LimitStore computes the delay with it.
func (t Throttle) Wait(n int, last, now time.Time) time.Duration {
	if n < t.Free || now.Sub(last) >= t.Forget {
		return 0
	}
	d := t.Max
	if k := n - t.Free; k < 30 {
		d = min(t.Base<<k, t.Max)
	}
	return max(last.Add(d).Sub(now), 0)
}

// LimitStore keeps the state of the login limits: the failures of each throttled key and the (account, IP)
// pairs that signed in recently. Keys arrive hashed (limitKey): an implementation never sees an email or an
// address. The embedded default is in memory (NewMemoryLimits), per process; package redislimit shares the
// state between replicas, so that N replicas allow no more guesses than one.
type LimitStore interface {
	// ThrottleWait returns how long key must wait under t before its next attempt (0: it may try now).
	ThrottleWait(ctx context.Context, t Throttle, key string, now time.Time) (time.Duration, error)
	// ThrottleFail counts one failure of key at now; it is forgotten t.Forget after the key's last failure.
	ThrottleFail(ctx context.Context, t Throttle, key string, now time.Time) error
	// ThrottleReset forgets key's failures.
	ThrottleReset(ctx context.Context, key string) error
	// Remember notes key (an account and an address that signed in) for ttl.
	Remember(ctx context.Context, key string, ttl time.Duration, now time.Time) error
	// Known reports whether key was remembered less than its ttl ago.
	Known(ctx context.Context, key string, now time.Time) (bool, error)
}

// limitKey is the name of raw (an email, an address, or both) in the LimitStore: kind followed by an HMAC of
// raw under a key derived from the JWT secret, which every replica shares. Key names so reveal no email or
// address, and cannot be matched against a list of hashed emails without the secret.
func limitKey(secret []byte, kind, raw string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(raw))
	return kind + ":" + hex.EncodeToString(m.Sum(nil)[:16])
}

// limitSecret derives the HMAC key of limitKey from the JWT secret (never the secret itself: a key name
// must not help anyone forge a token).
func limitSecret(jwtSecret []byte) []byte {
	m := hmac.New(sha256.New, jwtSecret)
	m.Write([]byte("it0 login limit keys"))
	return m.Sum(nil)
}

// MemoryLimits is the LimitStore of one process.
type MemoryLimits struct {
	mu       sync.Mutex
	failures map[string]*failures
	known    map[string]time.Time // expiry
	maxKnown int
	swept    time.Time
}

var _ LimitStore = (*MemoryLimits)(nil)

type failures struct {
	n      int
	last   time.Time
	forget time.Duration
}

// NewMemoryLimits returns an empty MemoryLimits that remembers at most 100,000 signed-in pairs.
func NewMemoryLimits() *MemoryLimits {
	return &MemoryLimits{failures: map[string]*failures{}, known: map[string]time.Time{}, maxKnown: 100_000}
}

// ThrottleWait implements LimitStore.
func (m *MemoryLimits) ThrottleWait(_ context.Context, t Throttle, key string, now time.Time) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.failures[key]
	if f == nil {
		return 0, nil
	}
	return t.Wait(f.n, f.last, now), nil
}

// ThrottleFail implements LimitStore.
func (m *MemoryLimits) ThrottleFail(_ context.Context, t Throttle, key string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.Sub(m.swept) > time.Minute {
		for k, f := range m.failures {
			if now.Sub(f.last) >= f.forget {
				delete(m.failures, k)
			}
		}
		m.swept = now
	}
	f := m.failures[key]
	if f == nil || now.Sub(f.last) >= f.forget {
		f = &failures{}
		m.failures[key] = f
	}
	f.n++
	if now.After(f.last) { // an earlier now (another replica's clock) must not shorten the delay
		f.last = now
	}
	f.forget = t.Forget
	return nil
}

// ThrottleReset implements LimitStore.
func (m *MemoryLimits) ThrottleReset(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.failures, key)
	return nil
}

// Remember implements LimitStore.
func (m *MemoryLimits) Remember(_ context.Context, key string, ttl time.Duration, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.known) >= m.maxKnown {
		for k, until := range m.known {
			if !now.Before(until) {
				delete(m.known, k)
			}
		}
		if len(m.known) >= m.maxKnown { // still full: start over rather than grow without bound
			clear(m.known)
		}
	}
	m.known[key] = now.Add(ttl)
	return nil
}

// Known implements LimitStore.
func (m *MemoryLimits) Known(_ context.Context, key string, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	until, ok := m.known[key]
	return ok && now.Before(until), nil
}

// loginLimits is the three throttles of Login over a LimitStore.
type loginLimits struct {
	store    LimitStore
	secret   []byte
	pairs    Throttle // failures per (account, IP)
	ips      Throttle // failures per IP
	accounts Throttle // failures per account, from IPs it is not known at
	knownFor time.Duration
}

func newLoginLimits(l LoginLimits, store LimitStore, jwtSecret []byte) loginLimits {
	th := func(free int) Throttle {
		return Throttle{Free: free, Base: l.BaseDelay, Max: l.MaxDelay, Forget: l.ForgetAfter}
	}
	return loginLimits{store: store, secret: limitSecret(jwtSecret), pairs: th(l.FreePerPair), ips: th(l.FreePerIP),
		accounts: th(l.FreePerAccount), knownFor: l.KnownIPLifetime}
}

// loginKeys are the LimitStore keys of one sign-in attempt.
type loginKeys struct{ account, ip, pair string }

func (l loginLimits) keys(email, ip string) loginKeys {
	return loginKeys{account: limitKey(l.secret, "account", email), ip: limitKey(l.secret, "ip", ip),
		pair: limitKey(l.secret, "pair", email+"\x00"+ip)}
}

// wait returns how long the attempt must wait: the longest wait of its keys. The per-account count is
// skipped for an address that signed in to the account recently.
func (l loginLimits) wait(ctx context.Context, k loginKeys, now time.Time) (time.Duration, error) {
	pair, err := l.store.ThrottleWait(ctx, l.pairs, k.pair, now)
	if err != nil {
		return 0, fmt.Errorf("login limits: %w", err)
	}
	ip, err := l.store.ThrottleWait(ctx, l.ips, k.ip, now)
	if err != nil {
		return 0, fmt.Errorf("login limits: %w", err)
	}
	wait := max(pair, ip)
	known, err := l.store.Known(ctx, k.pair, now)
	if err != nil {
		return 0, fmt.Errorf("login limits: %w", err)
	}
	if !known {
		acct, err := l.store.ThrottleWait(ctx, l.accounts, k.account, now)
		if err != nil {
			return 0, fmt.Errorf("login limits: %w", err)
		}
		wait = max(wait, acct)
	}
	return wait, nil
}

// fail counts a failed attempt against all three keys.
func (l loginLimits) fail(ctx context.Context, k loginKeys, now time.Time) error {
	if err := errors.Join(l.store.ThrottleFail(ctx, l.pairs, k.pair, now), l.store.ThrottleFail(ctx, l.ips, k.ip, now),
		l.store.ThrottleFail(ctx, l.accounts, k.account, now)); err != nil {
		return fmt.Errorf("login limits: %w", err)
	}
	return nil
}

// succeeded clears the pair's failures and remembers the pair. The account-wide count is kept: the owner
// signing in must not buy an attacker elsewhere more guesses.
func (l loginLimits) succeeded(ctx context.Context, k loginKeys, now time.Time) error {
	if err := errors.Join(l.store.ThrottleReset(ctx, k.pair), l.store.Remember(ctx, k.pair, l.knownFor, now)); err != nil {
		return fmt.Errorf("login limits: %w", err)
	}
	return nil
}
