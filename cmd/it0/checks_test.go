package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestChecksCLI runs `it0 serve` in process, adds a tcp check on a closed port with the CLI, and waits for
// the real scheduler to run it, mark it down and deliver check_failed to an event-triggered standing order.
func TestChecksCLI(t *testing.T) {
	t.Parallel()
	p, err := serveInProcess(t, t.TempDir(), map[string]string{"IT0_BOOTSTRAP_ADMIN_PASSWORD": "first-password"})
	if err != nil {
		t.Fatal(err)
	}
	tok := p.api(t, "POST", "/api/v1/auth/login", "", map[string]string{"email": "admin@it0.local", "password": "first-password"})["access_token"].(string)
	key := p.api(t, "POST", "/api/v1/auth/api-keys", tok, map[string]string{"name": "cli"})["key"].(string)
	order := p.api(t, "POST", "/api/v1/ops/standing-orders", key, map[string]any{"name": "on check failure",
		"trigger": map[string]string{"type": "event", "event_type": "check_failed"}, "targets": map[string]any{"all_servers": true},
		"agent_instructions": map[string]any{"prompt": "find out why the check failed", "max_risk_level": 0}})
	cli := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, func(k string) string {
			return map[string]string{"IT0_URL": "http://" + p.addr, "IT0_TOKEN": key}[k]
		}, nil, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	// Ensure a bad definition comes back with the server's words, naming the field.
	if out, err := cli("checks", "add", "--name", "bad", "--type", "tcp", "--target", closed, "--interval", "2"); err == nil ||
		!strings.Contains(err.Error(), "interval_seconds") {
		t.Errorf("bad add: %v %s", err, out)
	}
	out, err := cli("checks", "add", "--name", "db", "--type", "tcp", "--target", closed, "--interval", "5", "--timeout", "2")
	if err != nil || !strings.Contains(out, "added tcp check db") {
		t.Fatalf("add: %v %s", err, out)
	}
	id := regexp.MustCompile(`\(([0-9a-f-]{36})\)`).FindStringSubmatch(out)[1]

	// The scheduler runs it within one interval; the first result sets the state.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err = cli("checks", "show", id)
		if err != nil {
			t.Fatalf("show: %v %s", err, out)
		}
		if strings.Contains(out, "state: down") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("check never went down:\n%s", out)
		}
		<-time.After(100 * time.Millisecond)
	}
	if !strings.Contains(out, "unknown → down") || !strings.Contains(out, "connect failed") {
		t.Errorf("show:\n%s", out)
	}
	if out, err := cli("checks", "list"); err != nil || !strings.Contains(out, "db") || !strings.Contains(out, "down") {
		t.Errorf("list: %v\n%s", err, out)
	}
	// Ensure the transition reached the standing order as a check_failed event.
	for {
		ex := p.api(t, "GET", "/api/v1/ops/standing-orders/"+order["id"].(string)+"/executions", key, nil)["items"].([]any)
		if len(ex) > 0 {
			if e := ex[0].(map[string]any); e["trigger_type"] != "event" || !strings.Contains(fmt.Sprint(e["trigger_context"]), id) {
				t.Errorf("execution: %v", e)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no standing order execution for check_failed")
		}
		<-time.After(100 * time.Millisecond)
	}
	if out, err := cli("checks", "frobnicate"); err == nil || exitCode(err) != 2 {
		t.Errorf("unknown subcommand: %v %s", err, out)
	}
}
