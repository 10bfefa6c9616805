package redisbus_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/bus/bustest"
	"github.com/it0/it0/internal/bus/redisbus"
)

func TestRedis(t *testing.T) {
	bustest.Run(t, func(tb testing.TB, cfg bus.Config) bus.Bus { return bustest.OpenRedis(tb, cfg) })
}

// TestRestart: Redis is killed and restarted under a running consumer. Publishing fails while it is down
// (the outbox keeps the event and publishes it later); the consumer reconnects by itself; every message
// published before and after the restart is handled exactly once (the group and its acks persist in the
// append-only file).
func TestRestart(t *testing.T) {
	t.Parallel()
	srv := bustest.StartRedis(t)
	b, err := redisbus.New(srv.URL(), bus.Config{ClaimIdle: 300 * time.Millisecond, Block: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- b.Consume(ctx, bus.Consumer{Stream: "s", Group: "g", Name: "c"}, func(_ context.Context, m bus.Message) error {
			got <- string(m.Data)
			return nil
		})
	}()
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if _, err := b.Publish(ctx, "s", []byte(strconv.Itoa(i))); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
	}
	seen := map[string]int{}
	collect := func(n int) {
		t.Helper()
		for range n {
			select {
			case v := <-got:
				seen[v]++
			case <-time.After(15 * time.Second):
				t.Fatalf("handled %d distinct messages, missing some", len(seen))
			}
		}
	}
	publish(0, 10)
	collect(10)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) { // every ack in
		if st, err := b.Stats(ctx, "s", "g"); err == nil && st.Pending == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("acks not stored: %+v %v", st, err)
		}
	}
	srv.Kill()
	if _, err := b.Publish(ctx, "s", []byte("while down")); err == nil {
		t.Fatal("publishing to a dead Redis succeeded")
	}
	srv.Start()
	publish(10, 20)
	collect(10)
	for i := range 20 {
		if seen[strconv.Itoa(i)] != 1 {
			t.Errorf("message %d handled %d times", i, seen[strconv.Itoa(i)])
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
