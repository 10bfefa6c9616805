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
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"level:  L3", "rm-root", "rm -rf /", "ls"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	// Ensure --json prints {"level":N,"reason":…,"matches":[…]} and exits 0 even for L3.
	t.Run("JSON", func(t *testing.T) {
		t.Parallel()
		out, _, err := runCLI(t, nil, "", "guard", "check", "--json", "--", `ssh db1 'psql -c "DROP DATABASE x"'`)
		if err != nil {
			t.Fatal(err)
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
		if err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Fatalf("err = %v, want a line number", err)
		}
	})

	// Ensure --targets applies the blast radius and the verdict says why.
	t.Run("Targets", func(t *testing.T) {
		t.Parallel()
		out, _, err := runCLI(t, nil, "", "guard", "check", "--targets", "prod:web=11,dev", "--", "systemctl", "restart", "nginx")
		if err != nil || !strings.Contains(out, "level:  L2") || !strings.Contains(out, "prod-fanout") {
			t.Fatalf("out = %s, err = %v", out, err)
		}
	})

	// Ensure usage mistakes exit 2.
	for _, args := range [][]string{
		{"guard", "check", "--targets", "prod=0", "--", "ls"},
		{"guard"},
		{"guard", "bogus"},
		{"guard", "check"},
		{"guard", "check", "--json"},
		{"guard", "check", "--nope", "--", "ls"},
		{"hook"},
		{"hook", "post-tool-use"},
	} {
		t.Run("Usage/"+strings.Join(args, "_"), func(t *testing.T) {
			t.Parallel()
			_, _, err := runCLI(t, nil, "", args...)
			var ue usageError
			if !errors.As(err, &ue) || exitCode(err) != 2 {
				t.Fatalf("err = %v, want a usage error", err)
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
