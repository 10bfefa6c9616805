package agent_test

import (
	"context"
	"encoding/json"
	"sort"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/bus/bustest"
)

// connectedHubs returns n hubs, as on n replicas, linked through a Redis bus of the test's own prefix.
func connectedHubs(tb testing.TB, n int) []*agent.Hub {
	tb.Helper()
	b := bustest.OpenRedis(tb, bus.Config{})
	var hubs []*agent.Hub
	for i := range n {
		h := agent.NewHub(0)
		if err := h.Connect(context.Background(), bus.Topics{Bus: b}, "replica-"+string(rune('a'+i))); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(h.Disconnect)
		hubs = append(hubs, h)
	}
	return hubs
}

// TestHubAcrossReplicas: subscribers on every replica get the events of a session published on one of
// them, in order, each once; a session's subscribers get nothing of another session.
func TestHubAcrossReplicas(t *testing.T) {
	t.Parallel()
	hubs := connectedHubs(t, 3)
	var subs []*agent.Subscription
	for _, h := range hubs {
		s := h.Subscribe("s1")
		t.Cleanup(func() { h.Unsubscribe(s) })
		subs = append(subs, s)
	}
	other := hubs[1].Subscribe("s2")
	defer hubs[1].Unsubscribe(other)
	const n = 200
	for i := 1; i <= n; i++ {
		hubs[0].Publish(agent.Event{SessionID: "s1", Seq: int64(i), Type: agent.EventText, Text: "x"})
	}
	for si, s := range subs {
		for i := 1; i <= n; i++ {
			select {
			case m := <-s.C:
				if m.Seq != int64(i) {
					t.Fatalf("replica %d: event %d has seq %d", si, i, m.Seq)
				}
				var e agent.Event
				if err := json.Unmarshal(m.JSON, &e); err != nil || e.SessionID != "s1" {
					t.Fatalf("replica %d: %s (%v)", si, m.JSON, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("replica %d got %d of %d events", si, i-1, n)
			}
		}
		select {
		case m := <-s.C:
			t.Fatalf("replica %d: an extra event %d", si, m.Seq)
		case <-time.After(50 * time.Millisecond):
		}
	}
	select {
	case m := <-other.C:
		t.Fatalf("a subscriber of another session got %s", m.JSON)
	default:
	}
}

// BenchmarkHubAcrossReplicas measures live event latency from Publish on one replica to subscribers on
// three replicas (one of them local), through Redis, with 500 subscribers of the session spread over
// them: p99 in µs, and the ratio to the floor measured in the same run, a bare Redis pub/sub broadcast to
// one listener per replica that hands the payload to the same 500 subscriber channels.
func BenchmarkHubAcrossReplicas(b *testing.B) {
	const subscribers = 500
	hubs := connectedHubs(b, 3)
	var subs []*agent.Subscription
	for i := range subscribers {
		h := hubs[i%3]
		s := h.Subscribe("bench")
		b.Cleanup(func() { h.Unsubscribe(s) })
		subs = append(subs, s)
	}
	hubP99 := measure(b, subs, func(seq int64) {
		hubs[0].Publish(agent.Event{SessionID: "bench", Seq: seq, Type: agent.EventText, Text: "benchmark event"})
	})

	// The floor: the same bus, with no hub.
	rb := bustest.OpenRedis(b, bus.Config{})
	chans := make([]chan agent.Message, subscribers)
	for i := range chans {
		chans[i] = make(chan agent.Message, 1024)
	}
	for r := range 3 {
		sub, err := rb.Subscribe(context.Background(), "floor")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(sub.Close)
		go func() {
			for data := range sub.C {
				m := agent.Message{Seq: int64(len(data)), JSON: data}
				for i := r; i < subscribers; i += 3 {
					chans[i] <- m
				}
			}
		}()
	}
	floorSubs := make([]*agent.Subscription, subscribers)
	for i := range floorSubs {
		floorSubs[i] = &agent.Subscription{C: chans[i]}
	}
	event, _ := json.Marshal(agent.Event{SessionID: "bench", Type: agent.EventText, Text: "benchmark event"})
	floorP99 := measure(b, floorSubs, func(seq int64) { rb.Broadcast(context.Background(), "floor", event) })
	b.ReportMetric(float64(hubP99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(floorP99.Microseconds()), "floor-p99-µs")
	b.ReportMetric(float64(hubP99)/float64(max(floorP99, 1)), "ratio")
}

// measure publishes b.N events at 100 per second and returns the p99 of the time until every subscriber
// has each.
func measure(b *testing.B, subs []*agent.Subscription, publish func(seq int64)) time.Duration {
	var lat []time.Duration
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		<-tick.C
		start := time.Now()
		publish(int64(i))
		for _, s := range subs {
			select {
			case <-s.C:
			case <-time.After(10 * time.Second):
				b.Fatalf("event %d never arrived", i)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat[len(lat)*99/100]
}
