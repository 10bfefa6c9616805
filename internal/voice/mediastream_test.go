package voice

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

var goodTwilio = []string{
	`{"event":"connected","protocol":"Call","version":"1.0.0"}`,
	`{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"customParameters":{"voice_session":"vs_1","token":"t"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}`,
	`{"event":"media","sequenceNumber":"3","streamSid":"MZ1","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"` + base64.StdEncoding.EncodeToString(make([]byte, 160)) + `"}}`,
	`{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"end"}}`,
	`{"event":"dtmf","sequenceNumber":"5","streamSid":"MZ1","dtmf":{"track":"inbound_track","digit":"1"}}`,
	`{"event":"stop","sequenceNumber":"6","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}}`,
}

func TestParseTwilio(t *testing.T) {
	t.Parallel()
	for _, s := range goodTwilio {
		m, err := ParseTwilio([]byte(s))
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if m.Event == TwilioMedia && len(m.Audio) != 160 {
			t.Fatalf("media audio = %d bytes", len(m.Audio))
		}
		if m.Event == TwilioStart && m.Start.CustomParameters["voice_session"] != "vs_1" {
			t.Fatalf("start parameters = %v", m.Start.CustomParameters)
		}
	}
	for _, tc := range []struct{ name, msg, want string }{
		{"NotJSON", `hello`, "not JSON"},
		{"UnknownEvent", `{"event":"dance","streamSid":"MZ1"}`, "unknown event"},
		{"BadBase64", `{"event":"media","streamSid":"MZ1","media":{"payload":"***"}}`, "not base64"},
		{"EmptyPayload", `{"event":"media","streamSid":"MZ1","media":{"payload":""}}`, "0 bytes"},
		{"HugePayload", `{"event":"media","streamSid":"MZ1","media":{"payload":"` + base64.StdEncoding.EncodeToString(make([]byte, 4000)) + `"}}`, "4000 bytes"},
		{"SeqNotInt", `{"event":"mark","sequenceNumber":"x","streamSid":"MZ1","mark":{"name":"a"}}`, "sequenceNumber"},
		{"StartWithoutBody", `{"event":"start","streamSid":"MZ1"}`, "start without"},
		{"WrongFormat", `{"event":"start","streamSid":"MZ1","start":{"mediaFormat":{"encoding":"audio/l16","sampleRate":16000,"channels":1}}}`, "media format"},
		{"MediaNoSid", `{"event":"media","media":{"payload":"AAAA"}}`, "streamSid"},
		{"TooLarge", `{"event":"connected","x":"` + strings.Repeat("a", MaxTwilioMessage) + `"}`, "bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTwilio([]byte(tc.msg))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrMalformed saying %q", err, tc.want)
			}
		})
	}
}

func TestTwilioOut(t *testing.T) {
	t.Parallel()
	var m struct {
		Event, StreamSid string
		Media            struct{ Payload string }
	}
	if err := json.Unmarshal(TwilioMediaOut(`MZ"1`, []byte{1, 2, 3}), &m); err != nil || m.Event != "media" || m.StreamSid != `MZ"1` {
		t.Fatalf("media out: %+v %v", m, err)
	}
	if b, _ := base64.StdEncoding.DecodeString(m.Media.Payload); string(b) != "\x01\x02\x03" {
		t.Fatalf("payload %q", m.Media.Payload)
	}
}

func FuzzParseTwilio(f *testing.F) {
	for _, s := range goodTwilio {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseTwilio(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if m.Event == TwilioMedia && (len(m.Audio) == 0 || len(m.Audio) > MaxTwilioPayload) {
			t.Fatalf("media of %d bytes accepted", len(m.Audio))
		}
		if m.Event == TwilioStart && m.Start == nil {
			t.Fatal("start without body accepted")
		}
	})
}
