package voice

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/it0/it0/internal/dueheap"
)

// PacerConfig tunes a Pacer.
type PacerConfig struct {
	// Window batches deadlines: frames due within it of the earliest one go out together (default 1 ms;
	// the far end buffers, so a frame a millisecond early is harmless and saves a wake-up).
	Window time.Duration
	// Late, when set, is told how late each paced frame went out: its send time minus its deadline
	// (metrics, benchmarks). Negative within Window.
	Late func(d time.Duration)
}

// Pacer sends the outbound frames of every stream at their deadlines from one goroutine: the streams'
// players hand it their next frame and wait, instead of each sleeping on its own timer. One goroutine
// waking once per deadline (batched within Window) wakes far less often than a hundred players would,
// and a frame goes out from a goroutine that is already running when it is due.
//
// The goroutine runs only while frames wait: it starts with the first one and ends when none is left,
// so a Pacer needs no Close.
type Pacer struct {
	cfg PacerConfig

	mu      sync.Mutex
	q       dueheap.Heap[*Lane]
	running bool
	wake    chan struct{} // an earlier deadline than the one the loop sleeps for
}

// NewPacer returns a pacer; zero fields of cfg take their defaults.
func NewPacer(cfg PacerConfig) *Pacer {
	if cfg.Window <= 0 {
		cfg.Window = time.Millisecond
	}
	return &Pacer{cfg: cfg, wake: make(chan struct{}, 1)}
}

// Lane is one stream's place in the pacer: one frame at a time. Not safe for concurrent use.
type Lane struct {
	dueheap.Entry // when its frame goes out, and its place in the pacer's heap
	p             *Pacer
	send          func() error
	done          chan error
}

// Lane returns a new lane of p.
func (p *Pacer) Lane() *Lane { return &Lane{p: p, done: make(chan error, 1)} }

// Send calls send at due, from the pacer's goroutine, and returns its error. A frame already due is sent
// at once from the caller's goroutine (a late one still counts as late). When ctx ends first, send is not
// called, unless it was already running (then Send waits for it).
func (l *Lane) Send(ctx context.Context, due time.Time, send func() error) error {
	p := l.p
	if now := time.Now(); !due.After(now.Add(p.cfg.Window)) {
		p.late(now.Sub(due))
		return send()
	}
	l.Due, l.send = due, send
	p.mu.Lock()
	heap.Push(&p.q, l)
	first := l.Index() == 0
	if !p.running {
		p.running = true
		go p.loop()
	} else if first {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	p.mu.Unlock()
	select {
	case err := <-l.done:
		return err
	case <-ctx.Done():
	}
	p.mu.Lock()
	if l.Index() >= 0 {
		heap.Remove(&p.q, l.Index())
		p.mu.Unlock()
		l.send = nil
		return context.Cause(ctx)
	}
	p.mu.Unlock()
	return <-l.done // the pacer took it: it is being sent
}

func (p *Pacer) late(d time.Duration) {
	if p.cfg.Late != nil {
		p.cfg.Late(d)
	}
}

// loop sends due frames until none waits.
func (p *Pacer) loop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var batch []*Lane
	for {
		p.mu.Lock()
		now := time.Now()
		batch = batch[:0]
		for len(p.q) > 0 && !p.q[0].Due.After(now.Add(p.cfg.Window)) {
			batch = append(batch, heap.Pop(&p.q).(*Lane))
		}
		if len(batch) == 0 && len(p.q) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		var wait time.Duration
		if len(batch) == 0 {
			wait = p.q[0].Due.Sub(now)
		}
		p.mu.Unlock()
		for _, l := range batch {
			p.late(time.Since(l.Due))
			send := l.send
			l.send = nil
			l.done <- send()
		}
		if len(batch) > 0 {
			continue // sending took time: look again before sleeping
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-p.wake:
			timer.Stop() // Go 1.23 timers: nothing stale is left in C after Stop
		}
	}
}

// errCut is a paced frame dropped at its deadline because a barge-in cut its clip meanwhile.
var errCut = errors.New("voice: frame cut by a barge-in")
