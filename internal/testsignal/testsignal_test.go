package testsignal_test

import (
	"testing"

	"github.com/it0/it0/internal/testsignal"
)

// TestSignal ensures a disabled signal is a no-op, and an enabled one delivers values in order.
func TestSignal(t *testing.T) {
	t.Parallel()
	t.Run("ZeroValueDisabled", func(t *testing.T) {
		t.Parallel()
		var s testsignal.Signal[int]
		for i := range 5000 { // more than the buffer: would panic if enabled
			s.Signal(i)
		}
	})
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		var s testsignal.Signal[string]
		s.Init(t)
		go func() {
			s.Signal("a")
			s.Signal("b")
			s.Signal("c")
		}()
		if got := s.WaitOrTimeout(t); got != "a" {
			t.Errorf("first = %q, want a", got)
		}
		if got := s.WaitUntil(t, func(v string) bool { return v == "c" }); got != "c" {
			t.Errorf("until c = %q", got)
		}
	})
	t.Run("FullPanics", func(t *testing.T) {
		t.Parallel()
		var s testsignal.Signal[int]
		s.Init(t)
		defer func() {
			if recover() == nil {
				t.Error("no panic when the buffer was full")
			}
		}()
		for i := range 1001 {
			s.Signal(i)
		}
	})
}
