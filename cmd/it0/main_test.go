package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/it0/it0/internal/store/storetest"
)

// TestMain lets a test start this very binary as `it0` (IT0_TEST_EXEC=1): the restart test needs a real
// process it can kill -9.
func TestMain(m *testing.M) {
	if os.Getenv("IT0_TEST_EXEC") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child is an `it0 serve` process.
type child struct {
	cmd  *exec.Cmd
	addr string
	out  *syncWriter // its log, read while it runs
}

var listening = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

func startServe(t *testing.T, env []string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(append(os.Environ(), "IT0_TEST_EXEC=1"), env...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, out: &syncWriter{}}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			c.out.Write([]byte(sc.Text() + "\n"))
			if m := listening.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	select {
	case addr, ok := <-found:
		if !ok {
			cmd.Wait()
			t.Fatalf("it0 serve exited before listening")
		}
		c.addr = addr
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("it0 serve did not start in 60s")
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return c
}

func (c *child) call(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+c.addr+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// backendEnv returns env for an `it0 serve` on backend: embedded SQLite (in the data dir), or a fresh
// PostgreSQL database of its own (so the bootstrap runs and nothing is shared with other tests) with the
// secrets that mode requires.
func backendEnv(t *testing.T, backend string, env ...string) []string {
	t.Helper()
	if backend != "postgres" {
		return env
	}
	storetest.RequirePostgres(t)
	b := make([]byte, 5)
	rand.Read(b)
	db := "it0restart_" + hex.EncodeToString(b)
	admin := storetest.PostgresURL()
	if err := exec.Command("psql", admin, "-c", "CREATE DATABASE "+db).Run(); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() { exec.Command("psql", admin, "-c", "DROP DATABASE "+db+" WITH (FORCE)").Run() })
	return append(env, "IT0_DATABASE_URL="+strings.Replace(admin, "/test?", "/"+db+"?", 1),
		"IT0_JWT_SECRET="+strings.Repeat("j", 32), "IT0_AUDIT_KEY="+strings.Repeat("a", 32),
		"IT0_VAULT_MASTER_KEY="+strings.Repeat("ab", 32))
}

// TestRestartAfterKill writes through the API, kills the server with SIGKILL, restarts it, and finds
// everything it acknowledged.
func TestRestartAfterKill(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			env := backendEnv(t, backend, "IT0_BOOTSTRAP_ADMIN_PASSWORD=first-password", "IT0_LOG_LEVEL=info")
			c := startServe(t, env, "--data-dir", dir)
			_, tok := c.call(t, "POST", "/api/v1/auth/login", "", map[string]string{"email": "admin@it0.local", "password": "first-password"})
			token, _ := tok["access_token"].(string)
			st, u := c.call(t, "POST", "/api/v1/auth/users", token, map[string]string{"email": "kept@example.com", "password": "kept-password", "role": "operator"})
			if st != 201 {
				t.Fatalf("create user: %d %v", st, u)
			}
			st, k := c.call(t, "POST", "/api/v1/auth/api-keys", token, map[string]string{"name": "kept"})
			if st != 201 {
				t.Fatalf("create key: %d", st)
			}
			st, tn := c.call(t, "POST", "/api/v1/auth/tenants", token, map[string]string{"name": "Kept", "slug": "kept",
				"admin_email": "admin@kept.example", "admin_password": "kept-admin-pw"})
			if st != 201 {
				t.Fatalf("create tenant: %d %v", st, tn)
			}
			_, v := c.call(t, "GET", "/api/v1/audit/verify", token, nil)
			before := v["checked"].(float64)

			c.cmd.Process.Signal(syscall.SIGKILL)
			c.cmd.Wait()

			c = startServe(t, env, "--data-dir", dir)
			if strings.Contains(c.out.String(), "password (shown once)") {
				t.Error("bootstrap ran again after restart")
			}
			st, _ = c.call(t, "GET", "/api/v1/auth/me", token, nil)
			if st != 200 {
				t.Errorf("token from before the kill: %d (JWT secret not kept?)", st)
			}
			if st, _ = c.call(t, "GET", "/api/v1/auth/me", k["key"].(string), nil); st != 200 {
				t.Errorf("API key after restart: %d", st)
			}
			_, tok = c.call(t, "POST", "/api/v1/auth/login", "", map[string]string{"email": "kept@example.com", "password": "kept-password"})
			if tok["access_token"] == nil {
				t.Errorf("user written before the kill cannot sign in: %v", tok)
			}
			_, tok = c.call(t, "POST", "/api/v1/auth/login", "", map[string]string{"email": "admin@kept.example", "password": "kept-admin-pw"})
			if tok["access_token"] == nil {
				t.Errorf("tenant provisioned before the kill is gone: %v", tok)
			}
			_, v = c.call(t, "GET", "/api/v1/audit/verify", token, nil)
			if v["ok"] != true || v["checked"].(float64) < before {
				t.Errorf("audit after restart: %v (had %v entries)", v, before)
			}
		})
	}
}

// serveListening runs `it0 serve` in this process on a free port with data in dir until it logs that it
// listens; it returns the log and a stop that waits for serve's end.
func serveListening(t *testing.T, dir string, getenv func(string) string) (*syncWriter, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	serr := &syncWriter{}
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir}, getenv, nil, io.Discard, serr)
	}()
	deadline := time.After(90 * time.Second) // generous: a loaded CI machine builds caches on first start
	for !strings.Contains(serr.String(), `"msg":"listening"`) {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("serve: %v", err)
		case <-deadline:
			cancel()
			t.Fatalf("serve did not start in 90s; its log:\n%s", serr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return serr, func() error { cancel(); return <-done }
}

func TestAuditVerifyCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	getenv := func(k string) string {
		return map[string]string{"IT0_BOOTSTRAP_ADMIN_PASSWORD": "first-password"}[k]
	}
	// The bootstrap writes audit entries; wait for the server to be up, then stop it.
	_, stop := serveListening(t, dir, getenv)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"audit", "verify", "--data-dir", dir}, getenv, nil, &out, io.Discard); err != nil {
		t.Fatalf("verify intact chain: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "ok      platform") {
		t.Errorf("output: %s", out.String())
	}
	// Tamper with the platform chain directly in the SQLite file.
	if err := tamperPlatform(dir); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err := run(context.Background(), []string{"audit", "verify", "--data-dir", dir}, getenv, nil, &out, io.Discard)
	if exitCode(err) != 3 || !strings.Contains(err.Error(), "platform at id 1") || !strings.Contains(out.String(), "BROKEN") {
		t.Errorf("verify tampered chain: exit %d, %v\n%s", exitCode(err), err, out.String())
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{}, {"bogus"}, {"audit"}, {"serve", "--no-such-flag"}} {
		err := run(context.Background(), args, func(string) string { return "" }, nil, io.Discard, io.Discard)
		if exitCode(err) != 2 {
			t.Errorf("%v: exit %d (%v), want 2", args, exitCode(err), err)
		}
	}
	err := run(context.Background(), []string{"serve", "--log-level", "loud", "--token-ttl", "1s"}, func(string) string { return "" }, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "log-level") || !strings.Contains(err.Error(), "token-ttl") {
		t.Errorf("bad config: %v", err)
	}
	var out bytes.Buffer
	run(context.Background(), []string{"serve", "-list-targets"}, func(string) string { return "" }, nil, &out, io.Discard)
	if !strings.Contains(out.String(), "all\n  ↳ api") {
		t.Errorf("list-targets: %s", out.String())
	}
}
