package voice

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/it0/it0/internal/voice/silero/silerotest"
)

// Benchmarks of the gateway itself; the speech engines and the agent answer instantly, so what is
// measured is the pipeline's own cost. Run with -benchtime 1x for the stream benchmark.

func p99(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)*99/100]
}

// instant answers every turn with one short sentence.
type instant struct{}

func (instant) Greeting(context.Context) (string, bool, error) { return "", false, nil }
func (instant) Turn(_ context.Context, u Utterance, say func(string)) (bool, error) {
	say("ok.")
	return false, nil
}

type signalJournal struct{ said chan struct{} }

func (j signalJournal) User(context.Context, string, Timings) {}
func (j signalJournal) Agent(context.Context, string, bool, Timings) {
	j.said <- struct{}{}
}
func (j signalJournal) Failure(context.Context, string, error) {}

type shortTTS struct{}

func (shortTTS) Synthesize(context.Context, string, string) ([]int16, error) {
	return tone(SampleRate/10, SampleRate, 300, 3000), nil
}

// BenchmarkGatewayTurn: from the end of the person's speech to the first reply frame sent, minus STT,
// agent and TTS time (all instant here): the gateway's overhead per turn.
func BenchmarkGatewayTurn(b *testing.B) {
	var mu sync.Mutex
	var gw []time.Duration
	j := signalJournal{said: make(chan struct{}, 1)}
	c := NewConversation(ConversationConfig{STT: lenSTT{text: func([]int16) (string, error) { return "hi", nil }}, TTS: shortTTS{}, Brain: instant{},
		Journal: j, Out: newRecorder(), Frame: time.Millisecond,
		Metrics: Metrics{Stage: func(st string, d time.Duration) {
			if st == "gateway" {
				mu.Lock()
				gw = append(gw, d)
				mu.Unlock()
			}
		}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	sp, quiet := speech(300), silence(520)
	b.ResetTimer()
	for range b.N {
		c.Feed(sp)
		c.Feed(quiet)
		<-j.said
	}
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(p99(gw).Microseconds())/1000, "p99-overhead-ms")
}

// BenchmarkBargeIn: from the first speech frame reaching the gateway while the agent speaks to the clear
// sent. The segmenter needs 2 frames of speech, so on a live stream add one frame (20 ms) of audio time.
func BenchmarkBargeIn(b *testing.B) {
	var lat []time.Duration
	sp := speech(FrameMs * 3)
	frame := SampleRate * FrameMs / 1000
	for range b.N {
		cleared := make(chan time.Time, 1)
		out := newRecorder()
		c := NewConversation(ConversationConfig{STT: lenSTT{text: func([]int16) (string, error) { return "", nil }}, TTS: &toneTTS{},
			Brain: &scriptBrain{greeting: "a long greeting that keeps talking for quite a while yet"}, Journal: &testJournal{}, Out: out,
			OnBargeIn: func() { cleared <- time.Now() }})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		<-out.audio
		start := time.Now()
		for i := 0; i < len(sp); i += frame {
			c.Feed(sp[i : i+frame])
		}
		lat = append(lat, (<-cleared).Sub(start))
		cancel()
		<-done
	}
	b.ReportMetric(float64(p99(lat).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(p99(lat).Microseconds())/1000+FrameMs, "p99-live-ms")
}

// timedConn records when each outbound message was written.
type timedConn struct {
	mu sync.Mutex
	at []time.Time
}

func (c *timedConn) Read(ctx context.Context) (bool, []byte, error) {
	<-ctx.Done()
	return false, nil, ctx.Err()
}
func (c *timedConn) Write(_ context.Context, text bool, b []byte) error {
	if len(b) > 100 { // media, not marks
		c.mu.Lock()
		c.at = append(c.at, time.Now())
		c.mu.Unlock()
	}
	return nil
}
func (c *timedConn) Close(int, string) error { return nil }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// durations is a slice of durations many goroutines append to.
type durations struct {
	mu sync.Mutex
	d  []time.Duration
}

func (d *durations) add(v time.Duration) {
	d.mu.Lock()
	d.d = append(d.d, v)
	d.mu.Unlock()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkTwilioStreams100: 100 Twilio streams at once, each receiving 20 ms μ-law frames (decode,
// 8→16 kHz, VAD, segmenter) while speaking a 3 s clip (16→8 kHz, μ-law, JSON, paced). Reported: CPU used,
// how late the paced frames left (send time minus deadline, p50/p99), the deviation of each frame
// interval from 20 ms (p99), and the floor: how late a bare 20 ms timer loop running alongside wakes
// (p99) — what this machine's scheduler allows under the same load.
//
// Variants: the energy VAD or Silero; one pacer shared by all streams (the service's) or one per stream
// (each player sleeping on its own timer, as before the shared pacer).
func BenchmarkTwilioStreams100(b *testing.B) {
	silero := func(b *testing.B) func() VAD {
		rt := silerotest.Open(b)
		return func() VAD { return silerotest.NewVAD(b, rt) }
	}
	energy := func(*testing.B) func() VAD { return func() VAD { return NewEnergyVAD() } }
	for _, bc := range []struct {
		name   string
		vad    func(*testing.B) func() VAD
		shared bool
	}{{"Energy/SharedPacer", energy, true}, {"Energy/OwnPacers", energy, false}, {"Silero/SharedPacer", silero, true}} {
		b.Run(bc.name, func(b *testing.B) {
			newVAD := bc.vad(b)
			for range b.N {
				streams(b, 100, newVAD, bc.shared)
			}
		})
	}
}

func streams(b *testing.B, n int, newVAD func() VAD, shared bool) {
	const frames = 3 * 1000 / FrameMs // in the 3 s clip
	var late, floor durations
	pacer := NewPacer(PacerConfig{Late: late.add})
	conns := make([]*timedConn, n)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	cpu0, wall0 := cpuTime(), time.Now()
	wg.Go(func() { // the floor: a bare timer loop on absolute 20 ms deadlines
		next := time.Now()
		t := time.NewTimer(0)
		defer t.Stop()
		for {
			next = next.Add(FrameMs * time.Millisecond)
			t.Reset(time.Until(next))
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				floor.add(time.Since(next))
			}
		}
	})
	for i := range conns {
		conns[i] = &timedConn{}
		out := newTwilioOut(ctx, conns[i], "MZ")
		j := signalJournal{said: make(chan struct{}, 1)}
		p := pacer
		if !shared {
			p = NewPacer(PacerConfig{Late: late.add})
		}
		c := NewConversation(ConversationConfig{STT: lenSTT{text: func([]int16) (string, error) { return "", nil }}, VAD: newVAD(),
			TTS: clipTTS{n: frames * SampleRate * FrameMs / 1000}, Brain: &scriptBrain{greeting: "hello"}, Journal: j, Out: out, Pacer: p})
		wg.Go(func() { c.Run(ctx) })
		wg.Go(func() { // the caller's side: line noise every 20 ms until the greeting has played
			r := rand.New(rand.NewPCG(uint64(i), 1))
			ulaw := MulawEncode(nil, Resample(noise(PhoneSampleRate*FrameMs/1000, 200, r), SampleRate, SampleRate))
			up := NewResampler(PhoneSampleRate, SampleRate)
			var p8, p16 []int16
			t := time.NewTicker(FrameMs * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-j.said:
					return
				case <-ctx.Done():
					return
				case <-t.C:
					p8 = MulawDecode(p8[:0], ulaw)
					p16 = up.Process(p16[:0], p8)
					c.Feed(p16)
				}
			}
		})
	}
	// Wait until every stream has sent its clip.
	for _, c := range conns {
		for {
			c.mu.Lock()
			n := len(c.at)
			c.mu.Unlock()
			if n >= frames {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	cancel()
	wg.Wait()
	var jitter []time.Duration
	for _, c := range conns {
		for k := 4; k < len(c.at); k++ { // after the lead frames sent at once
			d := c.at[k].Sub(c.at[k-1]) - FrameMs*time.Millisecond
			jitter = append(jitter, d.Abs())
		}
	}
	slices.Sort(late.d)
	b.ReportMetric(ms(late.d[len(late.d)/2]), "p50-late-ms")
	b.ReportMetric(ms(p99(late.d)), "p99-late-ms")
	b.ReportMetric(ms(p99(jitter)), "p99-interval-jitter-ms")
	b.ReportMetric(ms(p99(floor.d)), "p99-floor-late-ms")
	b.ReportMetric(cpu.Seconds()/wall.Seconds()*100, "cpu-%-of-a-core")
}

type clipTTS struct{ n int }

func (t clipTTS) Synthesize(context.Context, string, string) ([]int16, error) {
	return tone(t.n, SampleRate, 300, 3000), nil
}

// BenchmarkEnergyVAD: one 20 ms frame; the share of a core per stream is ns/op over 20 ms.
func BenchmarkEnergyVAD(b *testing.B) {
	v := NewEnergyVAD()
	f := speech(FrameMs)
	b.ResetTimer()
	for range b.N {
		v.Speech(f)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(FrameMs*1e6)*100, "%core/stream")
}
