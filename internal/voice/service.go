package voice

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/agent/agentapi"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/tenant"
)

// Agent is what voice needs from the agent module.
type Agent interface {
	Session(ctx context.Context, id string) (*agentapi.Session, error)
	SendMessage(ctx context.Context, sessionID, text string) (*agentapi.TaskRecord, error)
	// Follow subscribes to the live events of session sessionID until stop is called; the channel closes
	// when the subscriber falls too far behind.
	Follow(sessionID string) (events <-chan agentapi.Message, stop func())
	// The approvals of sessions (the approval service's, internal/ops/approval).
	Approval(ctx context.Context, id string) (*approval.Approval, error)
	Approvals(ctx context.Context, sessionID, status string, limit int) ([]approval.Approval, error)
	Decide(ctx context.Context, id string, approve bool, reason string) (*approval.Approval, error)
	Note(ctx context.Context, sessionID string, e agentapi.Event) agentapi.Event
}

// Answerer decides an escalation's approval as the contact reached at addr, exactly like their SMS
// answer would (comm.Service.InboundButton): data is "y:<approval id>" or "n:<approval id>", key makes
// a replay harmless. It returns the sentence to tell the person.
type Answerer interface {
	InboundButton(ctx context.Context, channel, addr, data, key string) (string, error)
}

// Calls hangs up a phone call once its conversation is over (otherwise the call would go on to the
// TwiML after the stream: the keypad fallback).
type Calls interface {
	Hangup(ctx context.Context, callSID string) error
}

// Store keeps voice sessions, so that a session's record and a call prepared for an escalation outlive a
// restart.
type Store interface {
	// VoiceSessionPut inserts or replaces voice session vs of the tenant in ctx.
	VoiceSessionPut(ctx context.Context, vs *Session) error
	// VoiceSessionGet returns voice session id of the tenant in ctx; errs.NotFound when there is none.
	VoiceSessionGet(ctx context.Context, id string) (*Session, error)
	// VoiceSessionsActive lists the active sessions of the tenant in ctx, without their turns.
	VoiceSessionsActive(ctx context.Context) ([]Session, error)
	// VoiceSessionInterrupt ends session id with reason at at, if it is still active on runner, and
	// reports whether it did.
	VoiceSessionInterrupt(ctx context.Context, id, runner, reason string, at time.Time) (bool, error)
}

// AuditLog records what voice does.
type AuditLog interface {
	Record(ctx context.Context, r audit.Record) (*audit.Entry, error)
}

// Config configures the gateway. Without STT and TTS the gateway is unavailable: the console has no
// voice and escalation calls keep the <Say> + keypad script.
type Config struct {
	STT STT
	TTS TTS
	// Store keeps the sessions; nil keeps them in memory only (lost with the process).
	Store Store
	// Secret signs the single-use tokens of phone streams (required).
	Secret []byte
	// PublicURL is IT0's public https base URL; Twilio connects to its wss:// form.
	PublicURL string
	// MaxStreams caps concurrent streams per tenant (default 10).
	MaxStreams int
	// TokenTTL is how long a call's stream token is valid: ringing plus answering (default 10 min).
	TokenTTL time.Duration
	// SilenceTimeout on the phone (default 8 s); EchoGuard on the app transport (default 250 ms).
	SilenceTimeout time.Duration
	EchoGuard      time.Duration
	// NewVAD makes a VAD per stream (default NewEnergyVAD).
	NewVAD func() VAD
	// Frame overrides the pacing interval (tests).
	Frame   time.Duration
	Metrics Metrics
	// Streams is told when a stream opens (+1) or closes (-1), by transport.
	Streams func(transport string, delta int)
	Logger  *slog.Logger
	Now     func() time.Time
	// Runner names this process on the sessions whose stream it carries (default: a random name), and
	// Alive tells whether the process named on another session is still running (default: none is; one
	// process on its own database). InterruptedStreams ends the sessions of stopped processes.
	Runner string
	Alive  func(ctx context.Context, runner string) (bool, error)
}

// Transports.
const (
	TransportApp    = "app"
	TransportTwilio = "twilio"
)

// Session states.
const (
	SessionWaiting = "waiting" // prepared, no stream yet
	SessionActive  = "active"
	SessionEnded   = "ended"
)

// Session is a voice session: one conversation bound to an agent session (and, on an escalation call,
// to the approval it asks about).
type Session struct {
	ID             string     `json:"id"`
	TenantID       string     `json:"tenant_id"`
	AgentSessionID string     `json:"agent_session_id"`
	ApprovalID     string     `json:"approval_id,omitempty"`
	UserID         string     `json:"user_id,omitempty"`
	Transport      string     `json:"transport"`
	Language       string     `json:"language"`
	State          string     `json:"state"`
	Outcome        string     `json:"outcome,omitempty"` // escalation calls: approved, rejected, no_answer, failed
	EndReason      string     `json:"end_reason,omitempty"`
	Turns          []Turn     `json:"turns"`
	CreatedAt      time.Time  `json:"created_at"`
	StartedAt      *time.Time `json:"started_at,omitempty"`
	EndedAt        *time.Time `json:"ended_at,omitempty"`
	// Runner is the process carrying the stream of an active session.
	Runner string `json:"-"`
}

// Turn is one side's line in a voice session.
type Turn struct {
	Role        string    `json:"role"` // user or agent
	Text        string    `json:"text"`
	Interrupted bool      `json:"interrupted,omitempty"`
	Timings     Timings   `json:"timings"`
	At          time.Time `json:"at"`
}

// Errors of the service.
var (
	ErrUnavailable = errs.New(errs.Unavailable, "voice is not configured").
			WithHint("set IT0_STT_BASE_URL and IT0_TTS_BASE_URL (an OpenAI-compatible speech server), or IT0_STT=pocketsphinx and IT0_TTS=espeak")
	ErrBadToken = &CloseError{Code: ClosePolicy, Reason: "missing, invalid, expired or used stream token"}
	ErrTooMany  = &CloseError{Code: CloseTryLater, Reason: "too many voice streams for this tenant; try again later"}
)

// Service runs voice sessions. Every change of a session is written through to the store (when there is
// one); sessions in use are also kept in memory, which is the working copy while a stream runs. Their
// transcripts are also stored as session events and audited.
type Service struct {
	cfg     Config
	log     *slog.Logger
	agent   Agent
	answers Answerer
	calls   Calls
	audit   AuditLog
	pacer   *Pacer // one for every stream of the process

	mu       sync.Mutex
	sessions map[string]*liveSession
	streams  map[string]int       // tenant → open streams
	used     map[string]time.Time // token nonces used → expiry
}

// New returns the service. answers and calls may be nil (no escalation calls).
func New(cfg Config, ag Agent, answers Answerer, calls Calls, al AuditLog) (*Service, error) {
	if len(cfg.Secret) < 16 {
		return nil, errors.New("voice: a token secret of at least 16 bytes is required")
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 10
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 10 * time.Minute
	}
	if cfg.SilenceTimeout <= 0 {
		cfg.SilenceTimeout = 8 * time.Second
	}
	if cfg.EchoGuard <= 0 {
		cfg.EchoGuard = 250 * time.Millisecond
	}
	if cfg.NewVAD == nil {
		cfg.NewVAD = func() VAD { return NewEnergyVAD() }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.Runner == "" {
		b := make([]byte, 6)
		rand.Read(b)
		cfg.Runner = "process-" + hex.EncodeToString(b)
	}
	return &Service{cfg: cfg, log: cfg.Logger.With(slog.String("component", "voice")), agent: ag, answers: answers, calls: calls, audit: al,
		pacer:    NewPacer(PacerConfig{Late: cfg.Metrics.PacingLate}),
		sessions: map[string]*liveSession{}, streams: map[string]int{}, used: map[string]time.Time{}}, nil
}

// Available returns nil when speech in and out are configured.
func (s *Service) Available() error {
	if s.cfg.STT == nil || s.cfg.TTS == nil {
		return ErrUnavailable
	}
	return nil
}

// CallsReady returns nil when escalation calls can be voice conversations: speech is configured and
// Twilio can reach IT0 (a public URL).
func (s *Service) CallsReady() error {
	if err := s.Available(); err != nil {
		return err
	}
	if s.cfg.PublicURL == "" {
		return errs.New(errs.Unavailable, "IT0_PUBLIC_URL is not set: Twilio cannot reach the media stream")
	}
	return nil
}

// CreateSession prepares an app voice session on agent session sessionID, for the signed-in user.
func (s *Service) CreateSession(ctx context.Context, sessionID, locale string) (*Session, error) {
	if err := s.Available(); err != nil {
		return nil, err
	}
	tid, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.agent.Session(ctx, sessionID); err != nil {
		return nil, err
	}
	p, _ := auth.PrincipalFrom(ctx)
	vs := &Session{ID: uuid.NewString(), TenantID: tid, AgentSessionID: sessionID, UserID: p.UserID, Transport: TransportApp,
		Language: Lang(locale), State: SessionWaiting, CreatedAt: s.cfg.Now(), Turns: []Turn{}}
	if err := s.create(ctx, vs); err != nil {
		return nil, err
	}
	return s.Session(ctx, vs.ID)
}

// liveSession is a session in this process's memory: the working copy while its stream runs. save
// serialises its writes to the store, so that they land in the order they were made.
type liveSession struct {
	vs   *Session
	save sync.Mutex
}

// create stores new session vs and keeps it in memory; without its record a prepared call could not be
// answered after a restart, so a store failure fails the caller.
func (s *Service) create(ctx context.Context, vs *Session) error {
	if s.cfg.Store != nil {
		if err := s.cfg.Store.VoiceSessionPut(ctx, vs); err != nil {
			return fmt.Errorf("store voice session: %w", err)
		}
	}
	s.mu.Lock()
	s.sessions[vs.ID] = &liveSession{vs: vs}
	s.gc()
	s.mu.Unlock()
	return nil
}

// Session returns voice session id of the tenant in ctx (a copy): the live one, else the stored one.
func (s *Service) Session(ctx context.Context, id string) (*Session, error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	ls, ok := s.sessions[id]
	if ok && ls.vs.TenantID == tid {
		c := copySession(ls.vs)
		s.mu.Unlock()
		return c, nil
	}
	s.mu.Unlock()
	if s.cfg.Store != nil && !ok {
		vs, err := s.cfg.Store.VoiceSessionGet(ctx, id)
		if err == nil && vs.TenantID == tid {
			return vs, nil
		}
		if err != nil && !errs.Is(err, errs.NotFound) {
			return nil, fmt.Errorf("load voice session: %w", err)
		}
	}
	return nil, errs.New(errs.NotFound, "voice session %s not found", clipStr(id, 60))
}

func copySession(vs *Session) *Session {
	c := *vs
	c.Turns = append([]Turn{}, vs.Turns...)
	return &c
}

// gc forgets sessions that ended, or never started within a day, from memory (the store keeps them).
// Callers hold s.mu.
func (s *Service) gc() {
	now := s.cfg.Now()
	for id, ls := range s.sessions {
		vs := ls.vs
		if (vs.EndedAt != nil && (s.cfg.Store != nil || now.Sub(*vs.EndedAt) > time.Hour)) ||
			(vs.State == SessionWaiting && now.Sub(vs.CreatedAt) > 24*time.Hour) {
			delete(s.sessions, id)
		}
	}
	for n, exp := range s.used {
		if now.After(exp) {
			delete(s.used, n)
		}
	}
}

// live returns voice session id of the tenant in ctx from memory, loading it from the store when this
// process has not seen it (a call prepared before a restart).
func (s *Service) live(ctx context.Context, id string) (*liveSession, error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	ls, ok := s.sessions[id]
	s.mu.Unlock()
	if ok {
		if ls.vs.TenantID != tid {
			return nil, errs.New(errs.NotFound, "voice session %s not found", clipStr(id, 60))
		}
		return ls, nil
	}
	vs, err := s.Session(ctx, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ls, ok := s.sessions[id]; ok { // loaded meanwhile by another caller
		return ls, nil
	}
	ls = &liveSession{vs: vs}
	s.sessions[id] = ls
	return ls, nil
}

// update changes voice session id with f and writes the result through to the store. f may refuse the
// change by returning an error (nothing is written then). A failed write is logged: the conversation
// goes on, its record is behind.
func (s *Service) update(ctx context.Context, id string, f func(*Session) error) error {
	ls, err := s.live(ctx, id)
	if err != nil {
		return err
	}
	ls.save.Lock()
	defer ls.save.Unlock()
	s.mu.Lock()
	if err := f(ls.vs); err != nil {
		s.mu.Unlock()
		return err
	}
	c := copySession(ls.vs)
	s.mu.Unlock()
	if s.cfg.Store != nil {
		if err := s.cfg.Store.VoiceSessionPut(context.WithoutCancel(ctx), c); err != nil {
			s.log.ErrorContext(ctx, "store voice session", slog.String("voice_session", id), slog.String("error", err.Error()))
		}
	}
	return nil
}

// acquire takes one of the tenant's stream slots.
func (s *Service) acquire(tid, transport string) (func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams[tid] >= s.cfg.MaxStreams {
		return nil, ErrTooMany
	}
	s.streams[tid]++
	if s.cfg.Streams != nil {
		s.cfg.Streams(transport, 1)
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.streams[tid]--
		if s.cfg.Streams != nil {
			s.cfg.Streams(transport, -1)
		}
	}, nil
}

// --- stream tokens ---

// streamClaims is what a phone stream's token carries, signed.
type streamClaims struct {
	Tenant   string `json:"t"`
	Voice    string `json:"v"`
	Approval string `json:"a"`
	To       string `json:"to"`
	Lang     string `json:"l"`
	Exp      int64  `json:"e"`
	Nonce    string `json:"n"`
}

func (s *Service) sign(payload []byte) []byte {
	m := hmac.New(sha256.New, s.cfg.Secret)
	m.Write([]byte("it0-voice-stream\x00"))
	m.Write(payload)
	return m.Sum(nil)
}

func (s *Service) token(c streamClaims) string {
	n := make([]byte, 12)
	rand.Read(n)
	c.Nonce = hex.EncodeToString(n)
	b, _ := json.Marshal(c)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(b) + "." + enc.EncodeToString(s.sign(b))
}

// redeem checks token for voice session vsID and uses it up.
func (s *Service) redeem(token, vsID string) (*streamClaims, error) {
	p, sig, ok := strings.Cut(token, ".")
	if !ok || len(token) > 2048 {
		return nil, ErrBadToken
	}
	enc := base64.RawURLEncoding.Strict()
	payload, err1 := enc.DecodeString(p)
	got, err2 := enc.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(got, s.sign(payload)) {
		return nil, ErrBadToken
	}
	var c streamClaims
	if err := json.Unmarshal(payload, &c); err != nil || c.Voice != vsID || c.Tenant == "" || c.Nonce == "" {
		return nil, ErrBadToken
	}
	exp := time.Unix(c.Exp, 0)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.cfg.Now().Before(exp) {
		return nil, ErrBadToken
	}
	if _, used := s.used[c.Nonce]; used {
		return nil, ErrBadToken
	}
	s.used[c.Nonce] = exp
	return &c, nil
}

// PrepareCall readies a voice session for an escalation call to to about approval approvalID (the
// tenant in ctx) and returns the stream's wss:// URL and the <Parameter>s that authenticate it (the
// voice session's id among them). Each call gets its own voice session.
func (s *Service) PrepareCall(ctx context.Context, approvalID, to, locale string) (string, map[string]string, error) {
	if err := s.CallsReady(); err != nil {
		return "", nil, err
	}
	tid, err := tenant.ID(ctx)
	if err != nil {
		return "", nil, err
	}
	a, err := s.agent.Approval(ctx, approvalID)
	if err != nil {
		return "", nil, err
	}
	vsID, now := uuid.NewString(), s.cfg.Now()
	if err := s.create(ctx, &Session{ID: vsID, TenantID: tid, AgentSessionID: a.SessionID, ApprovalID: approvalID, Transport: TransportTwilio,
		Language: Lang(locale), State: SessionWaiting, CreatedAt: now, Turns: []Turn{}}); err != nil {
		return "", nil, err
	}
	tok := s.token(streamClaims{Tenant: tid, Voice: vsID, Approval: approvalID, To: to, Lang: Lang(locale), Exp: now.Add(s.cfg.TokenTTL).Unix()})
	u := s.cfg.PublicURL
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	}
	return u + "/api/v1/twilio/media", map[string]string{"voice_session": vsID, "token": tok}, nil
}

// --- transports ---

// ServeTwilio runs a Twilio Media Streams connection: handshake, token, then the escalation's
// conversation. It closes conn with a reason on any failure and never panics on bad input.
func (s *Service) ServeTwilio(ctx context.Context, conn Conn) {
	start, err := twilioHandshake(ctx, conn)
	if err != nil {
		s.refused(ctx, TransportTwilio, "", err)
		closeWith(conn, err)
		return
	}
	vsID := start.Parameters["voice_session"]
	c, err := s.redeem(start.Parameters["token"], vsID)
	if err != nil {
		s.refused(ctx, TransportTwilio, vsID, err)
		closeWith(conn, err)
		return
	}
	ctx = audit.WithActor(tenant.WithID(ctx, c.Tenant), audit.Actor{Type: audit.ActorSystem, ID: "voice:" + vsID})
	release, err := s.acquire(c.Tenant, TransportTwilio)
	if err != nil {
		s.refused(ctx, TransportTwilio, vsID, err)
		closeWith(conn, err)
		return
	}
	defer release()
	// The session must still be waiting: a token is single-use in memory, and a session that already had
	// its stream (before a restart too) cannot have another.
	if err := s.update(ctx, vsID, s.begin); err != nil {
		if !isClose(err) {
			err = &CloseError{Code: ClosePolicy, Reason: err.Error()}
		}
		s.refused(ctx, TransportTwilio, vsID, err)
		closeWith(conn, err)
		return
	}
	brain := &escalationBrain{s: s, claims: c, callSID: start.CallSID, vsID: vsID}
	out := newTwilioOut(ctx, conn, start.StreamSID)
	s.converse(ctx, conn, vsID, c.Lang, brain, out, 0, s.cfg.SilenceTimeout, func(ctx context.Context, conv *Conversation) error {
		return pumpTwilio(ctx, conn, start.StreamSID, conv)
	}, func(err error) {
		if errors.Is(err, ErrHangup) && s.calls != nil && start.CallSID != "" && brain.decided {
			// Decided: end the call before the stream, or Twilio would go on to the keypad fallback.
			if herr := s.calls.Hangup(context.WithoutCancel(ctx), start.CallSID); herr != nil {
				s.log.WarnContext(ctx, "hang up the call", slog.String("error", herr.Error()))
			}
		}
		if brain.outcome == "" {
			brain.outcome = "no_answer"
			if err != nil && !errors.Is(err, ErrHangup) && !errors.Is(err, errStreamEnded) {
				brain.outcome = "failed"
			}
		}
		s.end(ctx, vsID, brain.outcome, err)
	})
}

// ServeApp runs the console's voice stream of voice session vsID for the signed-in user in ctx.
func (s *Service) ServeApp(ctx context.Context, conn Conn, vsID string) {
	vs, err := s.Session(ctx, vsID)
	if err == nil && vs.State != SessionWaiting {
		err = errStreamUsed
	}
	if err != nil {
		closeWith(conn, &CloseError{Code: ClosePolicy, Reason: err.Error()})
		return
	}
	release, err := s.acquire(vs.TenantID, TransportApp)
	if err != nil {
		s.refused(ctx, TransportApp, vsID, err)
		closeWith(conn, err)
		return
	}
	defer release()
	if err := s.update(ctx, vsID, s.begin); err != nil {
		closeWith(conn, &CloseError{Code: ClosePolicy, Reason: err.Error()})
		return
	}
	out := &appOut{ctx: ctx, conn: conn}
	brain := &agentBrain{s: s, sessionID: vs.AgentSessionID, lang: vs.Language}
	s.converse(ctx, conn, vsID, vs.Language, brain, out, s.cfg.EchoGuard, 0, func(ctx context.Context, conv *Conversation) error {
		return pumpApp(ctx, conn, conv, out)
	}, func(err error) { s.end(ctx, vsID, "", err) })
}

// errStreamUsed is a second stream for one voice session.
var errStreamUsed = &CloseError{Code: ClosePolicy, Reason: "this voice session already had its stream; create a new one"}

// begin marks a waiting session active; any other state refuses the stream.
func (s *Service) begin(vs *Session) error {
	if vs.State != SessionWaiting {
		return errStreamUsed
	}
	vs.State, vs.StartedAt, vs.Runner = SessionActive, ptr(s.cfg.Now()), s.cfg.Runner
	return nil
}

// errStreamEnded is the far end closing or stopping the stream.
var errStreamEnded = errors.New("the stream ended")

// converse runs a conversation against its transport's reader until either ends, then closes conn with
// the reason, after beforeClose (which records the end: whoever sees the close sees the record). The reader keeps the request's context: cancelling a
// WebSocket read kills the connection before the close frame could say why.
func (s *Service) converse(ctx context.Context, conn Conn, vsID, lang string, brain Brain, out Output, echo, silence time.Duration,
	pump func(context.Context, *Conversation) error, beforeClose func(error)) error {
	j := &journal{s: s, vsID: vsID}
	if vs, err := s.Session(ctx, vsID); err == nil {
		j.agentSession = vs.AgentSessionID
	}
	vad := s.cfg.NewVAD()
	if c, ok := vad.(io.Closer); ok {
		defer c.Close() // Silero's tensors live outside the Go heap
	}
	conv := NewConversation(ConversationConfig{STT: s.cfg.STT, TTS: s.cfg.TTS, Brain: brain, Journal: j, Out: out, VAD: vad,
		Lang: lang, EchoGuard: echo, SilenceTimeout: silence, Frame: s.cfg.Frame, Pacer: s.pacer, Metrics: s.cfg.Metrics, Logger: s.log})
	convCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pumped := make(chan error, 1)
	go func() {
		err := pump(ctx, conv)
		if err == nil || !isClose(err) {
			err = errors.Join(errStreamEnded, err)
		}
		pumped <- err
		cancel(err)
	}()
	err := conv.Run(convCtx)
	if !errors.Is(err, ErrHangup) && !errors.Is(err, ErrSpeechFailed) {
		if cause := context.Cause(convCtx); cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause // the stream ended first: its reason is the session's
		}
	}
	beforeClose(err)
	closeWith(conn, err)
	<-pumped
	return err
}

func isClose(err error) bool {
	var ce *CloseError
	return errors.As(err, &ce)
}

// end records how voice session vsID ended and audits it.
func (s *Service) end(ctx context.Context, vsID, outcome string, err error) {
	reason := "hangup"
	switch {
	case errors.Is(err, ErrHangup):
	case isClose(err), errors.Is(err, ErrSpeechFailed):
		reason = err.Error()
	case err != nil:
		reason = "stream ended: " + err.Error()
	}
	var vs Session
	s.update(ctx, vsID, func(v *Session) error {
		v.State, v.EndedAt, v.EndReason, v.Outcome = SessionEnded, ptr(s.cfg.Now()), clipStr(reason, 300), outcome
		vs = *v
		return nil
	})
	s.mu.Lock()
	s.gc()
	s.mu.Unlock()
	s.record(ctx, "voice.session_ended", vsID, fmt.Sprintf("voice session ended (%s): %s", cmpOr(outcome, vs.Transport), clipStr(reason, 200)),
		map[string]any{"transport": vs.Transport, "outcome": outcome, "turns": len(vs.Turns), "agent_session_id": vs.AgentSessionID,
			"approval_id": vs.ApprovalID})
}

// refused logs and audits a stream refused before its conversation began.
func (s *Service) refused(ctx context.Context, transport, vsID string, err error) {
	s.log.WarnContext(ctx, "voice stream refused", slog.String("transport", transport), slog.String("voice_session", clipStr(vsID, 60)),
		slog.String("error", err.Error()))
	if _, terr := tenant.ID(ctx); terr != nil {
		ctx = tenant.WithID(ctx, tenant.Platform) // before the token: nobody's tenant yet
	}
	s.record(ctx, "voice.stream_refused", vsID, transport+" stream refused: "+clipStr(err.Error(), 200), map[string]any{"transport": transport})
}

func (s *Service) record(ctx context.Context, action, id, desc string, detail map[string]any) {
	if s.audit == nil {
		return
	}
	if _, err := s.audit.Record(context.WithoutCancel(ctx), audit.Record{Action: action, ResourceType: "voice_session", ResourceID: id,
		Description: desc, Detail: detail}); err != nil {
		s.log.ErrorContext(ctx, "audit voice", slog.String("error", err.Error()))
	}
}

func ptr[T any](v T) *T { return &v }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// journal records a conversation's lines: in the voice session, as agent session events, in the audit log.
type journal struct {
	s            *Service
	vsID         string
	agentSession string
}

func (j *journal) line(ctx context.Context, role, text string, interrupted bool, t Timings) {
	now := j.s.cfg.Now()
	j.s.update(ctx, j.vsID, func(v *Session) error {
		v.Turns = append(v.Turns, Turn{Role: role, Text: text, Interrupted: interrupted, Timings: t, At: now})
		return nil
	})
	typ := agentapi.EventVoiceUser
	if role == "agent" {
		typ = agentapi.EventVoiceAgent
	}
	detail := map[string]any{"voice_session": j.vsID, "timings": t, "interrupted": interrupted}
	if j.agentSession != "" {
		in, _ := json.Marshal(detail)
		j.s.agent.Note(ctx, j.agentSession, agentapi.Event{Type: typ, Text: text, Input: in})
	}
	j.s.record(ctx, "voice."+string(typ), j.vsID, role+" said: "+clipStr(text, 300), detail)
}

func (j *journal) User(ctx context.Context, text string, t Timings) {
	j.line(ctx, "user", text, false, t)
}

func (j *journal) Agent(ctx context.Context, text string, interrupted bool, t Timings) {
	j.line(ctx, "agent", text, interrupted, t)
}

func (j *journal) Failure(ctx context.Context, stage string, err error) {
	j.s.record(ctx, "voice.error", j.vsID, stage+" failed: "+clipStr(err.Error(), 300), map[string]any{"stage": stage})
}
