package app

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// TestCheckTarget ensures a split target is refused without PostgreSQL and Redis, naming what is missing,
// and that "all", the union of the deploy targets and single-module targets are not split targets.
func TestCheckTarget(t *testing.T) {
	t.Parallel()
	const pg, redis = "postgres://x", "redis://x"
	for _, tc := range []struct {
		name, target, db, redis string
		wantErr                 string // "" for none
	}{
		{"All", "all", "", "", ""},
		{"AllOfThem", "api,agent,ops,monitor,comm,voice", "", "", ""},
		{"SingleModule", "bus", pg, "", ""},
		{"SplitOK", "api", pg, redis, ""},
		{"SplitTwoOK", "ops, comm", pg, redis, ""},
		{"ErrNoDatabase", "agent", "", redis, "IT0_DATABASE_URL"},
		{"ErrNoRedis", "monitor", pg, "", "IT0_REDIS_URL"},
		{"ErrNeither", "api,agent", "", "", "IT0_DATABASE_URL (PostgreSQL) and IT0_REDIS_URL"},
		{"ErrDuplicates", "voice,voice,voice,voice,voice,voice", pg, "", "IT0_REDIS_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := checkTarget(Config{Target: tc.target, DatabaseURL: tc.db, RedisURL: tc.redis})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("checkTarget(%q): %v", tc.target, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "-target=all") {
				t.Fatalf("checkTarget(%q) = %v, want an error naming %s", tc.target, err, tc.wantErr)
			}
		})
	}
	// Ensure Start refuses before it opens anything.
	a := New(Config{Target: "ops", DataDir: t.TempDir()}, slog.New(slog.DiscardHandler), io.Discard)
	if _, err := a.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "IT0_REDIS_URL") {
		t.Fatalf("Start with a split target on SQLite: %v", err)
	}
	if a.Store != nil {
		t.Fatal("Start opened the store before refusing the target")
	}
}
