package httpapi_test

import (
	"context"
	"flag"
	"io"
	"sync"
	"testing"

	"github.com/it0/it0/internal/app"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/httpapi"
)

// The internal tests build their bundle through internal/app, which they cannot import themselves.
func init() { httpapi.BuildApp = buildApp }

// buildApp reads the configuration as `it0 serve` does (flags, then IT0_* variables, here from p only,
// never from the test process's environment), builds the module graph with app.New and starts it. The
// app is stopped by the returned Stop, or when the test ends.
func buildApp(t testing.TB, p httpapi.AppParams) httpapi.AppParts {
	t.Helper()
	env := map[string]string{"IT0_ADDR": "127.0.0.1:0", "IT0_DATA_DIR": p.DataDir, "IT0_TARGET": app.All,
		"IT0_JWT_SECRET": string(p.Secret), "IT0_AUDIT_KEY": string(p.Secret), "IT0_VAULT_MASTER_KEY": p.VaultKey,
		"IT0_BOOTSTRAP_ADMIN_EMAIL": p.Email, "IT0_BOOTSTRAP_ADMIN_PASSWORD": p.Password, "IT0_PUBLIC_URL": "http://it0.test"}
	for k, v := range p.Env {
		env[k] = v
	}
	var cfg app.Config
	fs := flag.NewFlagSet("it0 serve", flag.ContinueOnError)
	cfg.RegisterFlags(fs, func(k string) string { return env[k] })
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("configuration: %v", err)
	}
	a := app.New(cfg, p.Logger, io.Discard)
	a.Version = "test"
	a.SetOptions(app.Options{Store: p.DB, Now: p.Now, Engines: p.Engines, Argon2: auth.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1}, Notifier: p.Notifier,
		BeforeSchedule: p.BeforeSchedule, MailTLS: p.MailTLS, Manual: p.Manual, PartTarget: env["IT0_TARGET"] != app.All,
		Voice: app.VoiceOptions{Frame: p.Voice.Frame, SilenceTimeout: p.Voice.SilenceTimeout, NewVAD: p.Voice.NewVAD}})
	stop, err := a.Start(context.Background())
	if err != nil {
		t.Fatalf("start app: %v", err)
	}
	var once sync.Once
	stopOnce := func() {
		once.Do(func() {
			if err := stop(context.Background()); err != nil {
				t.Errorf("stop app: %v", err)
			}
		})
	}
	t.Cleanup(stopOnce)
	groups := []string{"agent"} // internal/app subscribe.go
	if a.Comm != nil {
		groups = append(groups, "comm")
	}
	return httpapi.AppParts{Groups: groups, Server: a.API, URL: "http://" + a.Addr, Auth: a.Auth, Audit: a.Audit, Inventory: a.Inventory,
		Guard: a.Guard, SSH: a.SSH, Agent: a.Agent, Approvals: a.Approvals, Jobs: a.Jobs, Bus: a.Bus, Relay: a.Relay, Comm: a.Comm,
		Voice: a.Voice, SkillsDir: a.SkillsDir, Stop: stopOnce}
}
