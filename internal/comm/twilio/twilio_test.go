package twilio_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/twilio"
)

// fakeTwilio answers like api.twilio.com and checks each request as Twilio documents it: the path under
// the account, HTTP Basic with the account SID and auth token, and a form body.
type fakeTwilio struct {
	t        *testing.T
	status   int    // answer with this status (201 by default)
	retry    string // Retry-After header
	requests []map[string][]string
	paths    []string
}

func (f *fakeTwilio) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != "AC123" || pass != "tok-secret" {
		w.WriteHeader(401)
		fmt.Fprint(w, `{"code":20003,"message":"Authenticate","status":401}`)
		return
	}
	if r.Method != "POST" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		f.t.Errorf("request: %s %s", r.Method, r.Header.Get("Content-Type"))
	}
	r.ParseForm()
	f.requests, f.paths = append(f.requests, r.PostForm), append(f.paths, r.URL.Path)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case f.status == 429:
		w.Header().Set("Retry-After", f.retry)
		w.WriteHeader(429)
		fmt.Fprint(w, `{"code":20429,"message":"Too Many Requests","more_info":"https://www.twilio.com/docs/errors/20429","status":429}`)
	case f.status != 0:
		w.WriteHeader(f.status)
		fmt.Fprintf(w, `{"code":21211,"message":"The 'To' number is not a valid phone number.","status":%d}`, f.status)
	case strings.HasSuffix(r.URL.Path, "/Messages.json"):
		w.WriteHeader(201)
		fmt.Fprint(w, `{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued","num_segments":"1","to":"+8613800001111"}`)
	default:
		w.WriteHeader(201)
		fmt.Fprint(w, `{"sid":"CA0123456789abcdef0123456789abcdef","status":"queued","direction":"outbound-api"}`)
	}
}

func setup(t *testing.T) (*fakeTwilio, *twilio.Client) {
	f := &fakeTwilio{t: t}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, twilio.New(twilio.Config{AccountSID: "AC123", AuthToken: "tok-secret", From: "+15005550006", BaseURL: srv.URL})
}

func TestSMS(t *testing.T) {
	t.Parallel()
	// Ensure the SMS is a form POST to Messages.json with To, From and Body, and the sid comes back.
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		f, c := setup(t)
		id, err := c.SMS().Send(context.Background(), comm.OutboundMessage{To: "+8613800001111", Text: "disk full on web-1. Reply Y 123456"})
		if err != nil || id != "SM0123456789abcdef0123456789abcdef" {
			t.Fatalf("send: %q %v", id, err)
		}
		if f.paths[0] != "/2010-04-01/Accounts/AC123/Messages.json" {
			t.Errorf("path %s", f.paths[0])
		}
		got := f.requests[0]
		if got["To"][0] != "+8613800001111" || got["From"][0] != "+15005550006" || !strings.Contains(got["Body"][0], "Reply Y") {
			t.Errorf("form %v", got)
		}
	})
	// Ensure 429 is temporary and carries Retry-After.
	t.Run("RateLimited", func(t *testing.T) {
		t.Parallel()
		f, c := setup(t)
		f.status, f.retry = 429, "7"
		_, err := c.SMS().Send(context.Background(), comm.OutboundMessage{To: "+8613800001111", Text: "x"})
		if temp, after := comm.IsTemporary(err); !temp || after != 7*time.Second {
			t.Errorf("429: %v temp=%v after=%v", err, temp, after)
		}
	})
	// Ensure a 400 is permanent and says Twilio's message; a 503 is temporary.
	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		f, c := setup(t)
		f.status = 400
		_, err := c.SMS().Send(context.Background(), comm.OutboundMessage{To: "+1", Text: "x"})
		if temp, _ := comm.IsTemporary(err); temp || err == nil || !strings.Contains(err.Error(), "21211") {
			t.Errorf("400: %v", err)
		}
		f.status = 503
		_, err = c.SMS().Send(context.Background(), comm.OutboundMessage{To: "+1", Text: "x"})
		if temp, _ := comm.IsTemporary(err); !temp {
			t.Errorf("503 must be temporary: %v", err)
		}
	})
	// Ensure a wrong token is refused (401, permanent) and never appears in the error.
	t.Run("BadAuth", func(t *testing.T) {
		t.Parallel()
		f := &fakeTwilio{t: t}
		srv := httptest.NewServer(f)
		defer srv.Close()
		c := twilio.New(twilio.Config{AccountSID: "AC123", AuthToken: "wrong-token", From: "+15005550006", BaseURL: srv.URL})
		_, err := c.SMS().Send(context.Background(), comm.OutboundMessage{To: "+8613800001111", Text: "x"})
		if err == nil || strings.Contains(err.Error(), "wrong-token") {
			t.Errorf("bad auth: %v", err)
		}
	})
	// Ensure missing settings leave the channel unavailable, naming them.
	t.Run("Unavailable", func(t *testing.T) {
		t.Parallel()
		err := twilio.New(twilio.Config{AccountSID: "AC1"}).SMS().Available()
		if err == nil || !strings.Contains(err.Error(), "IT0_TWILIO_AUTH_TOKEN") || !strings.Contains(err.Error(), "IT0_TWILIO_PHONE_NUMBER") {
			t.Errorf("available: %v", err)
		}
	})
}

// Ensure the call is a form POST to Calls.json whose TwiML speaks and gathers one digit to the callback.
func TestCall(t *testing.T) {
	t.Parallel()
	f, c := setup(t)
	id, err := c.Voice().Send(context.Background(), comm.OutboundMessage{To: "+8613800001111", Speech: "Disk <full> & more",
		Language: "en-US", GatherURL: "https://it0.example/api/v1/twilio/voice?escalation=a1&x=1"})
	if err != nil || !strings.HasPrefix(id, "CA") {
		t.Fatalf("call: %q %v", id, err)
	}
	if f.paths[0] != "/2010-04-01/Accounts/AC123/Calls.json" {
		t.Errorf("path %s", f.paths[0])
	}
	tw := f.requests[0]["Twiml"][0]
	var doc struct {
		XMLName xml.Name `xml:"Response"`
		Gather  struct {
			NumDigits string `xml:"numDigits,attr"`
			Action    string `xml:"action,attr"`
			Say       string `xml:"Say"`
		} `xml:"Gather"`
	}
	if err := xml.Unmarshal([]byte(tw), &doc); err != nil {
		t.Fatalf("TwiML is not XML: %v\n%s", err, tw)
	}
	if doc.Gather.NumDigits != "1" || doc.Gather.Action != "https://it0.example/api/v1/twilio/voice?escalation=a1&x=1" || doc.Gather.Say != "Disk <full> & more" {
		t.Errorf("TwiML: %+v", doc)
	}
}

// Ensure the signature matches Twilio's documented example, with the port quirk, and rejects forgeries.
func TestSignature(t *testing.T) {
	t.Parallel()
	form := map[string][]string{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
		"From": {"+12349013030"}, "To": {"+18005551212"}}
	const u = "https://mycompany.com/myapp.php?foo=1&bar=2"
	if got := twilio.Signature("12345", u, form); got != "0/KCTR6DLpKmkAf8muzZqo1nDgQ=" {
		t.Fatalf("signature %s", got)
	}
	c := twilio.New(twilio.Config{AccountSID: "AC1", AuthToken: "12345", From: "+1"})
	for _, tc := range []struct {
		name, url, sig string
		want           bool
	}{
		{"OK", u, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", true},
		{"DefaultPort", "https://mycompany.com:443/myapp.php?foo=1&bar=2", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", true},
		{"Forged", u, "0/KCTR6DLpKmkAf8muzZqo1nDgX=", false},
		{"OtherURL", "https://mycompany.com/other.php", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", false},
		{"Missing", u, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.ValidateSignature(tc.url, form, tc.sig); got != tc.want {
				t.Errorf("got %v", got)
			}
		})
	}
}

// Ensure the auth token never shows in logs.
func TestTokenRedacted(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	cfg := twilio.Config{AccountSID: "AC1", AuthToken: "tok-secret-value"}
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", slog.Any("cfg", cfg), slog.Any("token", cfg.AuthToken))
	if strings.Contains(buf.String(), "tok-secret-value") || strings.Contains(fmt.Sprintf("%v %+v", cfg, cfg), "tok-secret-value") {
		t.Errorf("token leaked: %s", buf.String())
	}
}

func FuzzSignature(f *testing.F) {
	f.Add("https://a.example/x?y=1", "Body", "Y 123456", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
	c := twilio.New(twilio.Config{AccountSID: "AC1", AuthToken: "12345", From: "+1"})
	f.Fuzz(func(t *testing.T, u, k, v, sig string) {
		form := map[string][]string{k: {v}}
		if c.ValidateSignature(u, form, sig) && sig != twilio.Signature("12345", u, form) {
			// Only a port variant of u may also match.
			if !strings.Contains(u, ":") {
				t.Errorf("accepted a signature that is not ours")
			}
		}
	})
}
