package app

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/voice"
)

// Options replaces, for tests, the parts New would otherwise build from Config or the environment. The
// zero value changes nothing, which is what `it0 serve` uses. Tests build the whole module graph through
// New and Start with these, so the HTTP test bundle and the binary share one wiring and cannot drift
// (the pattern of nomad's command/agent/testagent.go).
type Options struct {
	// Store is used instead of opening one from DataDir/DatabaseURL (a test's random PostgreSQL schema
	// prefix or temporary SQLite directory). It is migrated at start; the caller closes it.
	Store *store.DB
	// Now is the clock every module reads (audit, auth, agent, approvals, jobs, ops, comm, monitoring);
	// nil is the wall clock.
	Now func() time.Time
	// Engines, when not nil, are the agent engines instead of those Config describes (claude CLI,
	// Anthropic, OpenAI); an empty non-nil slice leaves every engine unavailable.
	Engines []agent.Engine
	// Argon2 is the password hashing cost; zero is auth.DefaultArgon2. Tests lower it to stay quick.
	Argon2 auth.Argon2Params
	// Notifier, when set, hears of standing-order runs instead of the comm module.
	Notifier ops.Notifier
	// BeforeSchedule, when set, runs before every durable job is scheduled; its error is returned in
	// place of scheduling (a test injects "the job database is unreachable").
	BeforeSchedule func(ctx context.Context, kind string) error
	// MailTLS, when set, is the SMTP client's TLS configuration (a test trusts its SMTP server's CA).
	MailTLS *tls.Config
	// Manual keeps the loops that act on their own from starting: the job runner (the test calls
	// Jobs.RunDue), the health check scheduler (Checks.Run), the metrics collector (the collect endpoint),
	// and the periodic repair and interrupted-run passes (they still run once at start). A test that moves
	// its clock then decides when the work it made due runs, and nothing else runs it in between.
	Manual bool
	// PartTarget lets a test run part of IT0 (a -target naming some deploy targets) on its own Store and
	// the in-process bus, because the test itself runs the other parts over the same store (a benchmark
	// with its own comm service). A real split refuses this: its processes share nothing else.
	PartTarget bool
	// Voice shortens the voice gateway's timing and chooses its VAD; the zero value changes nothing.
	Voice VoiceOptions
}

// VoiceOptions are the voice gateway's test knobs (voice.Config's fields of the same names).
type VoiceOptions struct {
	// Frame is the pacing interval of outbound audio; zero is real time (20 ms). A test plays the agent's
	// speech faster than it lasts.
	Frame time.Duration
	// SilenceTimeout is how long a call waits for the person to speak; zero is the default (8 s).
	SilenceTimeout time.Duration
	// NewVAD, when set, makes each stream's VAD instead of the one IT0_VAD selects (a test opens Silero
	// from its own cache, or skips without it).
	NewVAD func() voice.VAD
}

// SetOptions sets the test options; call it after New and before Start.
func (a *App) SetOptions(o Options) { a.opts = o }

// SkillsDir is the directory the agent keeps tenant tid's skills in, for Claude Code to read.
func (a *App) SkillsDir(tid string) string {
	return filepath.Join(a.workspaceDir(tid), ".claude", "skills")
}

// engines returns the test engines when set, else built.
func (a *App) engines(built []agent.Engine) []agent.Engine {
	if a.opts.Engines != nil {
		return a.opts.Engines
	}
	return built
}

// loops reports whether the modules start their own background loops (always, except in a Manual test).
func (a *App) loops() bool { return !a.opts.Manual }
