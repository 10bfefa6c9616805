package app

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/it0/it0/internal/bus/bustest"
	"github.com/it0/it0/internal/store/storetest"
)

// freshDatabase creates a PostgreSQL database of the test's own (replicas share one), dropped at the end.
func freshDatabase(t testing.TB) string {
	t.Helper()
	storetest.RequirePostgres(t)
	admin := storetest.PostgresURL()
	conn, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	b := make([]byte, 5)
	rand.Read(b)
	name := "it0bus_" + hex.EncodeToString(b)
	if _, err := conn.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Exec("DROP DATABASE " + name + " WITH (FORCE)") })
	return strings.Replace(admin, "/test?", "/"+name+"?", 1)
}

// TestReplicaWithoutRedis: a replica on PostgreSQL started without IT0_REDIS_URL while another replica
// is alive is not ready, and /readyz's check says why; the replica with the shared bus is ready.
func TestReplicaWithoutRedis(t *testing.T) {
	t.Parallel()
	bustest.RequireRedis(t)
	url := freshDatabase(t)
	ctx := context.Background()
	start := func(redisURL string) *App {
		t.Helper()
		a := New(Config{DatabaseURL: url, RedisURL: redisURL, DataDir: t.TempDir(), Target: Bus}, slog.New(slog.DiscardHandler), io.Discard)
		stop, err := a.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stop(context.Background()) })
		return a
	}
	withBus := start(bustest.RedisURL())
	if err := withBus.readyChecks()["replicas"].Ping(ctx); err != nil {
		t.Fatalf("the only replica is not ready: %v", err)
	}
	for _, name := range []string{"database", "bus"} {
		if err := withBus.readyChecks()[name].Ping(ctx); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	alone := start("")
	err := alone.readyChecks()["replicas"].Ping(ctx)
	if err == nil || !strings.Contains(err.Error(), "IT0_REDIS_URL") || !strings.Contains(err.Error(), withBus.replicaID) {
		t.Fatalf("a replica without Redis next to %s: %v", withBus.replicaID, err)
	}
	if err := withBus.readyChecks()["replicas"].Ping(ctx); err != nil {
		t.Errorf("the replica with the bus: %v", err)
	}
}
