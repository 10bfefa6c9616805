package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	err := run(context.Background(), args, getenv, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

func TestGuardCheck(t *testing.T) {
	t.Parallel()

	// Ensure the human output names level, reason and each match.
	t.Run("Human", func(t *testing.T) {
		t.Parallel()
		out, _, err := runCLI(t, nil, "", "guard", "check", "--", "ls;", "rm", "-rf", "/")
		if exitCode(err) != 3 || err.Error() != "" {
			t.Fatalf("exit %d (%v), want a silent 3 for L3", exitCode(err), err)
		}
		for _, want := range []string{"level:  L3", "rm-root", "rm -rf /", "ls"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	// Ensure --json prints {"level":N,"reason":…,"matches":[…]} and exits with the level too.
	t.Run("JSON", func(t *testing.T) {
		t.Parallel()
		out, _, err := runCLI(t, nil, "", "guard", "check", "--json", "--", `ssh db1 'psql -c "DROP DATABASE x"'`)
		if exitCode(err) != 3 {
			t.Fatalf("exit %d (%v), want 3", exitCode(err), err)
		}
		var v struct {
			Level   int      `json:"level"`
			Reason  string   `json:"reason"`
			Hosts   []string `json:"hosts"`
			Matches []struct {
				Command, Rule, Reason string
				Level                 int
			} `json:"matches"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if v.Level != 3 || v.Reason == "" || len(v.Matches) == 0 || len(v.Hosts) != 1 {
			t.Errorf("verdict = %+v", v)
		}
	})

	t.Run("RulesFile", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		tenant := filepath.Join(dir, "tenant.yaml")
		if err := os.WriteFile(tenant, []byte("commands:\n  - {names: [mytool], level: L0, reason: our read-only tool}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, _, err := runCLI(t, nil, "", "guard", "check", "--json", "--tenant-rules", tenant, "--", "mytool")
		if err != nil || !strings.HasPrefix(out, `{"level":0`) {
			t.Fatalf("out = %s, err = %v", out, err)
		}
		bad := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(bad, []byte("version: 1\nbogus: true\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err = runCLI(t, nil, "", "guard", "check", "--rules", bad, "--", "ls")
		if err == nil || !strings.Contains(err.Error(), "line 2") || exitCode(err) != guardExitConfig {
			t.Fatalf("err = %v (exit %d), want a line number and exit %d", err, exitCode(err), guardExitConfig)
		}
	})

	// Ensure --targets applies the blast radius and the verdict says why (exit 2: the raised level).
	t.Run("Targets", func(t *testing.T) {
		t.Parallel()
		out, _, err := runCLI(t, nil, "", "guard", "check", "--targets", "prod:web=11,dev", "--", "systemctl", "restart", "nginx")
		if exitCode(err) != 2 || !strings.Contains(out, "level:  L2") || !strings.Contains(out, "prod-fanout") {
			t.Fatalf("out = %s, err = %v", out, err)
		}
	})

	// Ensure the exit status is the level, as the README promises scripts.
	for cmd, level := range map[string]int{"df -h": 0, "touch /srv/app/flag": 1, "systemctl stop nginx": 2, "rm -rf /": 3} {
		t.Run("ExitLevel/"+cmd, func(t *testing.T) {
			t.Parallel()
			_, _, err := runCLI(t, nil, "", "guard", "check", "--", cmd)
			if got := exitCode(err); (err == nil) != (level == 0) || err != nil && got != level {
				t.Fatalf("guard check %q: exit %d (%v), want %d", cmd, got, err, level)
			}
		})
	}

	// Ensure usage mistakes exit 2, and 64 for guard check's (2 is L2 there).
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"guard"}, 2},
		{[]string{"guard", "bogus"}, 2},
		{[]string{"guard", "check"}, guardExitUsage},
		{[]string{"guard", "check", "--targets", "prod=0", "--", "ls"}, guardExitUsage},
		{[]string{"guard", "check", "--json"}, guardExitUsage},
		{[]string{"guard", "check", "--nope", "--", "ls"}, guardExitUsage},
		{[]string{"hook"}, 2},
		{[]string{"hook", "post-tool-use"}, 2},
	} {
		t.Run("Usage/"+strings.Join(tc.args, "_"), func(t *testing.T) {
			t.Parallel()
			_, _, err := runCLI(t, nil, "", tc.args...)
			var ue usageError
			if !errors.As(err, &ue) || exitCode(err) != tc.code {
				t.Fatalf("err = %v (exit %d), want a usage error exiting %d", err, exitCode(err), tc.code)
			}
		})
	}
}

func TestHookCLI(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer T" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		var req map[string]any
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req["session_id"] != "S" {
			http.Error(w, "wrong session", http.StatusBadRequest)
			return
		}
		io.WriteString(w, `{"decision":"deny","reason":"approval required","approval_id":"apr_1"}`)
	}))
	t.Cleanup(srv.Close)
	env := map[string]string{"IT0_URL": srv.URL, "IT0_TOKEN": "T", "IT0_SESSION_ID": "S"}
	ev := func(cmd string) string {
		b, _ := json.Marshal(map[string]any{"session_id": "claude", "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": map[string]string{"command": cmd}, "tool_use_id": "t1"})
		return string(b)
	}
	for _, tc := range []struct {
		name, sub, stdin, want string
		env                    map[string]string
	}{
		{"Allow", "pre-tool-use", ev("uptime"), `"permissionDecision":"allow"`, env},
		{"Deny", "pretooluse", ev("reboot"), `"permissionDecision":"deny"`, env},
		{"Ask", "pre-tool-use", ev("systemctl restart nginx"), `apr_1`, env},
		{"MissingEnv", "pre-tool-use", ev("systemctl restart nginx"), `IT0_URL is not set`, nil},
		{"Malformed", "pre-tool-use", "{", `malformed hook input`, env},
		{"BadRules", "pre-tool-use", ev("uptime"), `"permissionDecision":"deny"`, map[string]string{"IT0_GUARD_RULES": "/nonexistent/rules.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, _, err := runCLI(t, tc.env, tc.stdin, "hook", tc.sub)
			if err != nil {
				t.Fatalf("hook must never fail (exit 1 fails open): %v", err)
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("out = %s, want %s", out, tc.want)
			}
		})
	}
}
