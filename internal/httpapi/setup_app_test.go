package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/inventory/sshexec"
	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/jobs/jobstest"
	"github.com/it0/it0/internal/logging"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/outbox"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/voice"
)

// AppParams is what a test hands the production constructor (internal/app) through BuildApp.
type AppParams struct {
	DB       *store.DB
	Now      func() time.Time
	Engines  []agent.Engine
	Logger   *slog.Logger
	Notifier ops.Notifier
	// BeforeSchedule runs before every durable job is scheduled (failure injection).
	BeforeSchedule func(ctx context.Context, kind string) error
	// Secret is the JWT secret and the audit key.
	Secret []byte
	// VaultKey is the vault's master key (base64); a restarted app must be given the same one.
	VaultKey string
	// DataDir is the app's data directory (its job table and the tenants' workspaces).
	DataDir string
	// Email and Password are the bootstrap admin's.
	Email, Password string
	// Env holds further IT0_* settings, read as the binary reads the environment (e.g. comm providers).
	Env map[string]string
	// MailTLS is the SMTP client's TLS configuration (the test SMTP server's CA).
	MailTLS *tls.Config
	// Manual keeps the app's own loops from starting (app.Options.Manual): the test runs due jobs and checks.
	Manual bool
	// PublicSelf makes IT0_PUBLIC_URL the bundle's own listener, so that what the app hands out to be
	// reached from outside (a Twilio media stream's URL) reaches the app under test.
	PublicSelf bool
	// Voice shortens the voice gateway's timing and chooses its VAD (app.Options.Voice).
	Voice AppVoice
}

// AppVoice is app.VoiceOptions, which this package cannot name.
type AppVoice struct {
	Frame, SilenceTimeout time.Duration
	NewVAD                func() voice.VAD
}

// AppParts is what the production constructor built and started.
type AppParts struct {
	Server    *Server
	URL       string // where the app's own listener serves Server
	Auth      *auth.Service
	Audit     *audit.Log
	Inventory *inventory.Service
	Guard     *guard.TenantRules
	SSH       *sshexec.Executor
	Agent     *agent.Service
	Approvals *approval.Service
	Comm      *comm.Service
	Voice     *voice.Service
	Jobs      *jobs.Runner
	Bus       bus.Bus
	Relay     *outbox.Relay
	Groups    []string // the consumer groups the app subscribes to approval events
	// SkillsDir is where the agent keeps a tenant's skills.
	SkillsDir func(tenantID string) string
	// Stop stops the app now (the process goes away); it is also stopped when the test ends.
	Stop func()
}

// BuildApp builds and starts the whole module graph with internal/app's constructor, stopped when the
// test ends. It is set by app_bundle_test.go (package httpapi_test): this package cannot import
// internal/app, which imports it.
var BuildApp func(t testing.TB, p AppParams) AppParts

// appKnobs are what a test changes in the app it builds; the zero value is the binary's defaults with
// the bundle's clock, no agent engine and no comm provider.
type appKnobs struct {
	engines []agent.Engine
	// manual: the app's own loops do not run; the test runs due jobs (b.jobs.RunDue) and checks itself.
	manual bool
	env    map[string]string // IT0_* settings (comm providers, public URL)
	mail   *tls.Config       // the SMTP client's TLS configuration
	clock  *jobstest.Clock   // the bundle's clock, when the test needs it before the app exists
	// publicSelf: IT0_PUBLIC_URL is the bundle's own listener (what Twilio is told to reach must reach the app).
	publicSelf bool
	voice      AppVoice // the voice gateway's test timing and VAD
}

// setupApp builds the test bundle from the same constructor `it0 serve` uses (internal/app), with engines
// as the agent engines: the bundle and the binary cannot drift. The app's loops run on the bundle's clock.
func setupApp(t testing.TB, open func(testing.TB) *store.DB, engines ...agent.Engine) *testBundle {
	t.Helper()
	return setupAppWith(t, open, appKnobs{engines: engines})
}

// setupAppWith is setupApp with the knobs k.
func setupAppWith(t testing.TB, open func(testing.TB) *store.DB, k appKnobs) *testBundle {
	t.Helper()
	if BuildApp == nil {
		t.Fatal("BuildApp is not set (app_bundle_test.go)")
	}
	b := &testBundle{t: t, db: open(t), now: k.clock, logs: &lockedBuffer{}}
	if b.now == nil {
		b.now = jobstest.NewClock(time.Now().UTC())
	}
	logErrorsOnFailure(t, b.logs)
	b.logger = logging.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	key := make([]byte, 32)
	rand.Read(key)
	b.params = AppParams{DB: b.db, Now: b.now.Now, Logger: b.logger, Secret: testSecret, VaultKey: base64.StdEncoding.EncodeToString(key),
		DataDir: t.TempDir(), Email: "root@example.com", Password: "root-password", Env: k.env, MailTLS: k.mail, Manual: k.manual,
		PublicSelf: k.publicSelf, Voice: k.voice,
		Notifier: notifierFunc(func(ctx context.Context, n ops.Notice) error {
			if b.notifier == nil {
				return nil
			}
			return b.notifier.Notify(ctx, n)
		}),
		BeforeSchedule: func(context.Context, string) error {
			if b.failSched.Add(-1) >= 0 {
				return errInjectedSchedule
			}
			b.failSched.Store(0)
			return nil
		}}
	b.start(k.engines)
	b.adminTok = b.login("root@example.com", "root-password")
	tenants, err := b.auth.Tenants(context.Background())
	if err != nil || len(tenants) != 1 {
		t.Fatalf("tenants after bootstrap: %v, %v", tenants, err)
	}
	b.defaultID = tenants[0].ID
	return b
}

// start builds and starts the app with engines over the bundle's database and data directory, and
// points the bundle (its services and its HTTP server) at it.
func (b *testBundle) start(engines []agent.Engine) {
	b.t.Helper()
	if engines == nil {
		engines = []agent.Engine{}
	}
	b.params.Engines = engines
	// The bundle's listener exists before the app, so that it can be the app's public URL.
	b.http = httptest.NewUnstartedServer(nil)
	b.t.Cleanup(b.http.Close)
	if b.params.PublicSelf {
		env := map[string]string{}
		for k, v := range b.params.Env {
			env[k] = v
		}
		env["IT0_PUBLIC_URL"] = "http://" + b.http.Listener.Addr().String()
		b.params.Env = env
	}
	p := BuildApp(b.t, b.params)
	b.stopApp = p.Stop
	b.srv, b.auth, b.audit, b.inv, b.guard, b.ssh = p.Server, p.Auth, p.Audit, p.Inventory, p.Guard, p.SSH
	b.approvals, b.jobs, b.relay, b.skillsDir = p.Approvals, p.Jobs, p.Relay, p.SkillsDir
	b.agentSvc.Store(p.Agent)
	b.voice = p.Voice
	b.comm.cur.Store(p.Comm)
	b.groupsMu.Lock()
	b.bus, b.groups = nil, nil
	if m, ok := p.Bus.(*bus.Memory); ok { // the embedded default; settleEvents waits on its groups
		b.bus = m
		b.groups = p.Groups
	}
	b.groupsMu.Unlock()
	b.http.Config.Handler = b.srv.Handler()
	b.http.Start()
}

// restart stops the app, as when the process goes away (its HTTP server too), and starts a new one with
// engines over the same database and data directory (the job table, the workspaces), as `it0 serve`
// started again would. The bundle then reaches the new app.
func (b *testBundle) restart(engines ...agent.Engine) {
	b.t.Helper()
	b.http.Close()
	b.stopApp()
	b.start(engines)
}

// notifierFunc adapts a func to ops.Notifier.
type notifierFunc func(ctx context.Context, n ops.Notice) error

func (f notifierFunc) Notify(ctx context.Context, n ops.Notice) error { return f(ctx, n) }

var errInjectedSchedule = errorString("the job database is unreachable (injected)")

type errorString string

func (e errorString) Error() string { return string(e) }

// subscribe makes h handle approval events as consumer group group on the app's bus (the embedded,
// in-process one) until the test ends; settleEvents then waits for it too. A restart does not carry it over.
func (b *testBundle) subscribe(group string, h approval.Handler) {
	b.t.Helper()
	if b.bus == nil {
		b.t.Fatal("subscribe: the app's bus is not the in-process one")
	}
	b.groupsMu.Lock()
	b.groups = append(b.groups, group)
	b.groupsMu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		approval.Consume(ctx, b.bus, group, "test", b.logger, h)
	}()
	b.t.Cleanup(func() { cancel(); <-done })
}
