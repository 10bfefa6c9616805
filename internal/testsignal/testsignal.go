// Package testsignal lets a component tell its tests that it did a step, so a test waits on a channel
// instead of polling the component's state on wall time (River's rivershared/testsignal).
//
// A component keeps a struct of Signal fields (its TestSignals) and calls Signal at the points a test
// may wait for. In production nothing calls Init, the channels stay nil, and Signal is a no-op.
package testsignal

import (
	"fmt"
	"testing"
	"time"
)

// buffer is how many signals may wait unread. A test that lets more pile up than this is not reading the
// signals it enabled; Signal then panics rather than block the component.
const buffer = 1000

// Timeout bounds WaitOrTimeout: long enough for a loaded CI machine, short enough to fail a hung test.
const Timeout = 20 * time.Second

// Signal is one kind of step a component reports, with a value of type T. The zero value is disabled.
type Signal[T any] struct {
	ch chan T
}

// Init enables the signal. Call it before the component starts.
func (s *Signal[T]) Init(tb testing.TB) {
	tb.Helper()
	s.ch = make(chan T, buffer)
}

// Signal reports a step with value v. It never blocks; without Init it does nothing.
func (s *Signal[T]) Signal(v T) {
	if s.ch == nil {
		return
	}
	select {
	case s.ch <- v:
	default:
		panic(fmt.Sprintf("testsignal: %d signals of %T unread", buffer, v))
	}
}

// WaitOrTimeout returns the next signalled value, failing the test after Timeout.
func (s *Signal[T]) WaitOrTimeout(tb testing.TB) T {
	tb.Helper()
	if s.ch == nil {
		tb.Fatal("testsignal: WaitOrTimeout on a signal that was never initialised")
	}
	select {
	case v := <-s.ch:
		return v
	case <-time.After(Timeout):
		tb.Fatalf("testsignal: no %T signal within %s", *new(T), Timeout)
		panic("unreachable")
	}
}

// WaitUntil waits for signals until one satisfies ok and returns it, failing the test after Timeout.
func (s *Signal[T]) WaitUntil(tb testing.TB, ok func(T) bool) T {
	tb.Helper()
	deadline := time.After(Timeout)
	for {
		if s.ch == nil {
			tb.Fatal("testsignal: WaitUntil on a signal that was never initialised")
		}
		select {
		case v := <-s.ch:
			if ok(v) {
				return v
			}
		case <-deadline:
			tb.Fatalf("testsignal: no matching %T signal within %s", *new(T), Timeout)
			panic("unreachable")
		}
	}
}
