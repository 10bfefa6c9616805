package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/inventory/sshtest"
)

// inProcess is `it0 serve` running inside the test through run().
type inProcess struct {
	addr   string
	stop   func() error
	stderr *syncWriter
}

var listeningAddr = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

func serveInProcess(t *testing.T, dir string, env map[string]string) (*inProcess, error) {
	t.Helper()
	getenv := func(k string) string { return env[k] }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	p := &inProcess{stderr: &syncWriter{}}
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir}, getenv, nil, io.Discard, p.stderr)
	}()
	deadline := time.After(90 * time.Second) // generous: a loaded CI machine builds caches on first start
	for {
		if m := listeningAddr.FindStringSubmatch(p.stderr.String()); m != nil {
			p.addr = m[1]
			break
		}
		select {
		case err := <-done:
			cancel()
			return nil, err
		case <-deadline:
			cancel()
			t.Fatalf("serve did not start in 90s; its log:\n%s", p.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	stopped := false
	p.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { p.stop() })
	return p, nil
}

func (p *inProcess) api(t *testing.T, method, path, token string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, "http://"+p.addr+path, bytes.NewReader(b))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, m)
	}
	return m
}

// addPasswordServer registers target as server web-1, signing in with its password.
func (p *inProcess) addPasswordServer(t *testing.T, tok string, target *sshtest.Server) {
	t.Helper()
	cred := p.api(t, "POST", "/api/v1/inventory/credentials", tok, map[string]string{"name": "pw", "type": "ssh_password", "secret": target.Password.Reveal()})
	p.api(t, "POST", "/api/v1/inventory/servers", tok, map[string]any{"name": "web-1", "host": target.Addr, "port": target.Port,
		"ssh_user": target.PasswordUser, "credential_id": cred["id"], "host_key": target.HostKey})
}

// events polls session sid's events after seq after until one of type until (or an error) arrives, for
// at most within; describe adds context to the failure. The events API has no long-poll (the WebSocket is
// tested elsewhere).
func (p *inProcess) events(t *testing.T, tok, sid string, after int64, until agent.EventType, within time.Duration, describe func() string) []agent.Event {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var evs []agent.Event
		raw, _ := json.Marshal(p.api(t, "GET", fmt.Sprintf("/api/v1/agent/sessions/%s/events?after=%d", sid, after), tok, nil)["events"])
		json.Unmarshal(raw, &evs)
		for _, e := range evs {
			if e.Type == until || e.Type == agent.EventError {
				return evs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event in %s; got %+v%s", until, within, evs, describe())
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-t.Context().Done():
			t.FailNow()
		}
	}
}

func TestCLIExecImportAndVault(t *testing.T) {
	t.Parallel()
	jump := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.9", AllowTCPForwarding: true})
	target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.10"})
	dir := t.TempDir()
	env := map[string]string{"IT0_BOOTSTRAP_ADMIN_PASSWORD": "first-password"}
	p, err := serveInProcess(t, dir, env)
	if err != nil {
		t.Fatal(err)
	}
	tok := p.api(t, "POST", "/api/v1/auth/login", "", map[string]string{"email": "admin@it0.local", "password": "first-password"})["access_token"].(string)
	key := p.api(t, "POST", "/api/v1/auth/api-keys", tok, map[string]string{"name": "cli"})["key"].(string)
	cli := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, func(k string) string {
			return map[string]string{"IT0_URL": "http://" + p.addr, "IT0_TOKEN": key}[k]
		}, nil, &out, &errOut)
		return out.String() + errOut.String(), err
	}

	// Import an ssh_config: the CLI uploads each IdentityFile as a credential and links the ProxyJump.
	keyDir := t.TempDir()
	for name, s := range map[string]*sshtest.Server{"jump_key": jump, "target_key": target} {
		if err := os.WriteFile(filepath.Join(keyDir, name), []byte(s.UserKey.Reveal()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	config := fmt.Sprintf(`# fleet
Host bastion
    HostName %s
    Port %d
    User %s
    IdentityFile %s

Host app-1
    HostName %s
    Port %d
    ProxyJump bastion
    IdentityFile %s

Host *
    User %s
`, jump.Addr, jump.Port, jump.User, filepath.Join(keyDir, "jump_key"), target.Addr, target.Port,
		filepath.Join(keyDir, "target_key"), target.User)
	cfgPath := filepath.Join(t.TempDir(), "ssh_config")
	os.WriteFile(cfgPath, []byte(config), 0o600)
	out, err := cli("servers", "import", "--env", "staging", cfgPath)
	if err != nil || !strings.Contains(out, "created 2") || !strings.Contains(out, "uploaded") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	// The imported servers have no host keys yet: pin them as an admin would.
	servers := p.api(t, "GET", "/api/v1/inventory/servers?environment=staging", key, nil)["items"].([]any)
	for _, s := range servers {
		m := s.(map[string]any)
		hk := jump.HostKey
		if m["name"] == "app-1" {
			hk = target.HostKey
			if m["jump_server_id"] == nil {
				t.Errorf("app-1 has no jump host: %v", m)
			}
		}
		p.api(t, "PATCH", "/api/v1/inventory/servers/"+m["id"].(string), key, map[string]string{"host_key": hk})
	}

	out, err = cli("exec", "--env", "staging", "--", "echo", "hi-from-$(hostname)")
	if err != nil || !strings.Contains(out, "app-1") || !strings.Contains(out, "2 servers: 2 ok") {
		t.Fatalf("exec: %v\n%s", err, out)
	}
	out, err = cli("exec", "--server", "app-1", "--", "rm -rf /")
	if exitCode(err) != 1 || !strings.Contains(out, "blocked") {
		t.Errorf("L3 exec: exit %d\n%s", exitCode(err), out)
	}
	if _, err := cli("exec", "--", "uptime"); exitCode(err) != 2 {
		t.Errorf("exec without selection: %v", err)
	}

	// Vault: the wrong master key fails closed at start; rotation keeps every credential readable.
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	var secrets struct {
		VaultMasterKey string `json:"vault_master_key"`
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "secrets.json"))
	json.Unmarshal(raw, &secrets)
	newKey := strings.Repeat("ab", 32)
	wrong := map[string]string{"IT0_BOOTSTRAP_ADMIN_PASSWORD": "first-password", "IT0_VAULT_MASTER_KEY": newKey}
	if _, err := serveInProcess(t, dir, wrong); err == nil || !strings.Contains(err.Error(), "master key") {
		t.Fatalf("start with the wrong master key: %v", err)
	}
	var rot bytes.Buffer
	rotEnv := map[string]string{"IT0_VAULT_MASTER_KEY": newKey, "IT0_VAULT_PREVIOUS_KEYS": secrets.VaultMasterKey}
	if err := run(context.Background(), []string{"vault", "rotate", "--data-dir", dir}, func(k string) string { return rotEnv[k] },
		nil, &rot, io.Discard); err != nil || !strings.Contains(rot.String(), "re-sealed 1 data keys") {
		t.Fatalf("rotate: %v %s", err, rot.String())
	}
	p, err = serveInProcess(t, dir, wrong) // the new key alone now opens everything
	if err != nil {
		t.Fatalf("start with the new key after rotation: %v", err)
	}
	out, err = cli("exec", "--server", "app-1", "--", "true")
	if err != nil || !strings.Contains(out, "1 ok") {
		t.Errorf("exec after rotation: %v\n%s", err, out)
	}
}
