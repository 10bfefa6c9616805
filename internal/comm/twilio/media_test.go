package twilio_test

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/twilio"
)

// media is a voice gateway stand-in with func fields.
type media struct {
	ready   func() error
	prepare func(ctx context.Context, m comm.OutboundMessage) (string, map[string]string, error)
}

func (m media) Ready() error { return m.ready() }
func (m media) Prepare(ctx context.Context, o comm.OutboundMessage) (string, map[string]string, error) {
	return m.prepare(ctx, o)
}

func mediaClient(t *testing.T, md twilio.MediaStreams) (*fakeTwilio, *twilio.Client) {
	f := &fakeTwilio{t: t}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, twilio.New(twilio.Config{AccountSID: "AC123", AuthToken: "tok-secret", From: "+15005550006", BaseURL: srv.URL, Media: md})
}

func TestMediaStreamCall(t *testing.T) {
	t.Parallel()
	msg := comm.OutboundMessage{To: "+8613800001111", Speech: "Disk full", Language: "en-US", GatherURL: "https://it0.example/api/v1/twilio/voice?escalation=a1",
		Data: map[string]string{"voice_session": "vs_a1", "approval_id": "a1"}}
	ready := media{ready: func() error { return nil }, prepare: func(ctx context.Context, m comm.OutboundMessage) (string, map[string]string, error) {
		return "wss://it0.example/api/v1/twilio/media", map[string]string{"voice_session": m.Data["voice_session"], "token": "t<&>"}, nil
	}}
	t.Run("Conversation", func(t *testing.T) {
		t.Parallel()
		// Ensure the call connects a Media Stream with the session and token as <Parameter>s, and keeps the
		// keypad script after it as the fallback.
		f, c := mediaClient(t, ready)
		if _, err := c.Voice().Send(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		tw := f.requests[0]["Twiml"][0]
		var doc struct {
			Stream struct {
				URL    string `xml:"url,attr"`
				Params []struct {
					Name  string `xml:"name,attr"`
					Value string `xml:"value,attr"`
				} `xml:"Parameter"`
			} `xml:"Connect>Stream"`
			Gather struct {
				Say string `xml:"Say"`
			} `xml:"Gather"`
		}
		if err := xml.Unmarshal([]byte(tw), &doc); err != nil {
			t.Fatalf("TwiML is not XML: %v\n%s", err, tw)
		}
		if doc.Stream.URL != "wss://it0.example/api/v1/twilio/media" || len(doc.Stream.Params) != 2 || doc.Stream.Params[0].Value != "t<&>" ||
			doc.Stream.Params[1].Value != "vs_a1" || doc.Gather.Say != "Disk full" {
			t.Fatalf("TwiML: %+v\n%s", doc, tw)
		}
		if mode := c.Voice().(interface{ Mode() string }).Mode(); !strings.HasPrefix(mode, "conversation") {
			t.Fatalf("Mode = %q", mode)
		}
	})
	t.Run("NotReady", func(t *testing.T) {
		t.Parallel()
		// Ensure a gateway without speech engines keeps the keypad call and says why.
		f, c := mediaClient(t, media{ready: func() error { return errors.New("voice is not configured") }})
		if _, err := c.Voice().Send(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		if tw := f.requests[0]["Twiml"][0]; strings.Contains(tw, "<Connect>") || !strings.Contains(tw, "<Gather") {
			t.Fatalf("TwiML: %s", tw)
		}
		if mode := c.Voice().(interface{ Mode() string }).Mode(); !strings.Contains(mode, "keypad") || !strings.Contains(mode, "voice is not configured") {
			t.Fatalf("Mode = %q", mode)
		}
	})
	t.Run("Hangup", func(t *testing.T) {
		t.Parallel()
		// Ensure hanging up posts Status=completed to the call.
		f, c := mediaClient(t, ready)
		if err := c.Hangup(context.Background(), "CA42"); err != nil {
			t.Fatal(err)
		}
		if f.paths[0] != "/2010-04-01/Accounts/AC123/Calls/CA42.json" || f.requests[0]["Status"][0] != "completed" {
			t.Fatalf("hangup: %s %v", f.paths[0], f.requests[0])
		}
	})
}
