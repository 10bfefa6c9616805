package httpapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// TestContactTestSend: POST /api/v1/comm/contacts/{id}/test reaches one contact on one channel, reports
// the delivery status, is limited to one per contact and channel per window, and is audited.
func TestContactTestSend(t *testing.T) {
	t.Parallel()
	f := newCommFixture(t, storetest.OpenSQLite)
	primary := f.contacts["primary"]
	path := "/api/v1/comm/contacts/" + primary + "/test"

	// Ensure the message goes out on the channel asked for, to that contact only, and says it is a test.
	r := f.do("POST", path, f.tok, map[string]any{"channel": "sms"})
	if r.status != 200 || r.body["status"] != comm.StatusSent || r.body["channel"] != "sms" || r.body["contact_id"] != primary {
		t.Fatalf("test-send: %d %s", r.status, r.raw)
	}
	sms := f.prov.Sent(comm.ChannelSMS)
	if len(sms) != 1 || sms[0].To != primaryPhone || !strings.Contains(sms[0].Body, "test message") || !strings.Contains(sms[0].Body, "sms") {
		t.Errorf("sms sent: %+v", sms)
	}

	// Ensure a second test on the same channel within the window is refused with a Retry-After, and
	// sends nothing; another channel is not limited by it.
	r = f.do("POST", path, f.tok, map[string]any{"channel": "sms"})
	if r.status != 429 || r.errCode() != "rate_limited" || r.header.Get("Retry-After") == "" {
		t.Errorf("second test-send: %d %s %v", r.status, r.raw, r.header)
	}
	if n := len(f.prov.Sent(comm.ChannelSMS)); n != 1 {
		t.Errorf("%d SMS after the refused one, want 1", n)
	}
	if r := f.do("POST", path, f.tok, map[string]any{"channel": "telegram"}); r.status != 200 || r.body["status"] != comm.StatusSent {
		t.Errorf("telegram test-send: %d %s", r.status, r.raw)
	}
	f.now.Advance(comm.TestSendWindow)
	if r := f.do("POST", path, f.tok, map[string]any{"channel": "sms"}); r.status != 200 {
		t.Errorf("test-send after the window: %d %s", r.status, r.raw)
	}

	// Ensure a provider's refusal is reported on the message, not as an API error.
	f.now.Advance(comm.TestSendWindow)
	f.prov.FailTwilio(1, 400, "")
	if r := f.do("POST", path, f.tok, map[string]any{"channel": "sms"}); r.status != 200 || r.body["status"] != comm.StatusFailed || r.body["error"] == "" {
		t.Errorf("refused test-send: %d %s", r.status, r.raw)
	}

	// Ensure the limit slides: a test one second before a window's edge refuses another one second after it.
	now := f.now.Now()
	f.now.Advance(now.Truncate(comm.TestSendWindow).Add(comm.TestSendWindow).Sub(now) - time.Second)
	if r := f.do("POST", path, f.tok, map[string]any{"channel": "telegram"}); r.status != 200 {
		t.Errorf("test-send before the window's edge: %d %s", r.status, r.raw)
	}
	f.now.Advance(2 * time.Second)
	if r := f.do("POST", path, f.tok, map[string]any{"channel": "telegram"}); r.status != 429 || r.header.Get("Retry-After") != "28" {
		t.Errorf("test-send across the window's edge: %d %s %v", r.status, r.raw, r.header)
	}

	// Ensure an empty body uses the only channel a contact has an address for (managers: email).
	if r := f.do("POST", "/api/v1/comm/contacts/"+f.contacts["managers"]+"/test", f.tok, nil); r.status != 200 || r.body["channel"] != "email" || r.body["status"] != comm.StatusSent {
		t.Errorf("default channel: %d %s", r.status, r.raw)
	}
	if m := f.smtp.Mails(); len(m) != 1 || !strings.Contains(m[0].To, "boss@example.com") {
		t.Errorf("mails: %+v", m)
	}

	for _, tc := range []struct {
		name, id, token string
		body            any
		status          int
		want            string
	}{
		{"ErrUnknownChannel", primary, f.tok, map[string]any{"channel": "fax"}, 400, `"field":"channel"`},
		{"ErrNoAddress", f.contacts["managers"], f.tok, map[string]any{"channel": "sms"}, 400, "has no sms address"},
		{"ErrUnknownField", primary, f.tok, map[string]any{"chanel": "sms"}, 400, "chanel"},
		{"ErrNotFound", "no-such-contact", f.tok, map[string]any{"channel": "sms"}, 404, "not_found"},
		{"ErrOperator", primary, f.opTok, map[string]any{"channel": "sms"}, 403, "forbidden"},
		{"ErrNoToken", primary, "", map[string]any{"channel": "sms"}, 401, "unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Ensure a refused request names its reason.
			if r := f.do("POST", "/api/v1/comm/contacts/"+tc.id+"/test", tc.token, tc.body); r.status != tc.status || !strings.Contains(r.raw, tc.want) {
				t.Errorf("%d %s, want %d with %s", r.status, r.raw, tc.status, tc.want)
			}
		})
	}

	// Ensure each test-send is in the tenant's audit chain with its channel and outcome.
	entries, err := f.audit.List(tenant.WithID(context.Background(), f.tid), auditFilterAll())
	if err != nil {
		t.Fatal(err)
	}
	var tested []string
	for _, e := range entries {
		if e.ActionType == "comm.contact_tested" {
			tested = append(tested, e.Description)
		}
	}
	if len(tested) != 6 || !strings.Contains(strings.Join(tested, "\n"), "on sms: failed") {
		t.Errorf("audit: %q", tested)
	}

}
