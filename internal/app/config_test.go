package app

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func registered(t *testing.T, env map[string]string, uses Settings, args ...string) (Config, *flag.FlagSet) {
	t.Helper()
	var c Config
	fs := flag.NewFlagSet("it0 test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlagsFor(fs, func(k string) string { return env[k] }, uses)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return c, fs
}

// TestConfigEnvErrors ensures a typed IT0_* variable that does not parse stops the server with an error
// naming the variable and its value, instead of quietly becoming zero or false.
func TestConfigEnvErrors(t *testing.T) {
	t.Parallel()
	env := map[string]string{"IT0_TOKEN_TTL": "abc", "IT0_TRUST_PROXY": "yes", "IT0_CHECK_CONCURRENCY": "many",
		"IT0_CHECK_RESULT_RETENTION": "1 week", "IT0_MONITOR_REMEDIATION_MAX_RISK": "high"}
	c, _ := registered(t, env, UsesAll)
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted unparsable settings")
	}
	for _, want := range []string{`IT0_TOKEN_TTL="abc": not a duration`, `IT0_TRUST_PROXY="yes": want true or false`,
		`IT0_CHECK_CONCURRENCY="many"`, `IT0_CHECK_RESULT_RETENTION="1 week"`, `IT0_MONITOR_REMEDIATION_MAX_RISK="high"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}

	// Ensure good values parse, and that a later registration forgets earlier mistakes.
	c, _ = registered(t, map[string]string{"IT0_TOKEN_TTL": "2h", "IT0_TRUST_PROXY": "1"}, UsesAll)
	if err := c.Validate(); err != nil || c.TokenTTL.Hours() != 2 || !c.TrustProxy {
		t.Fatalf("Validate = %v, ttl %s, trust proxy %v", err, c.TokenTTL, c.TrustProxy)
	}
}

// TestConfigUses ensures a subcommand sees and requires only the settings it uses.
func TestConfigUses(t *testing.T) {
	t.Parallel()
	pg := map[string]string{"IT0_DATABASE_URL": "postgres://127.0.0.1/test", "IT0_TOKEN_TTL": "abc"}
	tests := []struct {
		name      string
		uses      Settings
		env       map[string]string
		wantFlags []string
		noFlags   []string
		wantErr   []string
		noErr     []string
	}{
		{name: "MigrateOK", uses: UsesStorage, env: pg, wantFlags: []string{"data-dir", "database-url"},
			noFlags: []string{"addr", "token-ttl", "engine", "log-level"}, noErr: []string{"IT0_"}},
		{name: "AuditNeedsOnlyItsKey", uses: UsesStorage | UsesAuditKey, env: pg,
			wantErr: []string{"IT0_AUDIT_KEY (or IT0_AUDIT_KEY_FILE) is required"}, noErr: []string{"IT0_JWT_SECRET", "IT0_VAULT_MASTER_KEY", "IT0_TOKEN_TTL"}},
		{name: "VaultNeedsOnlyItsKey", uses: UsesStorage | UsesVault, env: pg,
			wantErr: []string{"IT0_VAULT_MASTER_KEY is required"}, noErr: []string{"IT0_JWT_SECRET", "IT0_AUDIT_KEY"}},
		{name: "ServeNeedsAll", uses: UsesAll, env: pg, wantFlags: []string{"addr", "data-dir", "token-ttl"},
			wantErr: []string{"IT0_JWT_SECRET is required", "IT0_AUDIT_KEY (or IT0_AUDIT_KEY_FILE) is required", "IT0_VAULT_MASTER_KEY is required", `IT0_TOKEN_TTL="abc"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, fs := registered(t, tc.env, tc.uses)
			for _, f := range tc.wantFlags {
				if fs.Lookup(f) == nil {
					t.Errorf("flag -%s missing", f)
				}
			}
			for _, f := range tc.noFlags {
				if fs.Lookup(f) != nil {
					t.Errorf("flag -%s shown, but the command does not use it", f)
				}
			}
			msg := ""
			if err := c.Validate(); err != nil {
				msg = err.Error()
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(msg, want) {
					t.Errorf("error lacks %q: %q", want, msg)
				}
			}
			for _, no := range tc.noErr {
				if strings.Contains(msg, no) {
					t.Errorf("error mentions %q: %q", no, msg)
				}
			}
		})
	}

	// Ensure a storage flag given to a storage-only command lands in the config.
	c, _ := registered(t, nil, UsesStorage, "--data-dir", "/srv/it0")
	if c.DataDir != "/srv/it0" {
		t.Errorf("DataDir = %q", c.DataDir)
	}
}
