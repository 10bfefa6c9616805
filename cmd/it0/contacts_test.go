package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestContactsCLI adds a contact and test-sends to it from the CLI: an undeliverable in-app message is an
// error naming the reason, an unconfigured channel (SMS without Twilio) is reported skipped, a second test
// within the window and bad input are refused with their reasons.
func TestContactsCLI(t *testing.T) {
	t.Parallel()
	p, err := serveInProcess(t, t.TempDir(), map[string]string{"IT0_BOOTSTRAP_ADMIN_PASSWORD": "first-password"})
	if err != nil {
		t.Fatal(err)
	}
	tok := p.api(t, "POST", "/api/v1/auth/login", "", map[string]string{"email": "admin@it0.local", "password": "first-password"})["access_token"].(string)
	key := p.api(t, "POST", "/api/v1/auth/api-keys", tok, map[string]string{"name": "cli"})["key"].(string)
	me := p.api(t, "GET", "/api/v1/auth/me", tok, nil)
	userID, _ := me["id"].(string)
	if u, ok := me["user"].(map[string]any); ok && userID == "" {
		userID, _ = u["id"].(string)
	}
	if userID == "" {
		t.Fatalf("no user id in /auth/me: %v", me)
	}
	cli := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, func(k string) string {
			return map[string]string{"IT0_URL": "http://" + p.addr, "IT0_TOKEN": key}[k]
		}, nil, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	out, err := cli("contacts", "add", "--name", "Li", "--audience", "primary", "--user-id", userID, "--phone", "+8613800001111")
	if err != nil || !strings.HasPrefix(out, "added contact ") {
		t.Fatalf("add: %v %s", err, out)
	}
	id := strings.Fields(out)[2]
	// Nobody has the console open, so the in-app message cannot be delivered: a failure, reported as one.
	if out, err := cli("contacts", "test", id, "--channel", "app"); err == nil || !strings.Contains(err.Error(), "over app failed: no app client") {
		t.Errorf("test over app with no client connected: %v %s", err, out)
	}
	if out, err := cli("contacts", "test", id, "--channel", "sms"); err != nil || !strings.Contains(out, "over sms: skipped") {
		t.Errorf("test over sms without Twilio: %v %s", err, out)
	}
	if out, err := cli("contacts", "test", id, "--channel", "app"); err == nil || !strings.Contains(err.Error(), "moments ago") {
		t.Errorf("a second test within the window: %v %s", err, out)
	}
	if out, err := cli("contacts", "test", id, "--channel", "email"); err == nil || !strings.Contains(err.Error(), "no email address") {
		t.Errorf("a channel without an address: %v %s", err, out)
	}
	if out, err := cli("contacts", "test", "00000000-0000-0000-0000-000000000000"); err == nil {
		t.Errorf("an unknown contact: %s", out)
	}
	if _, err := cli("contacts", "test"); err == nil || !strings.Contains(err.Error(), "exactly one contact id") {
		t.Errorf("no id: %v", err)
	}
}
