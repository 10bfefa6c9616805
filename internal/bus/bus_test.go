package bus_test

import (
	"testing"

	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/bus/bustest"
)

func TestMemory(t *testing.T) {
	bustest.Run(t, func(tb testing.TB, cfg bus.Config) bus.Bus {
		b := bus.NewMemory(cfg)
		tb.Cleanup(func() { b.Close() })
		return b
	})
}
