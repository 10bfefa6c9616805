package comm_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/comm"
)

func TestParseReply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		want comm.Reply
		ok   bool
	}{
		{"Y", comm.Reply{Decision: comm.DecisionApprove}, true},
		{"y 482113", comm.Reply{Decision: comm.DecisionApprove, Ref: "482113"}, true},
		{"Yes 482113 only restart nginx", comm.Reply{Decision: comm.DecisionInstruct, Ref: "482113", Text: "only restart nginx"}, true},
		{"Y, but drain first", comm.Reply{Decision: comm.DecisionInstruct, Text: "but drain first"}, true},
		{"N not at night", comm.Reply{Decision: comm.DecisionReject, Text: "not at night"}, true},
		{"否 482113", comm.Reply{Decision: comm.DecisionReject, Ref: "482113"}, true},
		{"同意", comm.Reply{Decision: comm.DecisionApprove}, true},
		{"clean /var/log first", comm.Reply{Decision: comm.DecisionInstruct, Text: "clean /var/log first"}, true},
		{"  ", comm.Reply{}, false},
	} {
		t.Run(tc.body, func(t *testing.T) {
			got, ok := comm.ParseReply(tc.body)
			if ok != tc.ok || got != tc.want {
				t.Errorf("got %+v %v, want %+v", got, ok, tc.want)
			}
		})
	}
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"Y", "N 123456 no", "同意 123456", "text"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r, ok := comm.ParseReply(body)
		if !ok {
			if strings.TrimSpace(body) != "" {
				t.Errorf("non-empty %q not parsed", body)
			}
			return
		}
		switch r.Decision {
		case comm.DecisionApprove, comm.DecisionReject, comm.DecisionInstruct:
		default:
			t.Errorf("decision %q", r.Decision)
		}
		if r.Ref != "" && len(r.Ref) != 6 {
			t.Errorf("ref %q", r.Ref)
		}
	})
}

func TestContactValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		c     comm.Contact
		field string // "" = valid
	}{
		{"OK", comm.Contact{Name: "Li", Audience: "primary", Phone: "+8613800001111"}, ""},
		{"ErrPhoneNotE164", comm.Contact{Name: "Li", Audience: "primary", Phone: "13800001111"}, "phone"},
		{"ErrPhoneLetters", comm.Contact{Name: "Li", Audience: "primary", Phone: "+86abc"}, "phone"},
		{"ErrAudience", comm.Contact{Name: "Li", Audience: "oncall", Email: "li@example.com"}, "audience"},
		{"ErrNoAddress", comm.Contact{Name: "Li", Audience: "backup"}, "phone"},
		{"ErrChat", comm.Contact{Name: "Li", Audience: "backup", TelegramChatID: "@li"}, "telegram_chat_id"},
		{"ErrEmail", comm.Contact{Name: "Li", Audience: "managers", Email: "li"}, "email"},
		{"ErrName", comm.Contact{Audience: "managers", Email: "li@example.com"}, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.field == "" && err != nil || tc.field != "" && (err == nil || !strings.Contains(err.Error(), tc.field)) {
				t.Errorf("got %v, want field %q", err, tc.field)
			}
		})
	}
}

func TestDefaultPolicies(t *testing.T) {
	t.Parallel()
	for _, sev := range comm.Severities {
		p := comm.DefaultPolicy(sev)
		if err := p.Validate(); err != nil || p.Severity != sev {
			t.Errorf("%s: %v", sev, err)
		}
	}
	// The critical ladder is the one the design describes.
	var got []string
	for _, s := range comm.DefaultPolicy("critical").Steps {
		got = append(got, strings.Join(s.Channels, "+")+"@"+s.Audience+"/"+itoa(s.DelaySeconds))
	}
	want := "app+push@primary/0 phone@primary/120 sms+telegram+wecom@primary/300 app+push+phone+sms+telegram+wecom@backup/600 email@managers/1200"
	if strings.Join(got, " ") != want {
		t.Errorf("critical:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	bad := comm.Policy{Severity: "urgent", Steps: []comm.Step{{DelaySeconds: 60, Channels: []string{"fax"}, Audience: "x"}, {DelaySeconds: 10, Channels: []string{"sms"}, Audience: "primary"}}}
	err := bad.Validate()
	for _, f := range []string{"severity", "steps[0].channels", "steps[0].audience", "steps[1].delay_seconds"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("invalid policy lacks %s: %v", f, err)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestLocale(t *testing.T) {
	t.Parallel()
	if comm.Locale("zh-CN") != "zh-CN" || comm.Locale("zh") != "zh-CN" || comm.Locale("en-US") != "en" || comm.Locale("") != "en" {
		t.Error("locale")
	}
	if !strings.Contains(comm.T("zh-CN", "approve"), "批准") || comm.T("en", "approve") != "Approve" {
		t.Error("catalog")
	}
}

// FuzzLinkToken feeds answer-link tokens to the link check: anything LinkToken did not sign is refused
// before any lookup, without panicking.
func FuzzLinkToken(f *testing.F) {
	s, err := comm.New(comm.Config{LinkSecret: []byte("0123456789abcdef0123456789abcdef"),
		Schedule:  func(context.Context, string, any, time.Time, string) error { return nil },
		CancelKey: func(context.Context, string, string) error { return nil }}, nil, nil, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	good := s.LinkToken("t1", "a1", "c1", "", "y", time.Now().Add(time.Hour).Unix())
	f.Add(good[:len(good)-1] + "A")
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Add("")
	f.Add("e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		if tok == good {
			return
		}
		if _, err := s.PeekLink(context.Background(), tok); !errors.Is(err, comm.ErrBadLink) {
			t.Errorf("token %q: %v", tok, err)
		}
	})
}
