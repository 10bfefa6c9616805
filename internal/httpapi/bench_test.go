package httpapi

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/store/storetest"
)

var (
	fanoutEvents = flag.Int("fanout.events", 10000, "events the session streams in BenchmarkEventFanout")
	fanoutSubs   = flag.Int("fanout.subs", 500, "WebSocket subscribers in BenchmarkEventFanout")
	fanoutRate   = flag.Int("fanout.rate", 2000, "events per second the engine emits (0 = as fast as possible)")
)

// floodEngine streams n text events at a steady rate, stamping each with its emit time.
type floodEngine struct {
	n, rate int
	start   chan struct{} // closed when every subscriber is connected
}

func (e *floodEngine) Name() string                 { return agent.EngineClaudeAPI }
func (e *floodEngine) Health(context.Context) error { return nil }
func (e *floodEngine) Run(ctx context.Context, t agent.Task, emit func(agent.Event)) (agent.Outcome, error) {
	<-e.start
	var tick *time.Ticker
	if e.rate > 0 {
		tick = time.NewTicker(time.Second / time.Duration(e.rate))
		defer tick.Stop()
	}
	for i := range e.n {
		if tick != nil {
			<-tick.C
		}
		emit(agent.Event{Type: agent.EventText, Text: fmt.Sprintf("token %d ", i), Time: time.Now()})
	}
	emit(agent.Event{Type: agent.EventCompleted, Summary: "done", Time: time.Now()})
	return agent.Outcome{}, nil
}

// BenchmarkEventFanout streams one session's events to many WebSocket subscribers through the real
// path (engine → store → hub → WebSocket) and reports delivery latency from emit to receipt.
// Target (issue 5): 10,000 events to 500 subscribers, p99 < 20 ms.
func BenchmarkEventFanout(b *testing.B) {
	for b.Loop() {
		fe := &floodEngine{n: *fanoutEvents, rate: *fanoutRate, start: make(chan struct{})}
		tb := setupWith(b, storetest.OpenSQLite, fe)
		_, tok := tb.newTenant("bench")
		sid := tb.do("POST", "/api/v1/agent/tasks", tok, map[string]string{"prompt": "stream"}).body["session_id"].(string)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		url := strings.Replace(tb.http.URL, "http", "ws", 1) + "/ws/agent?session=" + sid + "&token=" + tok
		var ready, done sync.WaitGroup
		lat := make([][]time.Duration, *fanoutSubs)
		var mem0 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&mem0)
		for i := range *fanoutSubs {
			ready.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				c, _, err := websocket.Dial(ctx, url, nil)
				ready.Done()
				if err != nil {
					b.Error(err)
					return
				}
				defer c.CloseNow()
				c.SetReadLimit(1 << 20) // the server batches what queued up, up to 256 KiB a message
				lat[i] = make([]time.Duration, 0, *fanoutEvents)
				for {
					_, msg, err := c.Read(ctx)
					if err != nil {
						b.Errorf("subscriber %d: %v after %d events", i, err, len(lat[i]))
						return
					}
					now := time.Now()
					// The client's own cost competes for the same two cores, so it reads only what it
					// measures: the emit time and whether the run completed.
					for line := range bytes.SplitSeq(msg, []byte("\n")) {
						if bytes.Contains(line, []byte(`"type":"completed"`)) {
							return
						}
						j := bytes.Index(line, []byte(`"time":"`))
						if j < 0 {
							b.Errorf("event without time: %s", line)
							return
						}
						rest := line[j+8:]
						emitted, err := time.Parse(time.RFC3339Nano, string(rest[:bytes.IndexByte(rest, '"')]))
						if err != nil {
							b.Error(err)
							return
						}
						lat[i] = append(lat[i], now.Sub(emitted))
					}
				}
			}()
		}
		ready.Wait()
		for tb.srv.Agent.Hub().Subscribers(sid) < *fanoutSubs {
			runtime.Gosched()
		}
		var mem1 runtime.MemStats
		runtime.ReadMemStats(&mem1)
		start := time.Now()
		close(fe.start)
		done.Wait()
		elapsed := time.Since(start)
		cancel()
		var all []time.Duration
		for _, l := range lat {
			all = append(all, l...)
		}
		if want := *fanoutEvents * *fanoutSubs; len(all) != want {
			b.Fatalf("delivered %d of %d events", len(all), want)
		}
		slices.Sort(all)
		pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
		b.ReportMetric(pct(0.50), "p50_ms")
		b.ReportMetric(pct(0.99), "p99_ms")
		b.ReportMetric(float64(all[len(all)-1].Microseconds())/1000, "max_ms")
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), "deliveries/s")
		b.ReportMetric(float64(mem1.HeapInuse-mem0.HeapInuse)/float64(1<<20)/float64(*fanoutSubs)*1024, "KiB_heap_per_sub")
	}
}
