package telegram_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/telegram"
)

const token = "123456:ABC-secret-token"

// fakeBot answers like api.telegram.org: /bot<token>/<method>, JSON in, {"ok":…} out.
type fakeBot struct {
	t      *testing.T
	fail   string // "429" or "400" to answer with that error
	bodies map[string][]map[string]any
}

func (f *fakeBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method, ok := strings.CutPrefix(r.URL.Path, "/bot"+token+"/")
	if !ok {
		w.WriteHeader(404)
		fmt.Fprint(w, `{"ok":false,"error_code":404,"description":"Not Found"}`)
		return
	}
	if r.Method != "POST" || r.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("%s %s", r.Method, r.Header.Get("Content-Type"))
	}
	var body map[string]any
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		f.t.Errorf("body is not JSON: %s", b)
	}
	f.bodies[method] = append(f.bodies[method], body)
	switch f.fail {
	case "429":
		w.WriteHeader(429)
		fmt.Fprint(w, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}`)
		return
	case "400":
		w.WriteHeader(400)
		fmt.Fprint(w, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`)
		return
	}
	switch method {
	case "sendMessage":
		fmt.Fprintf(w, `{"ok":true,"result":{"message_id":77,"chat":{"id":%v,"type":"private"},"date":1767225600,"text":"x"}}`, body["chat_id"])
	case "answerCallbackQuery":
		fmt.Fprint(w, `{"ok":true,"result":true}`)
	default:
		w.WriteHeader(404)
		fmt.Fprint(w, `{"ok":false,"error_code":404,"description":"Not Found: method not found"}`)
	}
}

func setup(t *testing.T) (*fakeBot, *telegram.Client) {
	f := &fakeBot{t: t, bodies: map[string][]map[string]any{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, telegram.New(telegram.Config{Token: token, WebhookSecret: "hook_secret-1", BaseURL: srv.URL})
}

var msg = comm.OutboundMessage{To: "123456789", Subject: "L3 <approval>", Text: "restart nginx on web-1 & co",
	Actions: []comm.Action{{Label: "Approve", Data: "y:0b1e8c1e-5a43-4a7f-9b7d-0d2cf1f0f001"}, {Label: "Reject", Data: "n:0b1e8c1e-5a43-4a7f-9b7d-0d2cf1f0f001"}}}

func TestSend(t *testing.T) {
	t.Parallel()
	// Ensure sendMessage carries the numeric chat id, escaped HTML and one row of callback buttons.
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		f, c := setup(t)
		id, err := c.Send(context.Background(), msg)
		if err != nil || id != "77" {
			t.Fatalf("send: %q %v", id, err)
		}
		b := f.bodies["sendMessage"][0]
		if b["chat_id"] != float64(123456789) || b["parse_mode"] != "HTML" || b["text"] != "<b>L3 &lt;approval&gt;</b>\nrestart nginx on web-1 &amp; co" {
			t.Errorf("body %v", b)
		}
		kb, _ := json.Marshal(b["reply_markup"])
		if string(kb) != `{"inline_keyboard":[[{"callback_data":"y:0b1e8c1e-5a43-4a7f-9b7d-0d2cf1f0f001","text":"Approve"},{"callback_data":"n:0b1e8c1e-5a43-4a7f-9b7d-0d2cf1f0f001","text":"Reject"}]]}` {
			t.Errorf("keyboard %s", kb)
		}
	})
	// Ensure 429 is temporary with retry_after from the body; 400 is permanent; the token never shows.
	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		f, c := setup(t)
		f.fail = "429"
		_, err := c.Send(context.Background(), msg)
		if temp, after := comm.IsTemporary(err); !temp || after != 5*time.Second {
			t.Errorf("429: %v", err)
		}
		f.fail = "400"
		_, err = c.Send(context.Background(), msg)
		if temp, _ := comm.IsTemporary(err); temp || err == nil || !strings.Contains(err.Error(), "chat not found") {
			t.Errorf("400: %v", err)
		}
		bad := telegram.New(telegram.Config{Token: token, BaseURL: "http://127.0.0.1:1"})
		if _, err := bad.Send(context.Background(), msg); err == nil || strings.Contains(err.Error(), "secret-token") {
			t.Errorf("network error leaks the token: %v", err)
		}
	})
	// Ensure answerCallbackQuery names the callback.
	t.Run("AnswerCallback", func(t *testing.T) {
		t.Parallel()
		f, c := setup(t)
		if err := c.AnswerCallback(context.Background(), "4382bfdwdsb323b2d9", "Approved"); err != nil {
			t.Fatal(err)
		}
		if b := f.bodies["answerCallbackQuery"][0]; b["callback_query_id"] != "4382bfdwdsb323b2d9" || b["text"] != "Approved" {
			t.Errorf("body %v", b)
		}
	})
	t.Run("Unavailable", func(t *testing.T) {
		t.Parallel()
		if err := telegram.New(telegram.Config{}).Available(); err == nil {
			t.Error("available without a token")
		}
	})
}

func TestCheckSecret(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	if !c.CheckSecret("hook_secret-1") || c.CheckSecret("hook_secret-2") || c.CheckSecret("") {
		t.Error("secret check")
	}
	if telegram.New(telegram.Config{Token: token}).CheckSecret("") {
		t.Error("an unset secret must refuse everything")
	}
}

func TestParseUpdate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		want       telegram.Update
		err        bool
	}{
		{"Message", `{"update_id":901,"message":{"message_id":77,"from":{"id":123456789,"is_bot":false,"first_name":"Li"},"chat":{"id":123456789,"type":"private"},"date":1767225600,"text":"Y 123456"}}`,
			telegram.Update{UpdateID: 901, ChatID: "123456789", FromID: "123456789", Text: "Y 123456"}, false},
		{"Callback", `{"update_id":902,"callback_query":{"id":"4382bfdwdsb323b2d9","from":{"id":123456789,"is_bot":false,"first_name":"Li"},"message":{"message_id":80,"chat":{"id":123456789,"type":"private"},"date":1767225700,"text":"L3"},"chat_instance":"-8817","data":"y:42"}}`,
			telegram.Update{UpdateID: 902, FromID: "123456789", CallbackID: "4382bfdwdsb323b2d9", CallbackData: "y:42"}, false},
		{"Other", `{"update_id":903,"edited_message":{}}`, telegram.Update{UpdateID: 903}, false},
		{"NoID", `{"message":{}}`, telegram.Update{}, true},
		{"Garbage", `[1,2`, telegram.Update{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := telegram.ParseUpdate([]byte(tc.body))
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("got %+v %v", got, err)
			}
		})
	}
}

func FuzzParseUpdate(f *testing.F) {
	f.Add([]byte(`{"update_id":902,"callback_query":{"id":"x","from":{"id":1},"data":"y:42"}}`))
	f.Add([]byte(`{"update_id":901,"message":{"chat":{"id":-100123},"text":"N"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := telegram.ParseUpdate(b)
		if err != nil && u != (telegram.Update{}) {
			t.Errorf("error with data: %+v", u)
		}
	})
}

// Ensure the token and the webhook secret never show in logs.
func TestSecretsRedacted(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	cfg := telegram.Config{Token: token, WebhookSecret: "hook_secret-1"}
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", slog.Any("cfg", cfg))
	if strings.Contains(buf.String(), "secret-token") || strings.Contains(buf.String(), "hook_secret") {
		t.Errorf("leaked: %s", buf.String())
	}
}
