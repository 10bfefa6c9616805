// Package bustest is the contract suite every bus.Bus implementation passes, and helpers to reach the test
// Redis.
package bustest

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"

	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/bus/redisbus"
	"github.com/redis/go-redis/v9"
)

// RedisURL is the test Redis: IT0_TEST_REDIS_URL, else redis://127.0.0.1:6379/0.
func RedisURL() string { return cmp.Or(os.Getenv("IT0_TEST_REDIS_URL"), "redis://127.0.0.1:6379/0") }

// RequireRedis skips the test when Redis is unreachable, except under CI=true, where a missing Redis is
// a failure.
func RequireRedis(tb testing.TB) {
	tb.Helper()
	opt, err := redis.ParseURL(RedisURL())
	if err == nil {
		c := redis.NewClient(opt)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = c.Ping(ctx).Err()
		cancel()
		c.Close()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("Redis is required under CI=true: %v", err)
		}
		tb.Skipf("Redis unreachable at %s: %v", RedisURL(), err)
	}
}

// Prefix returns a key prefix of its own for one test and deletes its keys when the test ends.
func Prefix(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	p := "it0test:" + hex.EncodeToString(b) + ":"
	tb.Cleanup(func() {
		opt, err := redis.ParseURL(RedisURL())
		if err != nil {
			return
		}
		c := redis.NewClient(opt)
		defer c.Close()
		ctx := context.Background()
		iter := c.Scan(ctx, 0, p+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return p
}

// OpenRedis returns a Redis bus under a prefix of its own, closed when the test ends.
func OpenRedis(tb testing.TB, cfg bus.Config) *redisbus.Bus {
	tb.Helper()
	RequireRedis(tb)
	if cfg.Prefix == "" {
		cfg.Prefix = Prefix(tb)
	}
	b, err := redisbus.New(RedisURL(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	return b
}

// Open builds the bus under test with cfg; it must close it when the test ends.
type Open func(tb testing.TB, cfg bus.Config) bus.Bus

// testConfig is quick enough for tests: a message left pending is taken over after 300 ms.
func testConfig() bus.Config {
	return bus.Config{ClaimIdle: 300 * time.Millisecond, Block: 100 * time.Millisecond, Batch: 10}
}

// wait is how long a test waits for something that should happen promptly.
const wait = 10 * time.Second

// Run is the contract suite.
func Run(t *testing.T, open Open) {
	ctx := context.Background()

	publish := func(t *testing.T, b bus.Bus, stream string, n int) {
		t.Helper()
		for i := range n {
			if _, err := b.Publish(ctx, stream, []byte(strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	// consume runs consumer c with h until the test ends.
	consume := func(t *testing.T, b bus.Bus, c bus.Consumer, h bus.Handler) context.CancelFunc {
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- b.Consume(cctx, c, h) }()
		t.Cleanup(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("consume: %v", err)
				}
			case <-time.After(wait):
				t.Errorf("Consume did not return after its context ended")
			}
		})
		return cancel
	}

	// Ensure every group sees every message once, shared among the group's consumers, in order per consumer.
	t.Run("OncePerGroup", func(t *testing.T) {
		t.Parallel()
		b := open(t, testConfig())
		const n = 200
		var mu sync.Mutex
		seen := map[string][]int{} // group → data
		perConsumer := map[string][]int{}
		all := make(chan struct{}, 3*n)
		handler := func(group, name string) bus.Handler {
			return func(_ context.Context, m bus.Message) error {
				v, _ := strconv.Atoi(string(m.Data))
				mu.Lock()
				seen[group] = append(seen[group], v)
				perConsumer[group+name] = append(perConsumer[group+name], v)
				mu.Unlock()
				all <- struct{}{}
				return nil
			}
		}
		consume(t, b, bus.Consumer{Stream: "s", Group: "a", Name: "a1"}, handler("a", "a1"))
		consume(t, b, bus.Consumer{Stream: "s", Group: "a", Name: "a2"}, handler("a", "a2"))
		consume(t, b, bus.Consumer{Stream: "s", Group: "b", Name: "b1"}, handler("b", "b1"))
		publish(t, b, "s", n)
		for range 2 * n {
			select {
			case <-all:
			case <-time.After(wait):
				t.Fatalf("handled %v of %d", len(seen["a"])+len(seen["b"]), 2*n)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, g := range []string{"a", "b"} {
			got := slices.Sorted(slices.Values(seen[g]))
			if len(got) != n || got[0] != 0 || got[n-1] != n-1 || len(slices.Compact(got)) != n {
				t.Errorf("group %s handled %d messages (%d distinct), want each of %d once", g, len(seen[g]), len(slices.Compact(got)), n)
			}
		}
		for name, vs := range perConsumer {
			if !slices.IsSorted(vs) {
				t.Errorf("consumer %s handled out of order: %v", name, vs)
			}
		}
		for _, g := range []string{"a", "b"} {
			st := eventually(t, func() (bus.GroupStats, bool) {
				st, err := b.Stats(ctx, "s", g)
				return st, err == nil && st.Pending == 0 && st.Lag == 0
			})
			if st.Pending != 0 || st.Lag != 0 {
				t.Errorf("group %s stats %+v after handling everything, want zeros", g, st)
			}
		}
	})

	// Ensure a batch is published in order, each message to its stream.
	t.Run("PublishBatch", func(t *testing.T) {
		t.Parallel()
		b := open(t, testConfig())
		var msgs []bus.Outgoing
		for i := range 20 {
			msgs = append(msgs, bus.Outgoing{Stream: []string{"x", "y"}[i%2], Data: []byte(strconv.Itoa(i))})
		}
		if err := b.PublishBatch(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 20)
		consume(t, b, bus.Consumer{Stream: "y", Group: "g", Name: "c"}, func(_ context.Context, m bus.Message) error {
			got <- string(m.Data)
			return nil
		})
		for i := 1; i < 20; i += 2 {
			if v := recv(t, got); v != strconv.Itoa(i) {
				t.Fatalf("got %q, want %d", v, i)
			}
		}
		if n, err := b.Len(ctx, "x"); err != nil || n != 10 {
			t.Fatalf("stream x holds %d, %v", n, err)
		}
	})

	// Ensure a group created after messages were published still gets them (groups start at the beginning).
	t.Run("NewGroupReadsFromStart", func(t *testing.T) {
		t.Parallel()
		b := open(t, testConfig())
		publish(t, b, "s", 5)
		got := make(chan string, 10)
		consume(t, b, bus.Consumer{Stream: "s", Group: "late", Name: "x"}, func(_ context.Context, m bus.Message) error {
			got <- string(m.Data)
			return nil
		})
		for i := range 5 {
			if v := recv(t, got); v != strconv.Itoa(i) {
				t.Fatalf("message %d is %q", i, v)
			}
		}
	})

	// Ensure a message whose handler failed is handed out again, marked redelivered, and not lost.
	t.Run("RedeliverAfterError", func(t *testing.T) {
		t.Parallel()
		b := open(t, testConfig())
		var calls sync.Map
		got := make(chan bus.Message, 10)
		consume(t, b, bus.Consumer{Stream: "s", Group: "g", Name: "c"}, func(_ context.Context, m bus.Message) error {
			n, _ := calls.LoadOrStore(string(m.Data), new(int))
			*n.(*int)++
			if string(m.Data) == "1" && *n.(*int) == 1 {
				return errors.New("first attempt fails")
			}
			got <- m
			return nil
		})
		publish(t, b, "s", 3)
		var redelivered bool
		for range 3 {
			m := recv(t, got)
			if string(m.Data) == "1" {
				redelivered = m.Redelivered
			} else if m.Redelivered {
				t.Errorf("message %s marked redelivered on its first delivery", m.Data)
			}
		}
		if !redelivered {
			t.Errorf("the failed message came back without Redelivered")
		}
	})

	// Ensure a message held by a consumer that died (never acked) is taken over by another member of its
	// group once it has been idle for ClaimIdle.
	t.Run("ReclaimFromDeadConsumer", func(t *testing.T) {
		t.Parallel()
		b := open(t, testConfig())
		taken := make(chan struct{})
		dead := consume(t, b, bus.Consumer{Stream: "s", Group: "g", Name: "dies"}, func(ctx context.Context, m bus.Message) error {
			close(taken)
			<-ctx.Done() // the process "dies" holding the message
			return ctx.Err()
		})
		publish(t, b, "s", 1)
		select {
		case <-taken:
		case <-time.After(wait):
			t.Fatal("the first consumer never got the message")
		}
		dead()
		if st, err := b.Stats(ctx, "s", "g"); err != nil || st.Pending != 1 {
			t.Fatalf("stats %+v, %v; want 1 pending", st, err)
		}
		got := make(chan bus.Message, 1)
		consume(t, b, bus.Consumer{Stream: "s", Group: "g", Name: "survivor"}, func(_ context.Context, m bus.Message) error {
			got <- m
			return nil
		})
		if m := recv(t, got); string(m.Data) != "0" || !m.Redelivered {
			t.Fatalf("survivor got %q redelivered=%v", m.Data, m.Redelivered)
		}
		eventually(t, func() (bus.GroupStats, bool) {
			st, err := b.Stats(ctx, "s", "g")
			return st, err == nil && st.Pending == 0
		})
	})

	// Ensure a consumer restarted under the same name takes back its own pending messages at once.
	t.Run("RestartTakesOwnPending", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig()
		cfg.ClaimIdle = time.Hour // only the own-name path can deliver it again within the test
		b := open(t, cfg)
		taken := make(chan struct{})
		first := consume(t, b, bus.Consumer{Stream: "s", Group: "g", Name: "replica-1"}, func(ctx context.Context, m bus.Message) error {
			close(taken)
			<-ctx.Done()
			return ctx.Err()
		})
		publish(t, b, "s", 1)
		recvClosed(t, taken)
		first()
		got := make(chan bus.Message, 1)
		consume(t, b, bus.Consumer{Stream: "s", Group: "g", Name: "replica-1"}, func(_ context.Context, m bus.Message) error {
			got <- m
			return nil
		})
		if m := recv(t, got); string(m.Data) != "0" {
			t.Fatalf("got %q", m.Data)
		}
	})

	// Ensure streams are trimmed to about MaxLen.
	t.Run("Trim", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig()
		cfg.MaxLen = 100
		b := open(t, cfg)
		publish(t, b, "s", 2000)
		n, err := b.Len(ctx, "s")
		if err != nil {
			t.Fatal(err)
		}
		// Redis trims whole radix-tree nodes (100 entries by default) with MAXLEN ~.
		if n < 100 || n > 300 {
			t.Fatalf("stream holds %d messages after 2000 with MaxLen 100", n)
		}
	})

	// Ensure every subscriber of a topic gets every later broadcast, in order, and nothing from before.
	t.Run("BroadcastFanOut", func(t *testing.T) {
		t.Parallel()
		b := open(t, testConfig())
		if err := b.Broadcast(ctx, "live", []byte("before")); err != nil {
			t.Fatal(err)
		}
		var subs []*bus.Subscription
		for range 3 {
			s, err := b.Subscribe(ctx, "live")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			subs = append(subs, s)
		}
		other, err := b.Subscribe(ctx, "other")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(other.Close)
		for i := range 100 {
			if err := b.Broadcast(ctx, "live", []byte(strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
		for si, s := range subs {
			for i := range 100 {
				select {
				case m := <-s.C:
					if string(m) != strconv.Itoa(i) {
						t.Fatalf("subscriber %d message %d is %q", si, i, m)
					}
				case <-time.After(wait):
					t.Fatalf("subscriber %d got %d of 100", si, i)
				}
			}
		}
		select {
		case m := <-other.C:
			t.Fatalf("a subscriber of another topic got %q", m)
		default:
		}
		subs[0].Close()
		for range subs[0].C { // closed after Close (drains what was buffered)
		}
	})

	// Ensure an invalid consumer and a closed bus are errors, and Ping reports a closed bus.
	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		b := open(t, testConfig())
		if err := b.Consume(ctx, bus.Consumer{Stream: "s"}, nil); err == nil {
			t.Error("Consume accepted a consumer without group and name")
		}
		if err := b.Ping(ctx); err != nil {
			t.Fatalf("ping: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Publish(ctx, "s", []byte("x")); err == nil {
			t.Error("Publish on a closed bus succeeded")
		}
		if err := b.Ping(ctx); err == nil {
			t.Error("Ping on a closed bus succeeded")
		}
	})
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		var zero T
		t.Fatalf("nothing received within %s", wait)
		return zero
	}
}

func recvClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(wait):
		t.Fatalf("not signalled within %s", wait)
	}
}

// eventually polls f (a bus's own bookkeeping, which has no signal to wait on) until it is done.
func eventually[T any](t *testing.T, f func() (T, bool)) T {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		v, ok := f()
		if ok {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reached within %s: last %+v", wait, v)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
