package redisbus_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/bus/bustest"
)

// wsSubscribers is how many WebSocket clients follow the session, spread over the replicas.
const wsSubscribers = 500

// BenchmarkLiveEventsAcrossReplicas measures what a WebSocket client of a session waits for a live event
// published on another replica: 3 replicas (agent hubs linked through Redis, each serving its share of
// 500 WebSocket clients the way /ws/agent does: subscribe, write each event), 100 events per second
// published on replica A. It reports the p99 of the time until every client has an event, the floor (a
// bare loop writing the same bytes to the same 500 clients from one process, no hub and no Redis), the
// latency IT0 adds (p99 − floor p99) and their ratio.
func BenchmarkLiveEventsAcrossReplicas(b *testing.B) {
	rb := bustest.OpenRedis(b, bus.Config{})
	var hubs []*agent.Hub
	var servers []*httptest.Server
	for i := range 3 {
		h := agent.NewHub(0)
		if err := h.Connect(context.Background(), bus.Topics{Bus: rb}, "replica-"+string(rune('a'+i))); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(h.Disconnect)
		hubs = append(hubs, h)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
			if err != nil {
				return
			}
			defer c.CloseNow()
			sub := h.Subscribe(r.URL.Query().Get("session"))
			defer h.Unsubscribe(sub)
			for m := range sub.C {
				if err := c.Write(r.Context(), websocket.MessageText, m.JSON); err != nil {
					return
				}
			}
		}))
		b.Cleanup(srv.Close)
		servers = append(servers, srv)
	}
	clients := dialClients(b, func(i int) string { return servers[i%3].URL + "?session=bench" })
	// Every hub has its clients subscribed before the first event.
	waitSubscribed(b, hubs)
	p99 := measureWS(b, clients, func(seq int64) {
		hubs[0].Publish(agent.Event{SessionID: "bench", Seq: seq, Type: agent.EventText, Text: "benchmark event"})
	})

	// The floor: one process writes each event to the same number of clients, nothing in between.
	floor := bustest.NewBroadcaster(b, wsSubscribers)
	floorClients := dialClients(b, func(int) string { return floor.URL })
	floor.WaitJoined(wsSubscribers)
	floorP99 := measureWS(b, floorClients, func(seq int64) {
		data, _ := json.Marshal(agent.Event{SessionID: "bench", Seq: seq, Type: agent.EventText, Text: "benchmark event"})
		floor.Send(data)
	})
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(floorP99.Microseconds()), "floor-p99-µs")
	b.ReportMetric(float64((p99 - floorP99).Microseconds()), "added-p99-µs")
	b.ReportMetric(float64(p99)/float64(max(floorP99, 1)), "ratio")
}

// wsClient is one WebSocket follower: it reads events and passes on each one's seq.
type wsClient struct{ seqs chan int64 }

func dialClients(b *testing.B, url func(i int) string) []*wsClient {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	clients := make([]*wsClient, wsSubscribers)
	for i := range clients {
		c, _, err := websocket.Dial(ctx, strings.Replace(url(i), "http", "ws", 1), nil)
		if err != nil {
			b.Fatal(err)
		}
		c.SetReadLimit(1 << 20)
		b.Cleanup(func() { c.CloseNow() })
		cl := &wsClient{seqs: make(chan int64, 1024)}
		clients[i] = cl
		go func() {
			for {
				_, data, err := c.Read(ctx)
				if err != nil {
					return
				}
				var e struct {
					Seq int64 `json:"seq"`
				}
				json.Unmarshal(data, &e)
				cl.seqs <- e.Seq
			}
		}()
	}
	return clients
}

// waitSubscribed waits until the hubs together hold a subscriber for every client.
func waitSubscribed(b *testing.B, hubs []*agent.Hub) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := 0
		for _, h := range hubs {
			n += h.Subscribers("bench")
		}
		if n >= wsSubscribers {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d clients subscribed", n, wsSubscribers)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// measureWS publishes b.N events at 100 per second and returns the p99 of the time until every client
// has read each one.
func measureWS(b *testing.B, clients []*wsClient, publish func(seq int64)) time.Duration {
	b.Helper()
	var lat []time.Duration
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		<-tick.C
		start := time.Now()
		publish(int64(i))
		for ci, c := range clients {
			select {
			case seq := <-c.seqs:
				if seq != int64(i) {
					b.Fatalf("client %d: got seq %d, want %d", ci, seq, i)
				}
			case <-time.After(10 * time.Second):
				b.Fatalf("client %d never got event %d", ci, i)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	return lat[min(len(lat)-1, len(lat)*99/100)]
}
