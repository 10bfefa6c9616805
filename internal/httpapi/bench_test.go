package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/bus/bustest"
	"github.com/it0/it0/internal/store/storetest"
)

var (
	fanoutEvents  = flag.Int("fanout.events", 10000, "events the session streams in BenchmarkEventFanout")
	fanoutSubs    = flag.Int("fanout.subs", 500, "WebSocket subscribers in BenchmarkEventFanout")
	fanoutRate    = flag.Int("fanout.rate", 100, "events per second the engine emits, like a model streaming tokens (0 = as fast as possible)")
	fanoutClients = flag.String("fanout.clients", "process", "where BenchmarkEventFanout's subscribers run: process (a child process) or inprocess")
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
// path (engine → store → hub → WebSocket) and reports delivery latency from emit to receipt, and the
// server's heap per subscriber. The subscribers run in a child process (-fanout.clients=process, as real
// clients are elsewhere) or in this one (inprocess); either way they share this machine's two cores.
// Target (issue 5): 10,000 events to 500 subscribers, p99 < 20 ms. Absolute times move with the machine,
// so it also measures a floor in the same run: a bare WebSocket server writing the same events at the same
// rate to the same subscribers in a loop, nothing in between; ratio_p99 = p99 / floor p99.
func BenchmarkEventFanout(b *testing.B) {
	for b.Loop() {
		fe := &floodEngine{n: *fanoutEvents, rate: *fanoutRate, start: make(chan struct{})}
		tb := setupApp(b, storetest.OpenSQLite, fe)
		_, tok := tb.newTenant("bench")
		sid := tb.do("POST", "/api/v1/agent/tasks", tok, map[string]string{"prompt": "stream"}).body["session_id"].(string)
		url := strings.Replace(tb.http.URL, "http", "ws", 1) + "/ws/agent?session=" + sid + "&token=" + tok
		var mem0, mem1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&mem0)
		wait := startSubscribers(b, url)
		deadline := time.Now().Add(2 * time.Minute)
		for tb.srv.Agent.Hub().Subscribers(sid) < *fanoutSubs {
			if time.Now().After(deadline) {
				b.Fatalf("only %d of %d subscribers connected", tb.srv.Agent.Hub().Subscribers(sid), *fanoutSubs)
			}
			time.Sleep(5 * time.Millisecond)
		}
		runtime.ReadMemStats(&mem1)
		start := time.Now()
		close(fe.start)
		all := wait()
		elapsed := time.Since(start)
		floor := fanoutFloor(b)
		pct := func(l []time.Duration, p float64) float64 {
			return float64(l[int(p*float64(len(l)-1))].Microseconds()) / 1000
		}
		b.ReportMetric(pct(all, 0.50), "p50_ms")
		b.ReportMetric(pct(all, 0.99), "p99_ms")
		b.ReportMetric(float64(all[len(all)-1].Microseconds())/1000, "max_ms")
		b.ReportMetric(pct(floor, 0.99), "floor_p99_ms")
		b.ReportMetric(pct(all, 0.99)/pct(floor, 0.99), "ratio_p99")
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), "deliveries/s")
		b.ReportMetric(float64(mem1.HeapInuse-mem0.HeapInuse)/float64(1<<20)/float64(*fanoutSubs)*1024, "KiB_heap_per_sub")
	}
}

// startSubscribers connects -fanout.subs subscribers to url, in a child process or in this one
// (-fanout.clients), and returns a func that waits until each has seen the run complete and returns every
// delivery latency, sorted.
func startSubscribers(b *testing.B, url string) func() []time.Duration {
	var (
		all  []time.Duration
		wait func() error
	)
	if *fanoutClients == "process" {
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
		cmd.Env = append(os.Environ(), "IT0_FANOUT_CLIENT="+url, fmt.Sprintf("IT0_FANOUT_SUBS=%d", *fanoutSubs))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		wait = func() error {
			if err := cmd.Wait(); err != nil {
				return fmt.Errorf("client process: %v", err)
			}
			for v := range strings.FieldsSeq(out.String()) {
				us, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return fmt.Errorf("client process output: %v", err)
				}
				all = append(all, time.Duration(us)*time.Microsecond)
			}
			return nil
		}
	} else {
		errc := make(chan error, 1)
		go func() {
			lat, err := fanoutSubscribers(url, *fanoutSubs)
			all = lat
			errc <- err
		}()
		wait = func() error { return <-errc }
	}
	return func() []time.Duration {
		if err := wait(); err != nil {
			b.Fatal(err)
		}
		if want := *fanoutEvents * *fanoutSubs; len(all) != want {
			b.Fatalf("delivered %d of %d events", len(all), want)
		}
		slices.Sort(all)
		return all
	}
}

// fanoutFloor measures the bare broadcast: a WebSocket server that, once every subscriber is connected,
// writes each event (the fields the subscribers read) to each of them in turn, at the benchmark's rate.
func fanoutFloor(b *testing.B) []time.Duration {
	floor := bustest.NewBroadcaster(b, *fanoutSubs)
	wait := startSubscribers(b, floor.URL)
	floor.WaitJoined(*fanoutSubs)
	var tick *time.Ticker
	if *fanoutRate > 0 {
		tick = time.NewTicker(time.Second / time.Duration(*fanoutRate))
		defer tick.Stop()
	}
	for i := range *fanoutEvents {
		if tick != nil {
			<-tick.C
		}
		floor.Send(fmt.Appendf(nil, `{"type":"text","text":"token %d ","time":%q}`, i, time.Now().Format(time.RFC3339Nano)))
	}
	floor.Send([]byte(`{"type":"completed","summary":"done"}`))
	return wait()
}

// fanoutSubscribers connects n subscribers to url and returns every event's delivery latency once each has
// seen the run complete.
func fanoutSubscribers(url string, n int) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	lat := make([][]time.Duration, n)
	errs := make(chan error, n)
	var done sync.WaitGroup
	for i := range n {
		done.Go(func() {
			c, _, err := websocket.Dial(ctx, url, nil)
			if err != nil {
				errs <- err
				return
			}
			defer c.CloseNow()
			c.SetReadLimit(1 << 20) // the server batches what queued up, up to 256 KiB a message
			for {
				_, msg, err := c.Read(ctx)
				if err != nil {
					errs <- fmt.Errorf("subscriber %d: %v after %d events", i, err, len(lat[i]))
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
						errs <- fmt.Errorf("event without time: %s", line)
						return
					}
					rest := line[j+8:]
					emitted, err := time.Parse(time.RFC3339Nano, string(rest[:bytes.IndexByte(rest, '"')]))
					if err != nil {
						errs <- err
						return
					}
					lat[i] = append(lat[i], now.Sub(emitted))
				}
			}
		})
	}
	done.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return all, nil
}

// TestMain runs the fan-out benchmark's subscriber process when IT0_FANOUT_CLIENT names a session's
// WebSocket: it prints each delivery latency in microseconds.
func TestMain(m *testing.M) {
	if url := os.Getenv("IT0_FANOUT_CLIENT"); url != "" {
		n, _ := strconv.Atoi(os.Getenv("IT0_FANOUT_SUBS"))
		lat, err := fanoutSubscribers(url, n)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		w := bufio.NewWriter(os.Stdout)
		for _, d := range lat {
			fmt.Fprintln(w, d.Microseconds())
		}
		w.Flush()
		os.Exit(0)
	}
	os.Exit(m.Run())
}
