package silero_test

import (
	"math/rand/v2"
	"testing"

	"github.com/it0/it0/internal/voice/silero"
	"github.com/it0/it0/internal/voice/silero/silerotest"
)

// BenchmarkSileroVAD: one 32 ms window; the share of a core one stream costs is ns/op over 32 ms.
func BenchmarkSileroVAD(b *testing.B) {
	rt := silerotest.Open(b)
	v := silerotest.NewVAD(b, rt)
	w := hiss(silero.Window, -30, rand.New(rand.NewPCG(1, 1)))
	b.ResetTimer()
	for range b.N {
		v.Speech(w)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/32e6*100, "%core/stream")
}
