package redislimit_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/auth/limittest"
	"github.com/it0/it0/internal/auth/redislimit"
	"github.com/it0/it0/internal/bus/bustest"
	"github.com/redis/go-redis/v9"
)

func client(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestLimits(t *testing.T) {
	t.Parallel()
	bustest.RequireRedis(t)
	limittest.Run(t, func(t *testing.T) auth.LimitStore {
		return redislimit.New(redislimit.Config{Prefix: bustest.Prefix(t)}, client(t, bustest.RedisURL()))
	})
}

// TestLimitsShared: failures counted by one replica's Limits delay the same key on another replica's, and
// the keys expire with the forget time.
func TestLimitsShared(t *testing.T) {
	t.Parallel()
	bustest.RequireRedis(t)
	ctx := context.Background()
	prefix := bustest.Prefix(t)
	rdb := client(t, bustest.RedisURL())
	a := redislimit.New(redislimit.Config{Prefix: prefix}, rdb)
	b := redislimit.New(redislimit.Config{Prefix: prefix}, client(t, bustest.RedisURL()))
	th := auth.Throttle{Free: 2, Base: time.Minute, Max: time.Hour, Forget: time.Hour}
	now := time.Now().Truncate(time.Millisecond) // what Redis keeps
	for range 3 {
		if err := a.ThrottleFail(ctx, th, "pair:k", now); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := b.ThrottleWait(ctx, th, "pair:k", now); err != nil || d != 2*time.Minute {
		t.Fatalf("B's wait after three failures on A: %v, %v (want 2m)", d, err)
	}
	if err := a.Remember(ctx, "pair:k", time.Hour, now); err != nil {
		t.Fatal(err)
	}
	if known, err := b.Known(ctx, "pair:k", now); err != nil || !known {
		t.Fatalf("B does not know the pair A remembered: %v, %v", known, err)
	}
	if err := b.ThrottleReset(ctx, "pair:k"); err != nil {
		t.Fatal(err)
	}
	if d, _ := a.ThrottleWait(ctx, th, "pair:k", now); d != 0 {
		t.Fatalf("A's wait after B's reset: %v", d)
	}
	a.ThrottleFail(ctx, th, "ip:k", now)
	ttl := rdb.PTTL(ctx, prefix+"ip:k").Val()
	if ttl <= 0 || ttl > time.Hour {
		t.Fatalf("TTL of a throttled key: %v, want at most the forget time (1h)", ttl)
	}
}

// TestLimitsFallback kills Redis: sign-ins keep their limits on the replica's own counts, the outage is
// logged once, and its end once; the failures counted during the outage stay counted locally.
func TestLimitsFallback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rs := bustest.StartRedis(t)
	var buf syncBuffer
	l := redislimit.New(redislimit.Config{Logger: slog.New(slog.NewTextHandler(&buf, nil))}, client(t, rs.URL()))
	th := auth.Throttle{Free: 1, Base: time.Minute, Max: time.Hour, Forget: time.Hour}
	now := time.Now().Truncate(time.Millisecond) // what Redis keeps
	if err := l.ThrottleFail(ctx, th, "k", now); err != nil {
		t.Fatal(err)
	}
	rs.Kill()
	for range 3 {
		if err := l.ThrottleFail(ctx, th, "k", now); err != nil {
			t.Fatalf("a failure while Redis is down: %v", err)
		}
	}
	if d, err := l.ThrottleWait(ctx, th, "k", now); err != nil || d != 8*time.Minute {
		t.Fatalf("wait on the local counts while Redis is down: %v, %v (want 8m after 4 failures)", d, err)
	}
	if known, err := l.Known(ctx, "pair", now); err != nil || known {
		t.Fatalf("Known while Redis is down: %v, %v", known, err)
	}
	if n := strings.Count(buf.String(), "Redis unreachable"); n != 1 {
		t.Fatalf("the outage was logged %d times, want once:\n%s", n, buf.String())
	}
	rs.Start()
	// The client's pool redials in the background (about once a second): until it has, the local counts
	// answer. Redis (append-only) kept the one failure counted before the outage.
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := l.ThrottleWait(ctx, th, "k", now)
		if err != nil {
			t.Fatal(err)
		}
		if d == time.Minute {
			break
		}
		if d != 8*time.Minute || time.Now().After(deadline) {
			t.Fatalf("wait once Redis is back: %v (want 1m: one failure before the outage)", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := strings.Count(buf.String(), "again"); n != 1 {
		t.Fatalf("the end of the outage was logged %d times, want once:\n%s", n, buf.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
