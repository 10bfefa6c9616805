package voice

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestPacer(t *testing.T) {
	t.Parallel()
	t.Run("OrderAndDeadlines", func(t *testing.T) {
		t.Parallel()
		// Ensure frames of many lanes go out in deadline order, none before its deadline (less the window).
		p := NewPacer(PacerConfig{})
		base := time.Now().Add(20 * time.Millisecond)
		var mu sync.Mutex
		var order []int
		var wg sync.WaitGroup
		for i := range 20 {
			l := p.Lane()
			due := base.Add(time.Duration(19-i) * 2 * time.Millisecond) // registered latest first
			wg.Go(func() {
				err := l.Send(context.Background(), due, func() error {
					if early := time.Until(due); early > p.cfg.Window {
						t.Errorf("lane %d sent %v before its deadline", i, early)
					}
					mu.Lock()
					order = append(order, i)
					mu.Unlock()
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for k := 1; k < len(order); k++ {
			if order[k] > order[k-1] {
				t.Fatalf("sent out of deadline order: %v", order)
			}
		}
	})
	t.Run("SendError", func(t *testing.T) {
		t.Parallel()
		// Ensure the send's error reaches the caller, paced or at once.
		p, boom := NewPacer(PacerConfig{}), errors.New("gone")
		l := p.Lane()
		if err := l.Send(context.Background(), time.Now().Add(5*time.Millisecond), func() error { return boom }); err != boom {
			t.Fatalf("paced: %v", err)
		}
		if err := l.Send(context.Background(), time.Now().Add(-time.Second), func() error { return boom }); err != boom {
			t.Fatalf("due: %v", err)
		}
	})
	t.Run("Late", func(t *testing.T) {
		t.Parallel()
		// Ensure a frame already due goes out at once, counted as late by how much it missed its deadline.
		var late []time.Duration
		p := NewPacer(PacerConfig{Late: func(d time.Duration) { late = append(late, d) }})
		sent := false
		if err := p.Lane().Send(context.Background(), time.Now().Add(-time.Second), func() error { sent = true; return nil }); err != nil || !sent {
			t.Fatalf("Send = %v, sent %v", err, sent)
		}
		if len(late) != 1 || late[0] < time.Second {
			t.Fatalf("late = %v", late)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		t.Parallel()
		// Ensure a frame whose stream ends before its deadline is never sent, and the lane is reusable.
		p := NewPacer(PacerConfig{})
		l := p.Lane()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := l.Send(ctx, time.Now().Add(time.Hour), func() error { t.Error("sent after cancel"); return nil }); !errors.Is(err, context.Canceled) {
			t.Fatalf("Send = %v", err)
		}
		p.mu.Lock()
		n := len(p.q)
		p.mu.Unlock()
		if n != 0 {
			t.Fatalf("%d lanes still queued", n)
		}
		if err := l.Send(context.Background(), time.Now().Add(2*time.Millisecond), func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	})
}

// stuckConn is a far end that stopped reading: every write blocks until its context ends.
type stuckConn struct{}

func (stuckConn) Read(ctx context.Context) (bool, []byte, error) {
	<-ctx.Done()
	return false, nil, ctx.Err()
}
func (stuckConn) Write(ctx context.Context, _ bool, _ []byte) error { <-ctx.Done(); return ctx.Err() }
func (stuckConn) Close(int, string) error                           { return nil }

func TestAudioWriteBounded(t *testing.T) {
	t.Parallel()
	// Ensure an audio write to a far end that stopped reading fails instead of holding the shared pacer.
	frame := make([]int16, SampleRate*FrameMs/1000)
	for _, out := range []Output{newTwilioOut(context.Background(), stuckConn{}, "MZ"), &appOut{ctx: context.Background(), conn: stuckConn{}}} {
		if err := out.Audio(frame); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%T.Audio = %v, want a deadline error", out, err)
		}
	}
}
