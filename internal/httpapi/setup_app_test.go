package httpapi

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/bus"
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
	// Secret is the JWT secret, the audit key and the link secret.
	Secret []byte
	// Email and Password are the bootstrap admin's.
	Email, Password string
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
	Jobs      *jobs.Runner
	Bus       bus.Bus
	Relay     *outbox.Relay
	Groups    []string // the consumer groups the app subscribes to approval events
}

// BuildApp builds and starts the whole module graph with internal/app's constructor, stopped when the
// test ends. It is set by app_bundle_test.go (package httpapi_test): this package cannot import
// internal/app, which imports it.
var BuildApp func(t testing.TB, p AppParams) AppParts

// setupApp is setup built from the same constructor `it0 serve` uses, instead of wiring each service
// here: the bundle and the binary cannot drift. The job runner is the app's own, started, on the
// bundle's clock.
func setupApp(t testing.TB, open func(testing.TB) *store.DB, engines ...agent.Engine) *testBundle {
	t.Helper()
	if BuildApp == nil {
		t.Fatal("BuildApp is not set (app_bundle_test.go)")
	}
	b := &testBundle{t: t, db: open(t), now: jobstest.NewClock(time.Now().UTC()), logs: &lockedBuffer{}}
	logErrorsOnFailure(t, b.logs)
	b.logger = logging.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if engines == nil {
		engines = []agent.Engine{}
	}
	p := BuildApp(t, AppParams{DB: b.db, Now: b.now.Now, Engines: engines, Logger: b.logger, Secret: testSecret,
		Email: "root@example.com", Password: "root-password",
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
		}})
	b.srv, b.auth, b.audit, b.inv, b.guard, b.ssh = p.Server, p.Auth, p.Audit, p.Inventory, p.Guard, p.SSH
	b.approvals, b.jobs, b.relay = p.Approvals, p.Jobs, p.Relay
	b.agentSvc.Store(p.Agent)
	if m, ok := p.Bus.(*bus.Memory); ok { // the embedded default; settleEvents waits on its groups
		b.bus = m
		b.groups = p.Groups
	}
	b.http = httptest.NewServer(b.srv.Handler())
	t.Cleanup(b.http.Close)
	b.adminTok = b.login("root@example.com", "root-password")
	tenants, err := b.auth.Tenants(context.Background())
	if err != nil || len(tenants) != 1 {
		t.Fatalf("tenants after bootstrap: %v, %v", tenants, err)
	}
	b.defaultID = tenants[0].ID
	return b
}

// notifierFunc adapts a func to ops.Notifier.
type notifierFunc func(ctx context.Context, n ops.Notice) error

func (f notifierFunc) Notify(ctx context.Context, n ops.Notice) error { return f(ctx, n) }

var errInjectedSchedule = errorString("the job database is unreachable (injected)")

type errorString string

func (e errorString) Error() string { return string(e) }
