package httpapi_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"testing"

	"github.com/it0/it0/internal/app"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/httpapi"
)

// The internal tests build their bundle through internal/app, which they cannot import themselves.
func init() { httpapi.BuildApp = buildApp }

func buildApp(t testing.TB, p httpapi.AppParams) httpapi.AppParts {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	cfg := app.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Target: app.All, JWTSecret: string(p.Secret),
		AuditKey: string(p.Secret), VaultMasterKey: base64.StdEncoding.EncodeToString(key),
		BootstrapEmail: p.Email, BootstrapPass: p.Password, PublicURL: "http://it0.test"}
	a := app.New(cfg, p.Logger, io.Discard)
	a.Version = "test"
	a.SetOptions(app.Options{Store: p.DB, Now: p.Now, Engines: p.Engines, Argon2: auth.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1}, Notifier: p.Notifier,
		BeforeSchedule: p.BeforeSchedule})
	stop, err := a.Start(context.Background())
	if err != nil {
		t.Fatalf("start app: %v", err)
	}
	t.Cleanup(func() {
		if err := stop(context.Background()); err != nil {
			t.Errorf("stop app: %v", err)
		}
	})
	groups := []string{"agent"} // internal/app subscribe.go
	if a.Comm != nil {
		groups = append(groups, "comm")
	}
	return httpapi.AppParts{Groups: groups, Server: a.API, URL: "http://" + a.Addr, Auth: a.Auth, Audit: a.Audit, Inventory: a.Inventory,
		Guard: a.Guard, SSH: a.SSH, Agent: a.Agent, Approvals: a.Approvals, Jobs: a.Jobs, Bus: a.Bus, Relay: a.Relay}
}
