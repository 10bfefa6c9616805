package checks_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/inventory/sshexec"
	"github.com/it0/it0/internal/inventory/sshtest"
	"github.com/it0/it0/internal/jobs/jobstest"
	"github.com/it0/it0/internal/monitor/checks"
	"github.com/it0/it0/internal/monitor/monitortest"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
	"github.com/it0/it0/internal/vault"
	"github.com/it0/it0/internal/vault/vaulttest"
)

// checkBundle is a health check service on a real SQLite store and a real inventory, in one tenant.
type checkBundle struct {
	t      testing.TB
	db     *store.DB
	checks *checks.Service
	inv    *inventory.Service
	ctx    context.Context // the tenant's
	tid    string
	clock  *jobstest.Clock

	mu          sync.Mutex
	transitions []checks.Transition
}

func setupChecks(t testing.TB, tweak ...func(*checks.Config)) *checkBundle {
	t.Helper()
	db := storetest.OpenSQLite(t)
	b := &checkBundle{t: t, db: db, clock: jobstest.NewClock(time.Now().UTC())}
	ten := storetest.NewTenant(t, db, "checks")
	b.ctx, b.tid = tenant.WithID(context.Background(), ten.ID), ten.ID
	log, err := audit.New(db, []byte("0123456789abcdef0123456789abcdef"), b.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	authSvc, err := auth.New(auth.Config{JWTSecret: []byte("0123456789abcdef0123456789abcdef")}, db, log)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(vault.Config{MasterKey: vaulttest.MasterKey(t)}, db)
	if err != nil {
		t.Fatal(err)
	}
	g, err := guard.Default()
	if err != nil {
		t.Fatal(err)
	}
	rules := guard.NewTenantRules(g, func(context.Context) ([]byte, error) { return nil, nil }, 0)
	var inv *inventory.Service
	exe := sshexec.New(sshexec.Config{
		OnHostKeyLearned:  func(id, key string) { inv.OnHostKeyLearned(id, key) },
		OnHostKeyMismatch: func(id, want, got string) { inv.OnHostKeyMismatch(id, want, got) }})
	t.Cleanup(func() { exe.Close() })
	inv = inventory.New(inventory.Config{}, db, v, log, authSvc, rules, exe)
	b.inv = inv
	cfg := checks.Config{Now: b.clock.Now, OnTransition: func(_ context.Context, _ checks.Check, tr checks.Transition) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.transitions = append(b.transitions, tr)
	}}
	for _, f := range tweak {
		f(&cfg)
	}
	b.checks = checks.New(cfg, db, inv, rules, log)
	return b
}

// create stores c through the service, failing the test on error.
func (b *checkBundle) create(c *checks.Check) *checks.Check {
	b.t.Helper()
	if err := b.checks.Create(b.ctx, c); err != nil {
		b.t.Fatalf("create %s: %v", c.Name, err)
	}
	return c
}

// run runs c once and returns the state it is in afterwards, checking that the store agrees.
func (b *checkBundle) run(c *checks.Check) (checks.State, *checks.Result) {
	b.t.Helper()
	r, err := b.checks.Run(b.ctx, c, time.Time{})
	if err != nil {
		b.t.Fatalf("run %s: %v", c.Name, err)
	}
	got, err := b.checks.Get(b.ctx, c.ID)
	if err != nil {
		b.t.Fatal(err)
	}
	if got.State != c.State || got.Streak != c.Streak {
		b.t.Fatalf("stored state %s/%d, in memory %s/%d", got.State, got.Streak, c.State, c.Streak)
	}
	b.clock.Advance(time.Duration(c.IntervalSeconds) * time.Second)
	return c.State, r
}

// expect runs c len(states) times and compares the state after each run.
func (b *checkBundle) expect(c *checks.Check, states ...checks.State) {
	b.t.Helper()
	for i, want := range states {
		if got, r := b.run(c); got != want {
			b.t.Fatalf("run %d: state %s, want %s (result %s: %s)", i+1, got, want, r.Status, r.Message)
		}
	}
}

func (b *checkBundle) transitionCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.transitions)
}

const up, down = checks.Up, checks.Down

// TestCheckHTTP drives an http check against a server that flips to 500 and back.
func TestCheckHTTP(t *testing.T) {
	t.Parallel()
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only /health flips, so parallel subtests probing other paths never see the outage.
		if r.URL.Path == "/health" && failing.Load() {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, `{"status":"healthy","version":"1.2.3"}`)
	}))
	t.Cleanup(srv.Close)

	t.Run("DownOnlyAfterRetries", func(t *testing.T) {
		t.Parallel()
		b := setupChecks(t)
		c := b.create(&checks.Check{Name: "api", Type: checks.TypeHTTP, Target: srv.URL + "/health", IntervalSeconds: 30,
			TimeoutSeconds: 5, Retries: 3})
		if c.State != checks.Unknown {
			t.Fatalf("new check state %s", c.State)
		}
		// Ensure the first result sets the state at once.
		b.expect(c, up)
		failing.Store(true)
		defer failing.Store(false)
		// Ensure two failures are not enough with retries 3, and the third is.
		b.expect(c, up, up, down)
		trs, err := b.checks.Transitions(b.ctx, c.ID, 10)
		if err != nil || len(trs) != 2 || trs[0].From != up || trs[0].To != down || trs[0].Results != 3 || !strings.Contains(trs[0].Message, "HTTP 500") {
			t.Fatalf("transitions: %v %+v", err, trs)
		}
		if n := b.transitionCount(); n != 2 {
			t.Errorf("OnTransition called %d times, want 2", n)
		}
		// Ensure a single good answer while down does not bring it back, and three do.
		failing.Store(false)
		b.expect(c, down, down, up)
		res, err := b.checks.Results(b.ctx, c.ID, 100)
		if err != nil || len(res) != 7 {
			t.Fatalf("results: %v %d", err, len(res))
		}
		if res[0].Status != up || res[0].StatusCode != 200 || res[3].StatusCode != 500 || res[3].Status != down {
			t.Errorf("results: %+v", res[:4])
		}
	})

	t.Run("BodyMatch", func(t *testing.T) {
		t.Parallel()
		b := setupChecks(t)
		for _, tc := range []struct {
			name     string
			contains string
			regex    string
			status   int
			want     checks.State
			msg      string
		}{
			{"ContainsOK", "healthy", "", 0, up, "HTTP 200"},
			{"ContainsMissing", "degraded", "", 0, down, `does not contain "degraded"`},
			{"RegexOK", "", `"version":"1\.\d+\.\d+"`, 0, up, "HTTP 200"},
			{"RegexMiss", "", `"version":"2\.`, 0, down, "does not match"},
			{"ExpectedStatusMiss", "", "", 204, down, "HTTP 200, want 204"},
		} {
			c := b.create(&checks.Check{Name: "body-" + tc.name, Type: checks.TypeHTTP, Target: srv.URL, IntervalSeconds: 30,
				TimeoutSeconds: 5, BodyContains: tc.contains, BodyRegex: tc.regex, ExpectedStatus: tc.status})
			st, r := b.run(c)
			if st != tc.want || !strings.Contains(r.Message, tc.msg) {
				t.Errorf("%s: %s %q, want %s %q", tc.name, st, r.Message, tc.want, tc.msg)
			}
		}
	})

	t.Run("ConnectionRefused", func(t *testing.T) {
		t.Parallel()
		b := setupChecks(t)
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		c := b.create(&checks.Check{Name: "gone", Type: checks.TypeHTTP, Target: "http://" + addr, IntervalSeconds: 10, TimeoutSeconds: 2})
		if st, r := b.run(c); st != down || !strings.Contains(r.Message, "refused") {
			t.Errorf("closed port: %s %q", st, r.Message)
		}
	})
}

// TestCheckTLSExpiry checks certificate expiry against httptest's certificate, whose expiry is known, by
// moving the checker's clock to a few days before it.
func TestCheckTLSExpiry(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	t.Cleanup(srv.Close)
	cert := srv.Certificate()
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	withCA := func(cfg *checks.Config) { cfg.RootCAs = pool }

	t.Run("FarFromExpiry", func(t *testing.T) {
		t.Parallel()
		b := setupChecks(t, withCA)
		c := b.create(&checks.Check{Name: "tls", Type: checks.TypeHTTP, Target: srv.URL, IntervalSeconds: 60, TimeoutSeconds: 5, TLSExpiryDays: 30})
		st, r := b.run(c)
		want := int(cert.NotAfter.Sub(b.clock.Now()) / (24 * time.Hour))
		if st != up || r.TLSDaysLeft == nil || *r.TLSDaysLeft != want || r.Warning != "" {
			t.Errorf("%s %q days_left=%v want %d", st, r.Message, r.TLSDaysLeft, want)
		}
	})
	for _, tc := range []struct {
		name, action string
		want         checks.State
	}{{"NearExpiryDown", checks.TLSExpiryDown, down}, {"NearExpiryWarn", checks.TLSExpiryWarn, up}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupChecks(t, withCA)
			// Ten days and an hour before expiry: ten full days left, under a 30-day threshold.
			b.clock.Set(cert.NotAfter.Add(-10*24*time.Hour - time.Hour))
			c := b.create(&checks.Check{Name: "tls", Type: checks.TypeHTTP, Target: srv.URL, IntervalSeconds: 60, TimeoutSeconds: 5,
				TLSExpiryDays: 30, TLSExpiryAction: tc.action})
			st, r := b.run(c)
			if st != tc.want || r.TLSDaysLeft == nil || *r.TLSDaysLeft != 10 {
				t.Fatalf("%s %q days_left=%v", st, r.Message, r.TLSDaysLeft)
			}
			text := r.Message
			if tc.want == up {
				text = r.Warning
			}
			if !strings.Contains(text, "expires in 10 days") || !strings.Contains(text, "30-day threshold") {
				t.Errorf("message %q warning %q", r.Message, r.Warning)
			}
		})
	}
	t.Run("UntrustedCertificate", func(t *testing.T) {
		t.Parallel()
		b := setupChecks(t)
		c := b.create(&checks.Check{Name: "tls", Type: checks.TypeHTTP, Target: srv.URL, IntervalSeconds: 60, TimeoutSeconds: 5})
		if st, r := b.run(c); st != down || !strings.Contains(r.Message, "certificate") {
			t.Errorf("untrusted: %s %q", st, r.Message)
		}
	})
}

// TestCheckTCP closes a listener under a tcp check.
func TestCheckTCP(t *testing.T) {
	t.Parallel()
	b := setupChecks(t)
	ln := monitortest.Listen(t, "127.0.0.1:0")
	c := b.create(&checks.Check{Name: "db", Type: checks.TypeTCP, Target: ln.Addr().String(), IntervalSeconds: 10, TimeoutSeconds: 2, Retries: 2})
	b.expect(c, up, up)
	ln.Close()
	b.expect(c, up, down, down)
	if got, _ := b.checks.Get(b.ctx, c.ID); got.State != down || !strings.Contains(got.LastMessage, "refused") {
		t.Errorf("stored: %s %q", got.State, got.LastMessage)
	}
}

// TestCheckPing pings localhost with ICMP where this machine permits it, and forces the TCP fallback.
func TestCheckPing(t *testing.T) {
	t.Parallel()
	t.Run("Localhost", func(t *testing.T) {
		t.Parallel()
		b := setupChecks(t)
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		var p int
		fmt.Sscan(port, &p)
		c := b.create(&checks.Check{Name: "lo", Type: checks.TypePing, Target: "127.0.0.1", IntervalSeconds: 10, TimeoutSeconds: 2, FallbackPort: p})
		st, r := b.run(c)
		t.Logf("ping method on this machine: %s (%s)", r.Method, r.Message)
		switch r.Method {
		case checks.PingICMP, checks.PingICMPUnprivileged:
			if st != up || !strings.Contains(r.Message, "echo reply from 127.0.0.1") {
				t.Errorf("icmp: %s %q", st, r.Message)
			}
		case checks.PingTCPFallback:
			if st != up || !strings.Contains(r.Message, "ICMP not permitted") {
				t.Errorf("fallback: %s %q", st, r.Message)
			}
		default:
			t.Errorf("method %q not reported", r.Method)
		}
	})
	t.Run("Fallback", func(t *testing.T) {
		t.Parallel()
		b := setupChecks(t, func(cfg *checks.Config) { cfg.DisableICMP = true })
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		var p int
		fmt.Sscan(port, &p)
		c := b.create(&checks.Check{Name: "fb", Type: checks.TypePing, Target: "127.0.0.1", IntervalSeconds: 10, TimeoutSeconds: 2, FallbackPort: p})
		st, r := b.run(c)
		if st != up || r.Method != checks.PingTCPFallback || !strings.Contains(r.Message, "disabled") {
			t.Errorf("fallback: %s %s %q", st, r.Method, r.Message)
		}
		ln.Close()
		if st, r := b.run(c); st != down || r.Method != checks.PingTCPFallback {
			t.Errorf("fallback, closed: %s %s %q", st, r.Method, r.Message)
		}
		stored, _ := b.checks.Results(b.ctx, c.ID, 1)
		if len(stored) != 1 || stored[0].Method != checks.PingTCPFallback {
			t.Errorf("stored method: %+v", stored)
		}
	})
}

// addSSHServer adds s to the inventory with a key credential, reached through jump when it is not empty,
// and returns its id.
func (b *checkBundle) addSSHServer(name string, s *sshtest.Server, jump string) string {
	b.t.Helper()
	cred, err := b.inv.CreateCredential(b.ctx, inventory.CredentialInput{Name: name + "-key", Type: "ssh_key", Secret: s.UserKey})
	if err != nil {
		b.t.Fatal(err)
	}
	srv := &inventory.Server{Name: name, Host: s.Addr, Port: s.Port, SSHUser: s.User, CredentialID: cred.ID, HostKey: s.HostKey,
		HostKeyPolicy: "pin", Environment: "prod", JumpServerID: jump}
	if err := b.inv.CreateServer(b.ctx, srv); err != nil {
		b.t.Fatal(err)
	}
	return srv.ID
}

// TestCheckSSH runs ssh and custom checks on a real sshd behind a real jump host, then stops the target.
func TestCheckSSH(t *testing.T) {
	t.Parallel()
	b := setupChecks(t)
	bastion := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.20", AllowTCPForwarding: true})
	sshd := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.22"})
	id := b.addSSHServer("web-1", sshd, b.addSSHServer("bastion", bastion, ""))
	ctx := audit.WithActor(b.ctx, audit.Actor{Type: audit.ActorSystem, ID: "monitor"})

	sshCheck := b.create(&checks.Check{Name: "ssh", Type: checks.TypeSSH, ServerID: id, IntervalSeconds: 30, TimeoutSeconds: 10, Retries: 2})
	if sshCheck.Target != id {
		t.Errorf("target %q, want the server id", sshCheck.Target)
	}
	custom := b.create(&checks.Check{Name: "echo", Type: checks.TypeCustom, Target: id, IntervalSeconds: 30, TimeoutSeconds: 10,
		Command: "echo ok", OutputMatch: `^ok\b`})
	wrongCode := b.create(&checks.Check{Name: "exit", Type: checks.TypeCustom, ServerID: id, IntervalSeconds: 30, TimeoutSeconds: 10,
		Command: "test -e /nonexistent-it0-file", ExpectedExitCode: 0})

	st, r := b.run(sshCheck)
	if st != up || !strings.Contains(r.Message, "session established with web-1 through 2 hop(s)") {
		t.Fatalf("ssh: %s %q", st, r.Message)
	}
	r, err := b.checks.Run(ctx, custom, time.Time{})
	if err != nil || custom.State != up || r.ExitCode == nil || *r.ExitCode != 0 || !strings.Contains(r.Message, "ok") {
		t.Fatalf("custom echo ok: %v %s %+v", err, custom.State, r)
	}
	if st, r := b.run(wrongCode); st != down || !strings.Contains(r.Message, "exit code 1, want 0") {
		t.Errorf("custom exit code: %s %q", st, r.Message)
	}
	// With retries 0 one mismatching result is enough.
	custom.OutputMatch = "^nope"
	if st, r := b.run(custom); st != down || !strings.Contains(r.Message, "does not match /^nope/: ok") {
		t.Errorf("output mismatch: %s %s %q", st, r.Status, r.Message)
	}

	// Ensure a command above L0 is refused at creation, naming the field.
	err = b.checks.Create(b.ctx, &checks.Check{Name: "rm", Type: checks.TypeCustom, ServerID: id, IntervalSeconds: 30, TimeoutSeconds: 10,
		Command: "rm -rf /tmp/x"})
	var e *errs.Error
	if !errs.Is(err, errs.Invalid) || !errors.As(err, &e) || e.Field != "command" || !strings.Contains(err.Error(), "L0") {
		t.Errorf("rm -rf at create: %v", err)
	}

	// Stop the target behind the bastion: down only after two failures, naming the hop that failed.
	if err := sshd.Stop(); err != nil {
		t.Fatal(err)
	}
	b.expect(sshCheck, up, down)
	if got, _ := b.checks.Get(b.ctx, sshCheck.ID); !strings.Contains(got.LastMessage, "hop 1 (web-1) failed") {
		t.Errorf("message: %q", got.LastMessage)
	}
}

// TestCheckValidate ensures every bad field is a 400-style error naming it.
func TestCheckValidate(t *testing.T) {
	t.Parallel()
	b := setupChecks(t)
	ok := func() checks.Check {
		return checks.Check{Name: "x", Type: checks.TypeTCP, Target: "127.0.0.1:80", IntervalSeconds: 30, TimeoutSeconds: 5}
	}
	for _, tc := range []struct {
		name  string
		field string
		edit  func(c *checks.Check)
	}{
		{"BadType", "type", func(c *checks.Check) { c.Type = "smtp" }},
		{"IntervalTooShort", "interval_seconds", func(c *checks.Check) { c.IntervalSeconds = 4; c.TimeoutSeconds = 1 }},
		{"TimeoutNotBelowInterval", "timeout_seconds", func(c *checks.Check) { c.TimeoutSeconds = 30 }},
		{"RetriesTooMany", "retries", func(c *checks.Check) { c.Retries = 11 }},
		{"JitterTooBig", "jitter_seconds", func(c *checks.Check) { c.JitterSeconds = 26 }},
		{"NameMissing", "name", func(c *checks.Check) { c.Name = "" }},
		{"TCPTargetNoPort", "target", func(c *checks.Check) { c.Target = "db.internal" }},
		{"HTTPTargetNotURL", "target", func(c *checks.Check) { c.Type, c.Target = checks.TypeHTTP, "ftp://x" }},
		{"BodyRegexBad", "body_regex", func(c *checks.Check) { c.Type, c.Target, c.BodyRegex = checks.TypeHTTP, "http://x", "(" }},
		{"BodyMatchOnTCP", "body_contains", func(c *checks.Check) { c.BodyContains = "ok" }},
		{"SSHWithoutServer", "server_id", func(c *checks.Check) { c.Type, c.Target = checks.TypeSSH, "" }},
		{"SSHUnknownServer", "server_id", func(c *checks.Check) { c.Type, c.Target = checks.TypeSSH, "no-such-server" }},
		{"CustomWithoutCommand", "command", func(c *checks.Check) { c.Type, c.Target = checks.TypeCustom, "" }},
		{"TLSExpiryOnPlainHTTP", "tls_expiry_days", func(c *checks.Check) { c.Type, c.Target, c.TLSExpiryDays = checks.TypeHTTP, "http://x", 5 }},
		{"TLSActionBad", "tls_expiry_action", func(c *checks.Check) {
			c.Type, c.Target, c.TLSExpiryDays, c.TLSExpiryAction = checks.TypeHTTP, "https://x", 5, "page"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.edit(&c)
			err := b.checks.Create(b.ctx, &c)
			if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("got %v, want an invalid error naming %s", err, tc.field)
			}
		})
	}
	c := ok()
	b.create(&c)
	// Ensure a patch is validated like a new check and cannot touch the state.
	if _, err := b.checks.Update(b.ctx, c.ID, []byte(`{"timeout_seconds": 60}`)); !errs.Is(err, errs.Invalid) {
		t.Errorf("bad patch: %v", err)
	}
	got, err := b.checks.Update(b.ctx, c.ID, []byte(`{"interval_seconds": 120, "state": "down"}`))
	if err != nil || got.IntervalSeconds != 120 || got.State != checks.Unknown || got.TimeoutSeconds != 5 {
		t.Errorf("patch: %v %+v", err, got)
	}
}
