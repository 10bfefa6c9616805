package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
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
	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/outbox"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/voice"
	gossh "golang.org/x/crypto/ssh"
)

// testBundle is IT0 built by internal/app's constructor (setupApp, setup_app_test.go) on one backend,
// served over HTTP, with the bootstrap admin signed in; its fields are the app's services.
type testBundle struct {
	t         testing.TB
	srv       *Server
	http      *httptest.Server
	db        *store.DB
	auth      *auth.Service
	audit     *audit.Log
	now       *jobstest.Clock // the clock every service reads
	logs      *lockedBuffer
	jobs      *jobs.Runner // the app's job runner (started, unless the bundle is manual)
	agentSvc  atomic.Pointer[agent.Service]
	approvals *approval.Service
	bus       *bus.Memory // the in-process bus approval events travel on, as in the embedded default
	relay     *outbox.Relay
	groupsMu  sync.Mutex
	groups    []string                     // consumer groups subscribed on bus
	failSched atomic.Int32                 // that many next Schedule calls fail (a crash between an insert and its job)
	skillsDir func(tenantID string) string // where the app keeps a tenant's skills
	params    AppParams                    // what the app was built with (a restart builds it again)
	stopApp   func()                       // stops the running app
	inv       *inventory.Service
	guard     *guard.TenantRules
	logger    *slog.Logger
	ssh       *sshexec.Executor
	adminTok  string // bootstrap admin: default tenant admin and platform admin
	defaultID string
	comm      commState      // the app's comm service (comm_test.go)
	voice     *voice.Service // the app's voice gateway
	notifier  ops.Notifier   // who hears of standing-order runs; nil = nobody
}

var testSecret = []byte("0123456789abcdef0123456789abcdef")

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
	type sub struct{ stream, group string }
	var subs []sub
	for _, g := range groups {
		subs = append(subs, sub{outbox.StreamApprovals, g})
	}
	if b.bus != nil { // ops takes the monitor's events (check transitions, alerts): internal/app targets.go
		subs = append(subs, sub{monitor.StreamEvents, "ops"}, sub{monitor.StreamSamples, "ops"}, // and feeds threshold orders
			sub{ops.StreamEvents, "reports"}) // and reports the orders' runs
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, g := range subs {
		for {
			st, err := b.bus.Stats(ctx, g.stream, g.group)
			if err == nil && st.Lag == 0 && st.Pending == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.t.Fatalf("group %s did not handle the events of %s: %+v, %v", g.group, g.stream, st, err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}
