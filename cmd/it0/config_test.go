package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/it0/it0/internal/agent"
)

// TestBadEnvRefusesToStart ensures `it0 serve` refuses unparsable IT0_* values, naming each variable
// and its value, before it opens anything.
func TestBadEnvRefusesToStart(t *testing.T) {
	t.Parallel()
	env := map[string]string{"IT0_TOKEN_TTL": "abc", "IT0_TRUST_PROXY": "yes"}
	err := run(context.Background(), []string{"serve", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0"},
		func(k string) string { return env[k] }, nil, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("serve started with IT0_TOKEN_TTL=abc and IT0_TRUST_PROXY=yes")
	}
	for _, want := range []string{`IT0_TOKEN_TTL="abc"`, `IT0_TRUST_PROXY="yes"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s: %v", want, err)
		}
	}
}

// TestSubcommandSettings ensures each subcommand lists and requires only the settings it uses.
func TestSubcommandSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args      []string
		want, not []string
	}{
		{[]string{"migrate", "-h"}, []string{"-data-dir", "-database-url"}, []string{"-addr", "-token-ttl", "-engine", "-check-concurrency"}},
		{[]string{"audit", "verify", "-h"}, []string{"-data-dir", "-tenant"}, []string{"-addr", "-trust-proxy"}},
		{[]string{"vault", "rotate", "-h"}, []string{"-data-dir"}, []string{"-addr", "-log-level"}},
		{[]string{"serve", "-h"}, []string{"-addr", "-data-dir", "-token-ttl"}, nil},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			t.Parallel()
			var errb bytes.Buffer
			if err := run(context.Background(), tc.args, func(string) string { return "" }, nil, io.Discard, &errb); err != nil {
				t.Fatalf("%v: %v", tc.args, err)
			}
			for _, f := range tc.want {
				if !strings.Contains(errb.String(), "  "+f+" ") {
					t.Errorf("help lacks %s:\n%s", f, errb.String())
				}
			}
			for _, f := range tc.not {
				if strings.Contains(errb.String(), "  "+f+" ") {
					t.Errorf("help lists %s, which the command does not use:\n%s", f, errb.String())
				}
			}
		})
	}

	// A setting another command reads does not stop this one.
	t.Run("MigrateIgnoresServerSettings", func(t *testing.T) {
		t.Parallel()
		env := map[string]string{"IT0_TOKEN_TTL": "abc"}
		var out bytes.Buffer
		if err := run(context.Background(), []string{"migrate", "--data-dir", t.TempDir()}, func(k string) string { return env[k] }, nil, &out, io.Discard); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	})

	// On PostgreSQL, audit verify needs the audit key and nothing else.
	t.Run("AuditVerifyPostgres", func(t *testing.T) {
		t.Parallel()
		env := map[string]string{}
		for _, kv := range backendEnv(t, "postgres") {
			k, v, _ := strings.Cut(kv, "=")
			if k != "IT0_JWT_SECRET" && k != "IT0_VAULT_MASTER_KEY" {
				env[k] = v
			}
		}
		getenv := func(k string) string { return env[k] }
		if err := run(context.Background(), []string{"migrate"}, getenv, nil, io.Discard, io.Discard); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		var out bytes.Buffer
		if err := run(context.Background(), []string{"audit", "verify"}, getenv, nil, &out, io.Discard); err != nil {
			t.Fatalf("audit verify without the JWT secret and vault key: %v", err)
		}
		if !strings.Contains(out.String(), "ok      platform") {
			t.Errorf("output: %s", out.String())
		}
		delete(env, "IT0_AUDIT_KEY")
		err := run(context.Background(), []string{"audit", "verify"}, getenv, nil, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "IT0_AUDIT_KEY") || strings.Contains(err.Error(), "IT0_JWT_SECRET") {
			t.Errorf("audit verify without its key: %v", err)
		}
	})
}

// TestDefaultEngineFallback ensures that with the default engine unconfigured (claude_api without a key)
// new sessions use the first engine that can run (here a claude CLI), and that the engines list and the
// log say so.
func TestDefaultEngineFallback(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	claude := filepath.Join(dir, "claude")
	if err := os.WriteFile(claude, []byte("#!/bin/sh\necho '2.1.332 (Claude Code)'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := serveInProcess(t, filepath.Join(dir, "data"), map[string]string{"IT0_BOOTSTRAP_ADMIN_PASSWORD": "first-password", "IT0_CLAUDE_PATH": claude})
	if err != nil {
		t.Fatal(err)
	}
	tok := p.api(t, "POST", "/api/v1/auth/login", "", map[string]string{"email": "admin@it0.local", "password": "first-password"})["access_token"].(string)
	var engines []agent.EngineInfo
	raw, _ := json.Marshal(p.api(t, "GET", "/api/v1/agent/engines", tok, nil)["items"])
	json.Unmarshal(raw, &engines)
	var active []string
	for _, e := range engines {
		if e.Active {
			active = append(active, e.Name)
			if !strings.Contains(e.Note, "default engine claude_api is unavailable") {
				t.Errorf("note on %s = %q", e.Name, e.Note)
			}
		}
	}
	if !slices.Equal(active, []string{agent.EngineClaudeCode}) {
		t.Fatalf("active engines = %v, want [claude_code_cli]: %s", active, raw)
	}
	if !strings.Contains(p.stderr.String(), `"msg":"default engine unavailable; using another"`) {
		t.Errorf("no log line about the fallback:\n%s", p.stderr.String())
	}
}
