package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"

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
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
	"github.com/it0/it0/internal/vault"
	"github.com/it0/it0/internal/vault/vaulttest"
	gossh "golang.org/x/crypto/ssh"
)

// testBundle is a running API on one backend, with the bootstrap admin signed in.
type testBundle struct {
	t          testing.TB
	srv        *Server
	http       *httptest.Server
	db         *store.DB
	auth       *auth.Service
	audit      *audit.Log
	now        *jobstest.Clock // the clock every service reads
	logs       *lockedBuffer
	jobs       *jobs.Runner
	agentSvc   atomic.Pointer[agent.Service]
	approvals  *approval.Service // built with the job runner; sweeps on it
	bus        *bus.Memory       // the in-process bus approval events travel on, as in the embedded default
	relay      *outbox.Relay
	groupsMu   sync.Mutex
	groups     []string     // consumer groups subscribed on bus
	failSched  atomic.Int32 // that many next Schedule calls fail (a crash between an insert and its job)
	skillsRoot string
	skillsDir  func(tenantID string) string // where the app keeps a tenant's skills
	params     AppParams                    // what the app was built with (a restart builds it again)
	stopApp    func()                       // stops the running app
	inv        *inventory.Service
	guard      *guard.TenantRules
	logger     *slog.Logger
	ssh        *sshexec.Executor
	adminTok   string // bootstrap admin: default tenant admin and platform admin
	defaultID  string
	comm       commState    // the comm service serve builds and its providers (comm_test.go)
	notifier   ops.Notifier // who hears of standing-order runs; nil = nobody
}

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// fastArgon keeps argon2id real but cheap, so tests that sign in often stay quick.
var fastArgon = auth.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1}

// New tests should use setupApp (setup_app_test.go), built from internal/app's constructor; setup wires
// the services by hand and remains for the tests that still need its seams (TODO(bundle) on each).
func setup(t testing.TB, open func(testing.TB) *store.DB) *testBundle {
	t.Helper()
	return setupWith(t, open)
}

// setupWith is setup with agent engines (none: every engine is unavailable).
func setupWith(t testing.TB, open func(testing.TB) *store.DB, engines ...agent.Engine) *testBundle {
	t.Helper()
	db := open(t)
	b := &testBundle{t: t, db: db, now: jobstest.NewClock(time.Now().UTC())}
	clock := b.now.Now
	log, err := audit.New(db, testSecret, clock)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := auth.New(auth.Config{JWTSecret: testSecret, Argon2: fastArgon, Now: clock}, db, log)
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Bootstrap(context.Background(), "root@example.com", "root-password")
	if err != nil {
		t.Fatal(err)
	}
	b.defaultID = res.Tenant.ID
	b.auth, b.audit = svc, log
	b.logs = &lockedBuffer{}
	logErrorsOnFailure(t, b.logs)
	logger := logging.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v, err := vault.New(vault.Config{MasterKey: vaulttest.MasterKey(t)}, db)
	if err != nil {
		t.Fatal(err)
	}
	base, err := guard.Default()
	if err != nil {
		t.Fatal(err)
	}
	g := guard.NewTenantRules(base, func(ctx context.Context) ([]byte, error) {
		v, err := db.SettingGet(ctx, agent.RiskRulesSetting)
		return []byte(v), err
	}, 0)
	var inv *inventory.Service
	b.ssh = sshexec.New(sshexec.Config{Logger: logger,
		OnHostKeyLearned:  func(id, key string) { inv.OnHostKeyLearned(id, key) },
		OnHostKeyMismatch: func(id, want, got string) { inv.OnHostKeyMismatch(id, want, got) }})
	t.Cleanup(func() { b.ssh.Close() })
	inv = inventory.New(inventory.Config{Logger: logger, Now: clock}, db, v, log, svc, g, b.ssh)
	b.inv, b.guard, b.logger = inv, g, logger
	b.startBus()
	b.serve(newAgentService(t, b, engines...))
	b.adminTok = b.login("root@example.com", "root-password")
	return b
}

// serve (re)starts the HTTP API over b's services with agent service ag.
func (b *testBundle) serve(ag *agent.Service) {
	orders := ops.NewOrders(b.db, ag, b.inv, b.audit, jobs.CheckCron, nil)
	orders.SetReports(b.notifier, b.auth.TenantLocale, b.logger)
	orders.SetPeople(func(ctx context.Context, id string) string {
		if u, err := b.auth.User(ctx, id); err == nil {
			return u.Email
		}
		return id
	})
	ag.AddTools(orders)
	ag.OnRunEnd(orders.OnSessionEnd)
	orders.SetApprovals(b.approvals)
	b.srv = New(Deps{Auth: b.auth, Audit: b.audit, Inventory: b.inv, Agent: ag, Approvals: b.approvals, Ops: ops.New(b.db, ag, b.audit, nil), Orders: orders, Ready: map[string]Pinger{"database": b.db},
		Checks: b.newChecks(), Comm: b.newComm(ag, orders),
		Version: "test", Logger: b.logger, Monitoring: b.newMonitoring(ag, orders)})
	b.http = httptest.NewServer(b.srv.Handler())
	b.t.Cleanup(b.http.Close)
}

// response is a decoded reply.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r response) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// do sends body (a string is sent as is, anything else as JSON) with token as the bearer.
func (r response) errMessage() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

func (b *testBundle) do(method, path, token string, body any, headers ...string) response {
	b.t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		j, _ := json.Marshal(v)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, b.http.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.http.Client().Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	json.Unmarshal(raw, &r.body)
	return r
}

func (b *testBundle) login(email, password string) string {
	b.t.Helper()
	r := b.do("POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": password})
	if r.status != 200 {
		b.t.Fatalf("login %s: %d %s", email, r.status, r.raw)
	}
	return r.body["access_token"].(string)
}

// newTenant provisions a tenant through the API and returns its id and its admin's token.
func (b *testBundle) newTenant(slug string) (id, token string) {
	b.t.Helper()
	r := b.do("POST", "/api/v1/auth/tenants", b.adminTok, map[string]string{"name": slug, "slug": slug,
		"admin_email": "admin@" + slug + ".example", "admin_password": "password-" + slug})
	if r.status != 201 {
		b.t.Fatalf("create tenant: %d %s", r.status, r.raw)
	}
	return r.body["id"].(string), b.login("admin@"+slug+".example", "password-"+slug)
}

// newUser creates a user with role in the tenant of adminTok and returns its id and token.
func (b *testBundle) newUser(adminTok, email string, role auth.Role) (id, token string) {
	b.t.Helper()
	r := b.do("POST", "/api/v1/auth/users", adminTok, map[string]string{"email": email, "password": "password-123", "role": string(role)})
	if r.status != 201 {
		b.t.Fatalf("create user: %d %s", r.status, r.raw)
	}
	return r.body["id"].(string), b.login(email, "password-123")
}

func forEachBackend(t *testing.T, fn func(t *testing.T, open func(testing.TB) *store.DB)) {
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, be.Open)
		})
	}
}

func auditFilterAll() audit.Filter { return audit.Filter{Limit: 1000} }

// logErrorsOnFailure prints the bundle's error lines when t fails, so a 500 in a test names its cause.
func logErrorsOnFailure(t testing.TB, logs *lockedBuffer) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, `"level":"ERROR"`) {
				t.Log(line)
			}
		}
	})
}

// lockedBuffer collects logs written from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newKeyPEM returns a fresh unencrypted ed25519 private key in OpenSSH PEM form.
func newKeyPEM(t testing.TB) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(blk))
}

type storeDB = store.DB

// openSQLiteIn opens a SQLite store in dir (so a test can read the files afterwards).
func openSQLiteIn(tb testing.TB, dir string) *store.DB {
	tb.Helper()
	db, err := store.Open(context.Background(), store.Config{DataDir: dir})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// newAgentService builds the agent service on b's store and services; closed when the test ends.
func newAgentService(t testing.TB, b *testBundle, engines ...agent.Engine) *agent.Service {
	t.Helper()
	if b.skillsRoot == "" {
		b.skillsRoot = t.TempDir()
	}
	root := b.skillsRoot
	if b.jobs == nil {
		jdb := jobstest.Open(t, jobs.SQLite)
		cfg := jdb.Config(t)
		cfg.Now = b.now.Now
		b.jobs = jobstest.New(t, cfg)
		b.registerAgentJobs(b.jobs)
	}
	schedule := func(ctx context.Context, kind string, args any, at time.Time, key string) error {
		if b.failSched.Add(-1) >= 0 {
			return errors.New("the job database is unreachable (injected)")
		}
		b.failSched.Store(0)
		return b.jobs.Schedule(ctx, kind, args, at, key)
	}
	if b.approvals == nil {
		b.approvals = approval.New(approval.Config{Schedule: schedule, Notify: b.relay.Notify, Now: b.now.Now, Logger: b.logger}, b.db, b.audit)
	}
	svc, err := agent.New(agent.Config{Logger: b.logger, RiskRules: b.guard, PromptHint: ops.PromptHint, Approvals: b.approvals,
		Now: b.now.Now, SkillsRoot: func(tid string) string { return filepath.Join(root, tid) }},
		b.db, engines, b.inv, b.auth, b.audit, b.guard, agent.NewHub(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	b.agentSvc.Store(svc)
	return svc
}

// registerAgentJobs registers the agent's durable jobs and the approval sweeper's on r. The handlers reach
// whichever agent service is current (a test may "restart" it).
func (b *testBundle) registerAgentJobs(r *jobs.Runner) {
	for _, kind := range agent.JobKinds {
		r.Register(kind, func(ctx context.Context, j *jobs.Job) error {
			return b.agentSvc.Load().HandleJob(tenant.WithID(ctx, j.TenantID), j.Kind, j.Args)
		})
	}
	for _, kind := range approval.JobKinds {
		r.Register(kind, func(ctx context.Context, j *jobs.Job) error {
			err := b.approvals.HandleJob(tenant.WithID(ctx, j.TenantID), j.Kind)
			var again *approval.ErrRunAgain
			if errors.As(err, &again) {
				return jobs.Snooze(again.After)
			}
			return err
		})
	}
}

// startBus starts the in-process bus and the outbox relay, and subscribes the current agent service to
// approval events, as internal/app does for the embedded default.
func (b *testBundle) startBus() {
	b.bus = bus.NewMemory(bus.Config{})
	b.relay = outbox.NewRelay(outbox.RelayConfig{Poll: 100 * time.Millisecond, Logger: b.logger}, b.db, b.bus, func(ctx context.Context) ([]string, error) {
		list, err := b.db.TenantList(ctx)
		ids := make([]string, len(list))
		for i, t := range list {
			ids[i] = t.ID
		}
		return ids, err
	})
	b.relay.Start(context.Background())
	b.t.Cleanup(func() {
		b.relay.Stop()
		b.bus.Close()
	})
	b.subscribe("agent", func(ctx context.Context, e approval.Event) error {
		if ag := b.agentSvc.Load(); ag != nil {
			return ag.OnApprovalEvent(ctx, e)
		}
		return errors.New("no agent service yet")
	})
}

// settleEvents publishes what waits in the outbox and returns once every group subscribed on the bundle's
// bus has handled it (a test then sees what the subscribers did, as a user would a moment later).
func (b *testBundle) settleEvents() {
	b.t.Helper()
	ctx := context.Background()
	if _, err := b.relay.RunOnce(ctx); err != nil {
		b.t.Fatalf("relay: %v", err)
	}
	b.groupsMu.Lock()
	groups := slices.Clone(b.groups)
	b.groupsMu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for _, g := range groups {
		for {
			st, err := b.bus.Stats(ctx, outbox.StreamApprovals, g)
			if err == nil && st.Lag == 0 && st.Pending == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.t.Fatalf("group %s did not handle the approval events: %+v, %v", g, st, err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// subscribe makes h handle approval events as consumer group group on the bundle's bus, until the test ends.
func (b *testBundle) subscribe(group string, h approval.Handler) {
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
