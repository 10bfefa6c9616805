package voice

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/voice/silero/silerotest"
)

// toneTTS "synthesises" each sentence as 50 ms of tone per word: long enough to be talked over.
type toneTTS struct {
	fail  bool
	calls chan string
}

func (t *toneTTS) Synthesize(ctx context.Context, text, lang string) ([]int16, error) {
	if t.calls != nil {
		t.calls <- text
	}
	if t.fail {
		return nil, &SpeechError{Engine: "test tts", Err: errors.New("down")}
	}
	return tone(len(strings.Fields(text))*800, SampleRate, 300, 3000), nil
}

// lenSTT "recognises" an utterance by its length: the test decides what each length means.
type lenSTT struct {
	text func(audio []int16) (string, error)
}

func (s lenSTT) Transcribe(ctx context.Context, audio []int16, lang string) (string, error) {
	return s.text(audio)
}

// scriptBrain greets, then answers each utterance from a script; "bye" ends the conversation.
type scriptBrain struct {
	greeting string
	mu       sync.Mutex
	heard    []Utterance
}

func (b *scriptBrain) Greeting(context.Context) (string, bool, error) { return b.greeting, false, nil }

func (b *scriptBrain) Turn(ctx context.Context, u Utterance, say func(string)) (bool, error) {
	b.mu.Lock()
	b.heard = append(b.heard, u)
	b.mu.Unlock()
	if u.Text == "bye" || u.Silence {
		say("goodbye")
		return true, nil
	}
	say("you said " + u.Text)
	return false, nil
}

type testJournal struct {
	said   chan struct{} // signalled on each agent line, when made
	mu     sync.Mutex
	user   []string
	agent  []string
	cut    []bool
	errors []string
}

func (j *testJournal) User(_ context.Context, text string, _ Timings) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.user = append(j.user, text)
}

func (j *testJournal) Agent(_ context.Context, text string, interrupted bool, _ Timings) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.agent, j.cut = append(j.agent, text), append(j.cut, interrupted)
	if j.said != nil {
		j.said <- struct{}{}
	}
}

func (j *testJournal) Failure(_ context.Context, stage string, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.errors = append(j.errors, stage+": "+err.Error())
}

// recorder is an Output that logs what it was asked to send.
type recorder struct {
	mu      sync.Mutex
	frames  int
	log     []string
	cleared chan struct{}
	audio   chan struct{}
}

func newRecorder() *recorder {
	return &recorder{cleared: make(chan struct{}, 8), audio: make(chan struct{}, 1)}
}

func (r *recorder) Audio(frame []int16) error {
	r.mu.Lock()
	r.frames++
	r.log = append(r.log, "audio")
	r.mu.Unlock()
	select {
	case r.audio <- struct{}{}:
	default:
	}
	return nil
}

func (r *recorder) Clear() error {
	r.mu.Lock()
	r.log = append(r.log, "clear")
	r.mu.Unlock()
	r.cleared <- struct{}{}
	return nil
}

func (r *recorder) Mark(name string) error { return nil }
func (r *recorder) Control(c Control) error {
	return nil
}

func (r *recorder) after(event string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := -1
	for _, e := range r.log {
		if n >= 0 && e == "audio" {
			n++
		}
		if e == event {
			n = 0
		}
	}
	return n
}

func waitFor[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// speech is n ms of voiced sound, silence n ms of quiet.
func speech(ms int) []int16  { return speechLike(ms*SampleRate/1000, 8000) }
func silence(ms int) []int16 { return make([]int16, ms*SampleRate/1000) }

// vadCase is a VAD with speech it hears: the energy VAD with a synthetic voiced burst, Silero with real
// espeak-ng speech (the Silero case skips without its runtime, and fails under CI).
type vadCase struct {
	name        string
	vad         func(t *testing.T) VAD
	short, long func(t *testing.T) []int16
}

func vadCases() []vadCase {
	return []vadCase{
		{"Energy", func(*testing.T) VAD { return NewEnergyVAD() },
			func(*testing.T) []int16 { return speech(300) }, func(*testing.T) []int16 { return speech(1500) }},
		{"Silero", func(t *testing.T) VAD { return silerotest.NewVAD(t, silerotest.Open(t)) },
			func(t *testing.T) []int16 { return espeakSay(t, "hello") },
			func(t *testing.T) []int16 {
				return espeakSay(t, "goodbye, that is everything I wanted to tell you today, thank you very much")
			}},
	}
}

// espeakSay synthesises text with espeak-ng at 16 kHz (the espeak package imports this one, so the test
// runs the command itself).
func espeakSay(t *testing.T, text string) []int16 {
	t.Helper()
	out, err := exec.Command("espeak-ng", "-v", "en", "--stdout", text).Output()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI needs espeak-ng: %v", err)
		}
		t.Skipf("espeak-ng: %v", err)
	}
	pcm, rate, err := ParseWAV(out)
	if err != nil {
		t.Fatal(err)
	}
	return Resample(pcm, rate, SampleRate)
}

func TestConversationBargeIn(t *testing.T) {
	t.Parallel()
	for _, tc := range vadCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vad, short, long := tc.vad(t), tc.short(t), tc.long(t)
			// A segment holds the utterance plus up to 200 ms of pre-roll and 500 ms of trailing silence.
			threshold := len(short) + 900*SampleRate/1000
			if len(long) < threshold+300*SampleRate/1000 {
				t.Fatalf("the long utterance (%d samples) is too short against the short one (%d)", len(long), len(short))
			}
			out, j := newRecorder(), &testJournal{said: make(chan struct{}, 8)}
			brain := &scriptBrain{greeting: "this greeting is long enough to be interrupted by the person on the line for sure"}
			stt := lenSTT{text: func(a []int16) (string, error) {
				if len(a) > threshold {
					return "bye", nil
				}
				return "hello", nil
			}}
			c := NewConversation(ConversationConfig{STT: stt, TTS: &toneTTS{}, Brain: brain, Journal: j, Out: out, Lang: "en", VAD: vad})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx) }()
			// Ensure the greeting starts playing, then talk over it.
			waitFor(t, out.audio, "greeting audio")
			c.Feed(silence(200))
			c.Feed(short)
			waitFor(t, out.cleared, "clear after barge-in")
			// Ensure the output stops: once the player has dropped the greeting, at most one frame (already on
			// its way when the clear went out) followed the clear.
			waitFor(t, j.said, "the cut greeting in the journal")
			if n := out.after("clear"); n > 1 {
				t.Fatalf("%d frames sent after clear", n)
			}
			c.Feed(silence(800)) // ends the utterance "hello"
			// The reply to "hello" plays; then a long utterance says bye.
			waitFor(t, out.audio, "reply audio")
			c.Feed(long)
			c.Feed(silence(800))
			if err := waitFor(t, done, "end"); !errors.Is(err, ErrHangup) {
				t.Fatalf("Run = %v, want ErrHangup", err)
			}
			j.mu.Lock()
			defer j.mu.Unlock()
			// Ensure the journal holds what was actually said: the greeting cut short, then the replies.
			if len(j.agent) < 2 || !j.cut[0] || !strings.HasSuffix(j.agent[0], "…") || len(j.agent[0]) >= len(brain.greeting) {
				t.Fatalf("agent journal = %q (interrupted %v)", j.agent, j.cut)
			}
			if last := j.agent[len(j.agent)-1]; last != "goodbye" {
				t.Fatalf("last agent line = %q", last)
			}
			if len(j.user) < 2 || j.user[0] != "hello" || j.user[len(j.user)-1] != "bye" {
				t.Fatalf("user journal = %q", j.user)
			}
		})
	}
}

func TestConversationEchoGuard(t *testing.T) {
	t.Parallel()
	for _, tc := range vadCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vad, short := tc.vad(t), tc.short(t)
			out, j := newRecorder(), &testJournal{}
			brain := &scriptBrain{greeting: "hello there"}
			stt := lenSTT{text: func([]int16) (string, error) { return "bye", nil }}
			// Ensure an onset inside the echo guard does not cut the agent off.
			c := NewConversation(ConversationConfig{STT: stt, TTS: &toneTTS{}, Brain: brain, Journal: j, Out: out, Lang: "en", EchoGuard: time.Hour, VAD: vad})
			done := make(chan error, 1)
			go func() { done <- c.Run(context.Background()) }()
			waitFor(t, out.audio, "greeting audio")
			c.Feed(short)
			c.Feed(silence(800))
			if err := waitFor(t, done, "end"); !errors.Is(err, ErrHangup) {
				t.Fatalf("Run = %v", err)
			}
			if out.after("clear") >= 0 {
				t.Fatal("echo inside the guard window cleared the output")
			}
		})
	}
}

func TestConversationSilence(t *testing.T) {
	t.Parallel()
	brain := &scriptBrain{greeting: "hello there"}
	// Ensure nobody speaking after the greeting reaches the brain as silence.
	c := NewConversation(ConversationConfig{STT: lenSTT{}, TTS: &toneTTS{}, Brain: brain, Journal: &testJournal{}, Out: newRecorder(),
		SilenceTimeout: 50 * time.Millisecond})
	if err := c.Run(context.Background()); !errors.Is(err, ErrHangup) {
		t.Fatalf("Run = %v", err)
	}
	if len(brain.heard) != 1 || !brain.heard[0].Silence {
		t.Fatalf("brain heard %+v, want one silence", brain.heard)
	}
}

func TestConversationSpeechFailures(t *testing.T) {
	t.Parallel()
	t.Run("TTSDown", func(t *testing.T) {
		t.Parallel()
		// Ensure a TTS that fails twice in a row ends the conversation with ErrSpeechFailed, journaled.
		j := &testJournal{}
		brain := &scriptBrain{greeting: "one. two. three."}
		c := NewConversation(ConversationConfig{STT: lenSTT{}, TTS: &toneTTS{fail: true}, Brain: brain, Journal: j, Out: newRecorder()})
		if err := c.Run(context.Background()); !errors.Is(err, ErrSpeechFailed) {
			t.Fatalf("Run = %v, want ErrSpeechFailed", err)
		}
		if len(j.errors) < 2 || !strings.Contains(j.errors[0], "tts: test tts: down") {
			t.Fatalf("journal errors = %q", j.errors)
		}
	})
	t.Run("STTDown", func(t *testing.T) {
		t.Parallel()
		// Ensure a failed transcription reaches the brain as Failed, never as words.
		j, out := &testJournal{}, newRecorder()
		brain := &scriptBrain{}
		stt := lenSTT{text: func([]int16) (string, error) {
			return "", &SpeechError{Engine: "stt", Status: 503, Err: errors.New("busy")}
		}}
		c := NewConversation(ConversationConfig{STT: stt, TTS: &toneTTS{}, Brain: brain, Journal: j, Out: out})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		c.Feed(speech(300))
		c.Feed(silence(600))
		waitFor(t, out.audio, "reply audio")
		cancel()
		<-done
		brain.mu.Lock()
		defer brain.mu.Unlock()
		if len(brain.heard) != 1 || !brain.heard[0].Failed || brain.heard[0].Text != "" {
			t.Fatalf("brain heard %+v", brain.heard)
		}
	})
}

func TestSentences(t *testing.T) {
	t.Parallel()
	done, rest := Sentences("Disk is at 97.5 percent. I propose cleaning /var/log? 您同意吗？还有")
	if len(done) != 3 || done[0] != "Disk is at 97.5 percent." || done[2] != "您同意吗？" || rest != "还有" {
		t.Fatalf("Sentences = %q, rest %q", done, rest)
	}
}
