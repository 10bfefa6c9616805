package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
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

// TestRunTargets ensures "all" runs every deploy target, a split runs the ones it names, and module names
// (tools for tests and operators) run none.
func TestRunTargets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		target string
		want   []string
	}{
		{"all", deployTargets},
		{"api", []string{API}},
		{" ops , comm", []string{Ops, Comm}},
		{"bus", nil},
		{"agent,all", deployTargets},
	} {
		a := &App{targets: runTargets(tc.target)}
		if got := a.targetList(); !slices.Equal(got, tc.want) {
			t.Errorf("runTargets(%q) = %v, want %v", tc.target, got, tc.want)
		}
	}
}

// TestEdge ensures a process serves only its targets' paths, answers every other one with a JSON error
// naming the target that serves it, and answers probes whatever it runs.
func TestEdge(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, tc := range []struct {
		name, target, path string
		served             bool
		wantTarget         string
	}{
		{"AllServesEverything", "all", "/ws/voice", true, ""},
		{"APIServesAPI", "api", "/api/v1/agent/tasks", true, ""},
		{"ErrAPIVoiceStream", "api", "/ws/voice", false, "voice"},
		{"ErrAPITwilio", "api", "/api/v1/twilio/media", false, "voice"},
		{"ErrAPIVoiceSessions", "api", "/api/v1/voice/sessions", false, "voice"},
		{"APIServesTwilioSMS", "api", "/api/v1/twilio/sms", true, ""},
		{"VoiceServesVoice", "voice", "/ws/voice", true, ""},
		{"ErrVoiceAPI", "voice", "/api/v1/auth/login", false, "api"},
		{"AgentServesCallbacks", "agent", "/api/v1/agent/hook/pre-tool-use", true, ""},
		{"AgentServesTools", "agent", "/api/v1/agent/tools/run_command", true, ""},
		{"ErrAgentAPI", "agent", "/api/v1/agent/tasks", false, "api"},
		{"ProbesEverywhere", "ops", "/readyz", true, ""},
		{"MetricsEverywhere", "comm", "/metrics", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := &App{targets: runTargets(tc.target), log: slog.New(slog.DiscardHandler)}
			w := httptest.NewRecorder()
			a.edge(ok).ServeHTTP(w, httptest.NewRequest("GET", tc.path, nil))
			if tc.served {
				if w.Code != http.StatusTeapot {
					t.Fatalf("%s on %s: %d %s, want it served", tc.path, tc.target, w.Code, w.Body)
				}
				return
			}
			var body struct {
				Error struct{ Code, Message, Hint string }
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != http.StatusServiceUnavailable || body.Error.Code != "unavailable" ||
				!strings.Contains(body.Error.Message, "served by the "+tc.wantTarget+" target") || !strings.Contains(body.Error.Hint, "-target="+tc.wantTarget) {
				t.Fatalf("%s on %s: %d %s", tc.path, tc.target, w.Code, w.Body)
			}
		})
	}
}
