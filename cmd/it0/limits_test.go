package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// loginFrom signs in to replica m as if from address ip (the replicas trust X-Forwarded-For) and returns
// the status and the Retry-After header.
func loginFrom(t *testing.T, m *child, email, password, ip string) (int, string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"email": email, "password": password})
	req, _ := http.NewRequest("POST", "http://"+m.addr+"/api/v1/auth/login", bytes.NewReader(b))
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("login on %s: %v", m.addr, err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// TestClusterLoginLimits runs two replicas sharing PostgreSQL and Redis. An attacker spends the free
// failures of an (account, address) pair on replica A, then guesses on replica B: B makes it wait before
// it has counted five failures of its own (the delay A started is shared), while the account's owner,
// from another address, still signs in on both replicas. The counters' Redis keys name no email or address.
func TestClusterLoginLimits(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 2, "IT0_TRUST_PROXY=true")
	const email, attacker, owner = "admin@it0.local", "203.0.113.7", "198.51.100.9"
	for i := range 5 { // the pair's free failures (README: 5 per account and address)
		if st, _ := loginFrom(t, c.members[0], email, "wrong-password", attacker); st != 401 {
			t.Fatalf("free failure %d on A: %d, want 401", i+1, st)
		}
	}
	// Past the free failures each attempt waits 1 s, 2 s, 4 s, 8 s after the previous failure: a slow
	// machine may let a wait pass before B is asked, so B gets four tries, and with limits of its own B
	// would answer all four 401 (it would have counted four failures, fewer than five).
	limited := false
	for i := range 4 {
		st, retry := loginFrom(t, c.members[1], email, "wrong-password", attacker)
		if st == 429 {
			if retry == "" {
				t.Fatal("429 without Retry-After")
			}
			limited = true
			break
		}
		if st != 401 {
			t.Fatalf("guess %d on B: %d", i+1, st)
		}
	}
	if !limited {
		t.Fatal("replica B never delayed the guesses that replica A had counted: the login limits are not shared")
	}
	// No lockout: the owner signs in from another address on either replica.
	for i, m := range c.members {
		if st, _ := loginFrom(t, m, email, "first-password", owner); st != 200 {
			t.Fatalf("the owner signing in on replica %d from another address: %d, want 200", i, st)
		}
	}

	opt, _ := redis.ParseURL(c.redis.URL())
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	keys, err := rdb.Keys(context.Background(), "it0:login:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 4 { // pair, address and account of the attacker; the owner's remembered pair
		t.Fatalf("login limit keys in Redis: %v", keys)
	}
	for _, k := range keys {
		if strings.Contains(k, "admin") || strings.Contains(k, "it0.local") || strings.Contains(k, attacker) || strings.Contains(k, owner) {
			t.Fatalf("a Redis key names an email or address: %q", k)
		}
	}
}
