package httpapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/it0/it0/internal/inventory/sshtest"
	"github.com/it0/it0/internal/store/storetest"
)

// invFixture is a tenant with a key credential for the test sshd's user.
type invFixture struct {
	*testBundle
	tok    string
	credID string
}

func newInvFixture(t *testing.T, key string) *invFixture {
	b := setupApp(t, storetest.OpenSQLite)
	_, tok := b.newTenant("inv")
	f := &invFixture{testBundle: b, tok: tok}
	r := b.do("POST", "/api/v1/inventory/credentials", tok, map[string]string{"name": "ops-key", "type": "ssh_key", "secret": key})
	if r.status != 201 {
		t.Fatalf("credential: %d %s", r.status, r.raw)
	}
	f.credID = r.body["id"].(string)
	return f
}

func (f *invFixture) server(name string, s *sshtest.Server, extra map[string]any) string {
	f.t.Helper()
	body := map[string]any{"name": name, "host": s.Addr, "port": s.Port, "ssh_user": s.User, "credential_id": f.credID,
		"host_key": s.HostKey, "environment": "prod", "role": "web", "tags": []string{"t1"}}
	for k, v := range extra {
		body[k] = v
	}
	r := f.do("POST", "/api/v1/inventory/servers", f.tok, body)
	if r.status != 201 {
		f.t.Fatalf("server %s: %d %s", name, r.status, r.raw)
	}
	return r.body["id"].(string)
}

func (f *invFixture) exec(ids []string, cmd string, extra ...any) (results []map[string]any, summary map[string]any) {
	f.t.Helper()
	body := map[string]any{"server_ids": ids, "command": cmd}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	r := f.do("POST", "/api/v1/inventory/exec", f.tok, body)
	if r.status != 200 {
		f.t.Fatalf("exec %q: %d %s", cmd, r.status, r.raw)
	}
	for _, x := range r.body["results"].([]any) {
		results = append(results, x.(map[string]any))
	}
	return results, r.body["summary"].(map[string]any)
}

func TestInventoryExecOverSSH(t *testing.T) {
	t.Parallel()
	target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.6", Password: true})
	f := newInvFixture(t, target.UserKey.Reveal())
	web := f.server("web-1", target, nil)

	t.Run("KeyAuthRuns", func(t *testing.T) {
		res, sum := f.exec([]string{web}, "echo hello; id -un")
		if res[0]["status"] != "ok" || res[0]["exit_code"] != float64(0) || !strings.HasPrefix(res[0]["stdout"].(string), "hello\n") ||
			res[0]["risk_level"] != float64(0) || sum["ok"] != float64(1) {
			t.Errorf("got %v %v", res, sum)
		}
	})
	t.Run("NonZeroExit", func(t *testing.T) {
		res, sum := f.exec([]string{web}, "ls /definitely-not-here")
		if res[0]["status"] != "failed" || res[0]["exit_code"] == float64(0) || sum["failed"] != float64(1) {
			t.Errorf("got %v", res)
		}
	})
	t.Run("RefusedRunsNowhere", func(t *testing.T) {
		for cmd, want := range map[string]string{"rm -rf /": "blocked", "systemctl restart nginx": "approval_required",
			"touch /tmp/it0-should-not-exist; reboot": "blocked"} {
			res, sum := f.exec([]string{web}, cmd)
			if res[0]["status"] != want || res[0]["reason"] == "" || sum["refused"] != float64(1) || res[0]["exit_code"] != nil {
				t.Errorf("%q: got %v", cmd, res)
			}
		}
		if _, err := os.Stat("/tmp/it0-should-not-exist"); err == nil {
			t.Error("a refused command ran")
		}
		r := f.do("GET", "/api/v1/inventory/command-records?server_id="+web, f.tok, nil)
		if !strings.Contains(r.raw, `"status":"blocked"`) || !strings.Contains(r.raw, `"status":"approval_required"`) {
			t.Errorf("command records: %s", r.raw)
		}
		a := f.do("GET", "/api/v1/audit/logs?action_type=command.blocked", f.tok, nil)
		if !strings.Contains(a.raw, "rm -rf /") {
			t.Errorf("audit lacks the refusal: %s", a.raw)
		}
	})
	t.Run("PasswordAuth", func(t *testing.T) {
		r := f.do("POST", "/api/v1/inventory/credentials", f.tok, map[string]string{"name": "pw", "type": "ssh_password", "secret": target.Password.Reveal()})
		id := f.server("web-pw", target, map[string]any{"ssh_user": target.PasswordUser, "credential_id": r.body["id"]})
		res, _ := f.exec([]string{id}, "id -un")
		if res[0]["status"] != "ok" || strings.TrimSpace(res[0]["stdout"].(string)) != target.PasswordUser {
			t.Errorf("got %v", res)
		}
	})
	t.Run("WrongKey", func(t *testing.T) {
		r := f.do("POST", "/api/v1/inventory/credentials", f.tok, map[string]string{"name": "wrong", "type": "ssh_key", "secret": newKeyPEM(t)})
		id := f.server("web-wrong-key", target, map[string]any{"credential_id": r.body["id"]})
		res, sum := f.exec([]string{id}, "uptime")
		if res[0]["status"] != "unreachable" || res[0]["stage"] != "auth" || sum["unreachable"] != float64(1) {
			t.Errorf("got %v", res)
		}
	})
	t.Run("ChangedHostKeyRefused", func(t *testing.T) {
		other := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.7"})
		id := f.server("web-moved", target, map[string]any{"host_key": other.HostKey})
		res, _ := f.exec([]string{id}, "uptime")
		if res[0]["status"] != "unreachable" || res[0]["stage"] != "hostkey" {
			t.Errorf("got %v", res)
		}
		a := f.do("GET", "/api/v1/audit/logs?action_type=server.host_key_mismatch&resource_id="+id, f.tok, nil)
		if items := a.body["items"].([]any); len(items) == 0 {
			t.Errorf("mismatch not audited: %s", a.raw)
		}
	})
	t.Run("TOFULearnsKey", func(t *testing.T) {
		id := f.server("web-tofu", target, map[string]any{"host_key": "", "host_key_policy": "tofu"})
		res, _ := f.exec([]string{id}, "true")
		if res[0]["status"] != "ok" {
			t.Fatalf("got %v", res)
		}
		r := f.do("GET", "/api/v1/inventory/servers/"+id, f.tok, nil)
		if !strings.HasPrefix(r.body["host_key_fingerprint"].(string), "SHA256:") || r.body["host_key"] != target.HostKey {
			t.Errorf("key not pinned: %s", r.raw)
		}
		// Ensure a pin-policy server without a key is refused, not silently trusted.
		id = f.server("web-nokey", target, map[string]any{"host_key": ""})
		res, _ = f.exec([]string{id}, "true")
		if res[0]["status"] != "unreachable" || res[0]["stage"] != "hostkey" {
			t.Errorf("unpinned pin-policy server: %v", res)
		}
	})
	t.Run("TimeoutAndStream", func(t *testing.T) {
		res, sum := f.exec([]string{web}, "sleep 30", "timeout_seconds", 1)
		if res[0]["status"] != "timeout" || sum["timed_out"] != float64(1) {
			t.Errorf("got %v", res)
		}
		req, _ := http.NewRequest("POST", f.http.URL+"/api/v1/inventory/exec", strings.NewReader(fmt.Sprintf(`{"selector":{"tags":["t1"],"names":["web-1"]},"command":"echo streamed"}`)))
		req.Header.Set("Authorization", "Bearer "+f.tok)
		req.Header.Set("Accept", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var types []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var line map[string]any
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("bad NDJSON line %q", sc.Text())
			}
			types = append(types, line["type"].(string))
		}
		if resp.Header.Get("Content-Type") != "application/x-ndjson" || strings.Join(types, ",") != "result,summary" {
			t.Errorf("stream: %s %v", resp.Header.Get("Content-Type"), types)
		}
	})
	t.Run("OutputCap", func(t *testing.T) {
		res, _ := f.exec([]string{web}, "head -c 3000000 /dev/zero | tr '\\0' x")
		if res[0]["truncated"] != true || len(res[0]["stdout"].(string)) >= 3000000 {
			t.Errorf("truncated=%v len=%d", res[0]["truncated"], len(res[0]["stdout"].(string)))
		}
	})
	t.Run("BadExec", func(t *testing.T) {
		for _, body := range []string{`{"command":"uptime"}`, `{"server_ids":["x"]}`, `{"server_ids":["nope"],"command":"uptime"}`,
			`{"selector":{"environment":"prod"},"command":"uptime","timeout_seconds":999999}`} {
			if r := f.do("POST", "/api/v1/inventory/exec", f.tok, body); r.status != 400 && r.status != 404 {
				t.Errorf("%s: %d %s", body, r.status, r.raw)
			}
		}
	})
}

func TestInventoryJumpChain(t *testing.T) {
	t.Parallel()
	jump1 := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.2", AllowTCPForwarding: true, LogLevel: "DEBUG1"})
	jump2 := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.3", AllowTCPForwarding: true, LogLevel: "DEBUG1"})
	dst := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.4"})
	f := newInvFixture(t, dst.UserKey.Reveal())
	// Each sshd accepts its own user key; give each hop its own credential.
	cred := func(name string, s *sshtest.Server) string {
		r := f.do("POST", "/api/v1/inventory/credentials", f.tok, map[string]string{"name": name, "type": "ssh_key", "secret": s.UserKey.Reveal()})
		return r.body["id"].(string)
	}
	j1 := f.server("jump1", jump1, map[string]any{"credential_id": cred("k1", jump1), "role": "gateway", "network_type": "public"})
	j2 := f.server("jump2", jump2, map[string]any{"credential_id": cred("k2", jump2), "role": "gateway", "jump_server_id": j1})
	target := f.server("db-1", dst, map[string]any{"role": "db", "jump_server_id": j2})

	res, _ := f.exec([]string{target}, "echo $SSH_CONNECTION")
	if res[0]["status"] != "ok" || !strings.Contains(res[0]["stdout"].(string), fmt.Sprintf("127.0.0.4 %d", dst.Port)) {
		t.Fatalf("through the chain: %v", res)
	}
	for _, c := range []struct {
		srv  *sshtest.Server
		want string
	}{{jump1, fmt.Sprintf("target %s port %d", jump2.Addr, jump2.Port)}, {jump2, fmt.Sprintf("target %s port %d", dst.Addr, dst.Port)}} {
		if !strings.Contains(c.srv.Log(), c.want) {
			t.Errorf("%s did not forward to the next hop (%q):\n%s", c.srv.HostPort(), c.want, c.srv.Log())
		}
	}
	r := f.do("POST", "/api/v1/inventory/servers/"+target+"/check", f.tok, nil)
	hops, _ := r.body["hops"].([]any)
	if r.status != 200 || r.body["ok"] != true || len(hops) != 3 || hops[0].(map[string]any)["name"] != "jump1" {
		t.Errorf("check: %d %s", r.status, r.raw)
	}

	// Ensure a jump chain that loops is refused with a clear error.
	r = f.do("PATCH", "/api/v1/inventory/servers/"+j1, f.tok, map[string]any{"jump_server_id": target})
	if r.status != 400 || !strings.Contains(r.errMessage(), "cycle") || !strings.Contains(r.errMessage(), "jump1") {
		t.Errorf("cycle: %d %s", r.status, r.raw)
	}
	// Ensure what is in use cannot be deleted, and the error names the users.
	if r = f.do("DELETE", "/api/v1/inventory/servers/"+j2, f.tok, nil); r.status != 409 || !strings.Contains(r.errMessage(), "db-1") {
		t.Errorf("delete jump host: %d %s", r.status, r.raw)
	}
	if r = f.do("DELETE", "/api/v1/inventory/credentials/"+f.credID, f.tok, nil); r.status != 409 || !strings.Contains(r.errMessage(), "db-1") {
		t.Errorf("delete credential: %d %s", r.status, r.raw)
	}

	// Ensure check names the failed hop when a jump host is down.
	jump2.Stop()
	r = f.do("POST", "/api/v1/inventory/servers/"+target+"/check", f.tok, nil)
	hops, _ = r.body["hops"].([]any)
	if r.body["ok"] != false || len(hops) != 3 || hops[0].(map[string]any)["ok"] != true || hops[1].(map[string]any)["ok"] != false ||
		hops[1].(map[string]any)["stage"] != "tcp" {
		t.Errorf("check with jump2 down: %s", r.raw)
	}
	// (exec would still succeed here: the pooled chain outlives the stopped listener, as it should.)
}

// TestSecretsStayInVault runs a full credential life and then searches every place a secret could leak:
// API responses, logs, audit entries, the database files.
func TestSecretsStayInVault(t *testing.T) {
	t.Parallel()
	target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.8"})
	dir := t.TempDir()
	b := setupApp(t, func(tb testing.TB) *storeDB { return openSQLiteIn(tb, dir) })
	_, tok := b.newTenant("secrets")
	key := target.UserKey.Reveal()
	password := "Pa55-word-that-must-never-leak-7f3a"
	var responses []string
	r := b.do("POST", "/api/v1/inventory/credentials", tok, map[string]string{"name": "k", "type": "ssh_key", "secret": key})
	responses = append(responses, r.raw)
	credID := r.body["id"].(string)
	r = b.do("POST", "/api/v1/inventory/credentials", tok, map[string]string{"name": "p", "type": "ssh_password", "secret": password})
	responses = append(responses, r.raw)
	r = b.do("POST", "/api/v1/inventory/servers", tok, map[string]any{"name": "s", "host": target.Addr, "port": target.Port,
		"ssh_user": target.User, "credential_id": credID, "host_key": target.HostKey})
	r = b.do("POST", "/api/v1/inventory/exec", tok, map[string]any{"server_ids": []any{r.body["id"]}, "command": "uptime"})
	responses = append(responses, r.raw)
	for _, p := range []string{"/api/v1/inventory/credentials", "/api/v1/inventory/credentials/" + credID, "/api/v1/audit/export"} {
		responses = append(responses, b.do("GET", p, tok, nil).raw)
	}
	// A bad key upload must not echo the key either.
	bad := strings.Replace(key, "\n", "\nX", 3)
	responses = append(responses, b.do("POST", "/api/v1/inventory/credentials", tok, map[string]string{"name": "bad", "type": "ssh_key", "secret": bad}).raw)

	// The PEM's base64 body lines are what a leak would carry.
	var needles []string
	for _, line := range strings.Split(key, "\n") {
		if len(line) > 40 && !strings.HasPrefix(line, "-----") {
			needles = append(needles, line)
		}
	}
	needles = append(needles, password)
	haystacks := map[string]string{"logs": b.logs.String(), "responses": strings.Join(responses, "\n")}
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.db*"))
	more, _ := filepath.Glob(filepath.Join(dir, "*.db*"))
	for _, path := range append(files, more...) {
		data, _ := os.ReadFile(path)
		haystacks[path] = string(data)
	}
	if len(haystacks) < 4 {
		t.Fatalf("found too few places to search: %v", len(haystacks))
	}
	for where, text := range haystacks {
		for _, n := range needles {
			if strings.Contains(text, n) {
				t.Errorf("secret found in %s", where)
			}
		}
	}
	if !strings.Contains(haystacks["responses"], "SHA256:") {
		t.Error("the credential's fingerprint is not shown")
	}
}
