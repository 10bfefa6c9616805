// Package redislimit keeps the login limits' state in Redis, so that every replica of a deployment counts
// the same failures: N replicas then allow no more password guesses than one.
package redislimit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/it0/it0/internal/auth"
	"github.com/redis/go-redis/v9"
)

// Config configures Limits.
type Config struct {
	// Prefix starts every key (default "it0:login:"); tests isolate themselves with it.
	Prefix string
	// Timeout bounds each Redis call (default 2s): a Redis that hangs must not hang sign-ins.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Limits is an auth.LimitStore on Redis.
//
// Each throttled key is a hash {n, last} with a TTL of the throttle's forget time, updated by one Lua
// script (atomic: concurrent failures on several replicas are all counted). A remembered pair is a string
// holding its expiry, with a TTL. Key names are the hashed names auth gives (no email or address).
//
// If Redis cannot be reached, Limits falls back to the replica's own memory, which it writes on every call
// for that purpose, and logs once per outage: sign-ins keep working under the per-replica limits (N replicas
// allow N times the guesses, for as long as Redis is down). Refusing every sign-in instead would lock the
// administrators out of the console just when something is broken, while Redis is a counter, not a
// source of truth.
type Limits struct {
	cfg   Config
	rdb   redis.UniversalClient
	local *auth.MemoryLimits
	down  atomic.Bool
}

var _ auth.LimitStore = (*Limits)(nil)

// New returns Limits on the Redis client rdb; the caller closes rdb.
func New(cfg Config, rdb redis.UniversalClient) *Limits {
	cfg.Prefix = cmp.Or(cfg.Prefix, "it0:login:")
	cfg.Timeout = cmp.Or(cfg.Timeout, 2*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Limits{cfg: cfg, rdb: rdb, local: auth.NewMemoryLimits()}
}

// failScript counts one failure: it starts over when the last one is forgotten, never moves the last
// failure back (a replica whose clock is behind), and sets the key's TTL to the forget time.
// KEYS[1] = key; ARGV = now (ms), forget (ms).
var failScript = redis.NewScript(`
local now, forget = tonumber(ARGV[1]), tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'n', 'last')
local n, last = tonumber(v[1]) or 0, tonumber(v[2]) or 0
if now - last >= forget then n = 0 end
n = n + 1
if now > last then last = now end
redis.call('HSET', KEYS[1], 'n', n, 'last', last)
redis.call('PEXPIRE', KEYS[1], forget)
return n
`)

// ThrottleWait implements auth.LimitStore.
func (l *Limits) ThrottleWait(ctx context.Context, t auth.Throttle, key string, now time.Time) (time.Duration, error) {
	var d time.Duration
	err := l.call(ctx, func(ctx context.Context) error {
		v, err := l.rdb.HMGet(ctx, l.cfg.Prefix+key, "n", "last").Result()
		if err != nil {
			return err
		}
		n, _ := strconv.Atoi(str(v[0]))
		last, _ := strconv.ParseInt(str(v[1]), 10, 64)
		if n > 0 {
			d = t.Wait(n, time.UnixMilli(last), now)
		}
		return nil
	})
	if err != nil {
		return l.local.ThrottleWait(ctx, t, key, now)
	}
	return d, nil
}

// ThrottleFail implements auth.LimitStore.
func (l *Limits) ThrottleFail(ctx context.Context, t auth.Throttle, key string, now time.Time) error {
	l.local.ThrottleFail(ctx, t, key, now)
	l.call(ctx, func(ctx context.Context) error {
		return failScript.Run(ctx, l.rdb, []string{l.cfg.Prefix + key}, now.UnixMilli(), max(t.Forget.Milliseconds(), 1)).Err()
	})
	return nil
}

// ThrottleReset implements auth.LimitStore.
func (l *Limits) ThrottleReset(ctx context.Context, key string) error {
	l.local.ThrottleReset(ctx, key)
	l.call(ctx, func(ctx context.Context) error { return l.rdb.Del(ctx, l.cfg.Prefix+key).Err() })
	return nil
}

// Remember implements auth.LimitStore. The key holds its expiry, so Known follows the caller's clock; its
// TTL only reclaims the memory.
func (l *Limits) Remember(ctx context.Context, key string, ttl time.Duration, now time.Time) error {
	l.local.Remember(ctx, key, ttl, now)
	l.call(ctx, func(ctx context.Context) error {
		return l.rdb.Set(ctx, l.cfg.Prefix+key, now.Add(ttl).UnixMilli(), ttl).Err()
	})
	return nil
}

// Known implements auth.LimitStore.
func (l *Limits) Known(ctx context.Context, key string, now time.Time) (bool, error) {
	var known bool
	err := l.call(ctx, func(ctx context.Context) error {
		v, err := l.rdb.Get(ctx, l.cfg.Prefix+key).Int64()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		if err != nil {
			return err
		}
		known = now.Before(time.UnixMilli(v))
		return nil
	})
	if err != nil {
		return l.local.Known(ctx, key, now)
	}
	return known, nil
}

// Ping reports whether Redis answers.
func (l *Limits) Ping(ctx context.Context) error {
	if err := l.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("login limits: redis: %w", err)
	}
	return nil
}

// call runs f against Redis within the timeout. On failure it notes the outage (logging its start once) and
// returns the error for the caller to fall back on the local state; on success it notes the end of one.
func (l *Limits) call(ctx context.Context, f func(ctx context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	err := f(cctx)
	if err == nil {
		if l.down.Swap(false) {
			l.cfg.Logger.InfoContext(ctx, "login limits shared through Redis again")
		}
		return nil
	}
	if ctx.Err() != nil { // the caller gave up (client gone): not an outage
		return err
	}
	if !l.down.Swap(true) {
		l.cfg.Logger.WarnContext(ctx, "Redis unreachable: login limits counted on this replica only until it is back",
			slog.String("error", err.Error()))
	}
	return err
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
