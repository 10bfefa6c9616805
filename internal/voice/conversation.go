package voice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Output is where a conversation's sound and control messages go: a transport's side of the stream.
// Calls come from one goroutine at a time per method group, but the transport must serialise its writes.
type Output interface {
	// Audio sends one FrameMs frame of 16 kHz PCM16 (the transport converts to its format).
	Audio(frame []int16) error
	// Clear makes the far end drop the audio it has queued (Twilio clear, the app's interrupt).
	Clear() error
	// Mark asks the far end to report when the audio sent so far has played (Twilio); name is echoed.
	Mark(name string) error
	// Control sends a control message (the app's JSON frames; Twilio has no use for them).
	Control(c Control) error
}

// Control is a JSON control frame of the app transport.
type Control struct {
	Type    string `json:"type"`              // transcript, state, interrupt, error
	Role    string `json:"role,omitempty"`    // transcript: user or agent
	Text    string `json:"text,omitempty"`    // transcript
	Final   bool   `json:"final,omitempty"`   // transcript
	State   string `json:"state,omitempty"`   // state: listening, thinking, speaking
	Code    string `json:"code,omitempty"`    // error
	Message string `json:"message,omitempty"` // error
}

// Agent states reported to the app.
const (
	StateListening = "listening"
	StateThinking  = "thinking"
	StateSpeaking  = "speaking"
)

// Utterance is one turn of the person: what they said, or that they said nothing.
type Utterance struct {
	Text    string
	Silence bool // nobody spoke within the silence timeout
	Failed  bool // speech recognition failed (the person was told)
}

// Brain answers the person: the agent of a session, or an escalation's question.
type Brain interface {
	// Greeting is said when the stream starts ("" listens first); end hangs up after it.
	Greeting(ctx context.Context) (text string, end bool, err error)
	// Turn answers u, calling say with each piece of the reply as it is ready (sentences are spoken as
	// soon as they are complete). end ends the conversation once the reply has been spoken.
	Turn(ctx context.Context, u Utterance, say func(text string)) (end bool, err error)
}

// Journal records both sides of a conversation (session events, audit, the session record).
type Journal interface {
	User(ctx context.Context, text string, t Timings)
	Agent(ctx context.Context, text string, interrupted bool, t Timings)
	Failure(ctx context.Context, stage string, err error)
}

// Timings of one turn, in milliseconds from the end of the person's speech.
type Timings struct {
	SpeechMs   int64 `json:"speech_ms,omitempty"`      // length of the utterance
	STTMs      int64 `json:"stt_ms,omitempty"`         // transcription done
	AgentMs    int64 `json:"agent_ms,omitempty"`       // first reply text
	FirstTTSMs int64 `json:"first_tts_ms,omitempty"`   // first sentence synthesised
	FirstOutMs int64 `json:"first_audio_ms,omitempty"` // first audio frame sent
	TTSMs      int64 `json:"tts_ms,omitempty"`         // time spent synthesising the first sentence
}

// Metrics are the conversation's counters; nil funcs are skipped.
type Metrics struct {
	Stage   func(stage string, d time.Duration) // stt, agent, tts, first_audio, gateway
	BargeIn func()
	Error   func(stage string) // stt, tts, agent
	// PacingLate is how late each paced outbound frame left: send time minus deadline.
	PacingLate func(d time.Duration)
}

// ConversationConfig wires one conversation.
type ConversationConfig struct {
	STT     STT
	TTS     TTS
	Brain   Brain
	Journal Journal
	Out     Output
	VAD     VAD // default NewEnergyVAD()
	Segment SegmenterConfig
	Lang    string // zh-CN or en
	// EchoGuard ignores speech onsets this soon after the agent starts a sentence (the app transport: the
	// browser's echo canceller needs a moment to converge). 0 on the phone.
	EchoGuard time.Duration
	// SilenceTimeout asks the brain again when nobody speaks this long after the agent finished; 0 never.
	SilenceTimeout time.Duration
	// Frame is the pacing interval of outbound audio (default FrameMs); Lead frames go out at once so
	// the far end has a cushion against network jitter (default 2).
	Frame time.Duration
	Lead  int
	// Pacer sends the paced frames (default: a pacer of this conversation's own; the service shares one
	// among all its streams).
	Pacer *Pacer
	// MarkWait bounds the wait for the far end's last mark before hanging up (default 3 s).
	MarkWait time.Duration
	Metrics  Metrics
	Logger   *slog.Logger
	// OnBargeIn, when set, is called after a barge-in cleared the output (tests and benchmarks).
	OnBargeIn func()
}

// Errors that end a conversation.
var (
	ErrSpeechFailed = errors.New("speech synthesis failed; the conversation cannot go on")
	ErrHangup       = errors.New("the conversation ended")
)

// speakItem is a piece of reply text on its way to the speaker, or the end of a turn's reply.
type speakItem struct {
	gen  int64
	turn int
	text string
	end  bool
}

// clip is one synthesised sentence on its way to the player.
type clip struct {
	speakItem
	audio []int16
}

// Conversation is one voice stream: it listens (VAD, segmenter), turns utterances into turns of its
// brain, and speaks the replies, paced, stopping at once when the person talks over them (barge-in).
type Conversation struct {
	cfg ConversationConfig
	log *slog.Logger

	mu       sync.Mutex // guards the listening side (Feed)
	vadBuf   []int16
	seg      *Segmenter
	segStart time.Time

	segments chan segment
	speakq   chan speakItem
	playq    chan clip
	played   chan int    // turn ids whose reply was spoken (or cut)
	marks    chan string // marks echoed by the far end

	gen      atomic.Int64 // bumped by each barge-in: older speech is dropped
	pending  atomic.Int64 // sentences said and not yet spoken or dropped
	clipAt   atomic.Int64 // unix nanos when the current clip started playing
	cancelMu sync.Mutex
	cancel   context.CancelFunc // cancels synthesis of the current generation
	genCtx   context.Context
	ttsFails atomic.Int32

	turnMu  sync.Mutex
	timings map[int]*turnClock
}

type segment struct {
	audio []int16
	end   time.Time
}

type turnClock struct {
	speechEnd  time.Time
	t          Timings
	firstAudio bool
}

// NewConversation returns a conversation; Run drives it and Feed gives it audio.
func NewConversation(cfg ConversationConfig) *Conversation {
	if cfg.VAD == nil {
		cfg.VAD = NewEnergyVAD()
	}
	if cfg.Frame <= 0 {
		cfg.Frame = FrameMs * time.Millisecond
	}
	if cfg.Lead <= 0 {
		cfg.Lead = 2
	}
	if cfg.Pacer == nil {
		cfg.Pacer = NewPacer(PacerConfig{Late: cfg.Metrics.PacingLate})
	}
	if cfg.MarkWait <= 0 {
		cfg.MarkWait = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Segment.FrameMs <= 0 {
		cfg.Segment.FrameMs = cfg.VAD.FrameSize() * 1000 / SampleRate
	}
	c := &Conversation{cfg: cfg, log: cfg.Logger, seg: NewSegmenter(cfg.Segment),
		segments: make(chan segment, 4), speakq: make(chan speakItem, 256), playq: make(chan clip, 4),
		played: make(chan int, 16), marks: make(chan string, 16), timings: map[int]*turnClock{}}
	c.genCtx, c.cancel = context.WithCancel(context.Background())
	return c
}

// Feed gives the conversation inbound audio (16 kHz PCM16, any length). It runs the VAD and segmenter
// inline and acts on a speech onset at once: that is where barge-in latency is decided.
func (c *Conversation) Feed(samples []int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.cfg.VAD.FrameSize()
	c.vadBuf = append(c.vadBuf, samples...)
	for len(c.vadBuf) >= n {
		f := c.vadBuf[:n]
		ev, audio := c.seg.Push(f, c.cfg.VAD.Speech(f))
		c.vadBuf = c.vadBuf[:copy(c.vadBuf, c.vadBuf[n:])]
		switch ev {
		case SegStart:
			c.segStart = time.Now()
			c.maybeBargeIn()
		case SegEnd:
			select {
			case c.segments <- segment{audio: audio, end: time.Now()}:
			default:
				c.log.Warn("voice: utterance dropped, the agent is still busy with earlier ones")
			}
		}
	}
}

// Marked tells the conversation the far end echoed mark name.
func (c *Conversation) Marked(name string) {
	select {
	case c.marks <- name:
	default:
	}
}

// Speaking reports whether the agent has speech queued or playing.
func (c *Conversation) Speaking() bool { return c.pending.Load() > 0 }

func (c *Conversation) maybeBargeIn() {
	if !c.Speaking() {
		return
	}
	if at := c.clipAt.Load(); at != 0 && time.Since(time.Unix(0, at)) < c.cfg.EchoGuard {
		return // most likely our own voice coming back
	}
	c.interrupt()
}

// interrupt stops the agent's speech: queued and playing sentences are dropped and the far end clears
// what it has buffered.
func (c *Conversation) interrupt() {
	if !c.Speaking() {
		return
	}
	c.gen.Add(1)
	c.cancelMu.Lock()
	c.cancel()
	c.genCtx, c.cancel = context.WithCancel(context.Background())
	c.cancelMu.Unlock()
	if err := c.cfg.Out.Clear(); err != nil {
		c.log.Debug("voice: clear failed", slog.String("error", err.Error()))
	}
	if m := c.cfg.Metrics.BargeIn; m != nil {
		m()
	}
	if c.cfg.OnBargeIn != nil {
		c.cfg.OnBargeIn()
	}
}

func (c *Conversation) synthCtx() context.Context {
	c.cancelMu.Lock()
	defer c.cancelMu.Unlock()
	return c.genCtx
}

// Run drives the conversation until the brain ends it (ErrHangup once the goodbye has been spoken), the
// speech engines fail for good (ErrSpeechFailed) or ctx ends (the stream closed).
func (c *Conversation) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer func() {
		c.cancelMu.Lock()
		c.cancel()
		c.cancelMu.Unlock()
	}()
	var wg sync.WaitGroup
	wg.Go(func() { c.speaker(ctx, cancel) })
	wg.Go(func() { c.player(ctx) })
	err := c.turns(ctx)
	cancel(err)
	wg.Wait()
	if cause := context.Cause(ctx); err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	return err
}

// turns is the turn loop: greet, then answer each utterance (or silence) in order.
func (c *Conversation) turns(ctx context.Context) error {
	turn := 0
	greeting, end, err := c.cfg.Brain.Greeting(ctx)
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if greeting != "" {
		c.say(turn, c.gen.Load(), greeting)
		c.endTurn(turn)
		if err := c.waitPlayed(ctx, turn); err != nil {
			return err
		}
	}
	if end {
		c.hangup(ctx)
		return ErrHangup
	}
	c.control(Control{Type: "state", State: StateListening})
	for {
		u, ok, err := c.listen(ctx, turn+1)
		if err != nil {
			return err
		}
		if !ok {
			continue // someone is talking at the timeout: wait for the utterance
		}
		turn++
		gen := c.gen.Load()
		c.control(Control{Type: "state", State: StateThinking})
		end, err := c.cfg.Brain.Turn(ctx, u, func(text string) { c.say(turn, gen, text) })
		c.endTurn(turn)
		if err != nil {
			c.fail(ctx, "agent", err)
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
		}
		if err := c.waitPlayed(ctx, turn); err != nil {
			return err
		}
		c.control(Control{Type: "state", State: StateListening})
		if end {
			c.hangup(ctx)
			return ErrHangup
		}
	}
}

// listen waits for the next utterance, or the silence timeout (ok false: the person is mid-utterance).
func (c *Conversation) listen(ctx context.Context, turn int) (u Utterance, ok bool, err error) {
	var silence <-chan time.Time
	if c.cfg.SilenceTimeout > 0 {
		t := time.NewTimer(c.cfg.SilenceTimeout)
		defer t.Stop()
		silence = t.C
	}
	select {
	case <-ctx.Done():
		return u, false, context.Cause(ctx)
	case <-silence:
		c.mu.Lock()
		busy := c.seg.Speaking()
		c.mu.Unlock()
		return Utterance{Silence: true}, !busy, nil
	case s := <-c.segments:
		return c.transcribe(ctx, turn, s), true, nil
	}
}

// transcribe runs STT on one utterance; a failure is said to the person and handed to the brain as such.
func (c *Conversation) transcribe(ctx context.Context, turn int, s segment) Utterance {
	c.clock(turn, func(tc *turnClock) {
		tc.speechEnd, tc.t.SpeechMs = s.end, int64(len(s.audio))*1000/SampleRate
	})
	c.control(Control{Type: "state", State: StateThinking})
	text, err := c.cfg.STT.Transcribe(ctx, s.audio, c.cfg.Lang)
	d := time.Since(s.end)
	c.stage("stt", d)
	var tm Timings
	c.clock(turn, func(tc *turnClock) { tc.t.STTMs = d.Milliseconds(); tm = tc.t })
	if err != nil {
		c.fail(ctx, "stt", err)
		return Utterance{Failed: true}
	}
	text = strings.TrimSpace(text)
	c.control(Control{Type: "transcript", Role: "user", Text: text, Final: true})
	if text != "" {
		c.cfg.Journal.User(ctx, text, tm)
	}
	return Utterance{Text: text}
}

func (c *Conversation) fail(ctx context.Context, stage string, err error) {
	if m := c.cfg.Metrics.Error; m != nil {
		m(stage)
	}
	c.log.WarnContext(ctx, "voice: "+stage+" failed", slog.String("error", err.Error()))
	c.cfg.Journal.Failure(ctx, stage, err)
	c.control(Control{Type: "error", Code: stage + "_failed", Message: err.Error()})
}

func (c *Conversation) stage(name string, d time.Duration) {
	if m := c.cfg.Metrics.Stage; m != nil {
		m(name, d)
	}
}

func (c *Conversation) clock(turn int, f func(*turnClock)) {
	c.turnMu.Lock()
	defer c.turnMu.Unlock()
	tc := c.timings[turn]
	if tc == nil {
		tc = &turnClock{}
		c.timings[turn] = tc
	}
	f(tc)
}

func (c *Conversation) control(ct Control) {
	if err := c.cfg.Out.Control(ct); err != nil {
		c.log.Debug("voice: control frame not sent", slog.String("error", err.Error()))
	}
}

// say queues reply text of turn, one sentence per clip; text of an older generation (cut by a barge-in)
// is dropped. Brains that stream should call it with complete sentences (see Sentences).
func (c *Conversation) say(turn int, gen int64, text string) {
	if strings.TrimSpace(text) == "" || c.gen.Load() != gen {
		return
	}
	c.clock(turn, func(tc *turnClock) {
		if tc.t.AgentMs == 0 && !tc.speechEnd.IsZero() {
			tc.t.AgentMs = max(time.Since(tc.speechEnd).Milliseconds(), 1)
			c.stage("agent", time.Since(tc.speechEnd))
		}
	})
	done, rest := Sentences(text)
	if rest = strings.TrimSpace(rest); rest != "" {
		done = append(done, rest)
	}
	for _, s := range done {
		c.pending.Add(1)
		c.speakq <- speakItem{gen: gen, turn: turn, text: s}
	}
}

func (c *Conversation) endTurn(turn int) { c.speakq <- speakItem{turn: turn, end: true} }

func (c *Conversation) waitPlayed(ctx context.Context, turn int) error {
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case t := <-c.played:
			if t >= turn {
				return nil
			}
		}
	}
}

// hangup waits (boundedly) until the far end has played the goodbye.
func (c *Conversation) hangup(ctx context.Context) {
	if err := c.cfg.Out.Mark("end"); err != nil {
		return
	}
	t := time.NewTimer(c.cfg.MarkWait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case m := <-c.marks:
			if m == "end" {
				return
			}
		}
	}
}

// speaker synthesises queued text, sentence by sentence, ahead of the player.
func (c *Conversation) speaker(ctx context.Context, stop context.CancelCauseFunc) {
	for {
		var it speakItem
		select {
		case <-ctx.Done():
			return
		case it = <-c.speakq:
		}
		if it.end {
			select {
			case c.playq <- clip{speakItem: it}:
			case <-ctx.Done():
				return
			}
			continue
		}
		if it.gen != c.gen.Load() {
			c.pending.Add(-1)
			continue
		}
		start := time.Now()
		audio, err := c.cfg.TTS.Synthesize(c.synthCtx(), it.text, c.cfg.Lang)
		if err != nil && it.gen != c.gen.Load() {
			c.pending.Add(-1) // cancelled by a barge-in
			continue
		}
		if err != nil {
			c.pending.Add(-1)
			c.fail(ctx, "tts", err)
			if c.ttsFails.Add(1) >= 2 {
				stop(ErrSpeechFailed)
				return
			}
			continue
		}
		c.ttsFails.Store(0)
		c.clock(it.turn, func(tc *turnClock) {
			if tc.t.FirstTTSMs == 0 && !tc.speechEnd.IsZero() {
				tc.t.FirstTTSMs, tc.t.TTSMs = time.Since(tc.speechEnd).Milliseconds(), time.Since(start).Milliseconds()
				c.stage("tts", time.Since(start))
			}
		})
		select {
		case c.playq <- clip{speakItem: it, audio: audio}:
		case <-ctx.Done():
			return
		}
	}
}

// player sends clips in FrameMs frames at real-time pace and records what was actually spoken per turn.
func (c *Conversation) player(ctx context.Context) {
	frame := SampleRate * FrameMs / 1000
	var spoken []string
	interrupted := false
	lane := c.cfg.Pacer.Lane()
	var next, fresh time.Time // when the next frame is due; when the current run of frames started
	// A stream that ends mid-reply still records what was said of it.
	turn, sent, total, text := -1, 0, 0, ""
	defer func() {
		if turn < 0 {
			return
		}
		if sent > 0 && sent < total {
			r := []rune(text)
			spoken = append(spoken, string(r[:len(r)*sent/total])+"…")
		}
		if len(spoken) > 0 {
			c.finishReply(context.WithoutCancel(ctx), turn, spoken, true)
		}
	}()
	for {
		var cl clip
		select {
		case <-ctx.Done():
			return
		case cl = <-c.playq:
		}
		turn = cl.turn
		if cl.end {
			c.finishReply(ctx, cl.turn, spoken, interrupted)
			spoken, interrupted, turn = spoken[:0], false, -1
			select {
			case c.played <- cl.turn:
			case <-ctx.Done():
				return
			}
			continue
		}
		if cl.gen != c.gen.Load() {
			c.pending.Add(-1)
			interrupted = true
			continue
		}
		c.control(Control{Type: "state", State: StateSpeaking})
		c.clipAt.Store(time.Now().UnixNano())
		if now := time.Now(); next.Before(now) {
			next = now.Add(-time.Duration(c.cfg.Lead) * c.cfg.Frame) // a fresh start: send the lead at once
			fresh = now
		}
		sent, total, text = 0, (len(cl.audio)+frame-1)/frame, cl.text
		for i := 0; i < len(cl.audio); i += frame {
			if cl.gen != c.gen.Load() {
				break
			}
			f := cl.audio[i:min(i+frame, len(cl.audio))]
			if len(f) < frame {
				f = append(append(make([]int16, 0, frame), f...), make([]int16, frame-len(f))...)
			}
			send := func() error {
				if cl.gen != c.gen.Load() { // cut while it waited for its deadline
					return errCut
				}
				return c.cfg.Out.Audio(f)
			}
			var err error
			if next.Before(fresh) {
				err = send() // the lead
			} else {
				err = lane.Send(ctx, next, send)
			}
			if errors.Is(err, errCut) {
				break
			}
			if err != nil {
				c.pending.Add(-1)
				return // the stream is gone (or ctx ended); Run ends with the transport
			}
			if sent == 0 {
				c.firstAudio(cl.turn)
			}
			sent++
			next = next.Add(c.cfg.Frame)
		}
		c.clipAt.Store(0)
		c.pending.Add(-1)
		done := sent
		sent = 0 // recorded below
		if done == total {
			spoken = append(spoken, cl.text)
			continue
		}
		interrupted = true
		if r := []rune(cl.text); done > 0 {
			spoken = append(spoken, string(r[:len(r)*done/total])+"…")
		}
		next = time.Time{}
	}
}

func (c *Conversation) firstAudio(turn int) {
	c.clock(turn, func(tc *turnClock) {
		if tc.firstAudio || tc.speechEnd.IsZero() {
			return
		}
		tc.firstAudio = true
		d := time.Since(tc.speechEnd)
		tc.t.FirstOutMs = d.Milliseconds()
		c.stage("first_audio", d)
		// What the gateway itself added: everything but the engines' time (STT and the agent up to its
		// first text, then the first sentence's synthesis).
		if gw := d - time.Duration(tc.t.AgentMs+tc.t.TTSMs)*time.Millisecond; gw >= 0 {
			c.stage("gateway", gw)
		}
	})
}

func (c *Conversation) finishReply(ctx context.Context, turn int, spoken []string, interrupted bool) {
	var tm Timings
	c.clock(turn, func(tc *turnClock) { tm = tc.t })
	c.turnMu.Lock()
	delete(c.timings, turn)
	c.turnMu.Unlock()
	if len(spoken) == 0 && !interrupted {
		return
	}
	text := strings.Join(spoken, " ")
	c.control(Control{Type: "transcript", Role: "agent", Text: text, Final: true})
	c.cfg.Journal.Agent(ctx, text, interrupted, tm)
}
