package wecom_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/wecom"
)

// fakeWeCom answers like qyapi.weixin.qq.com: gettoken, message/send (checking the token) and the robot.
type fakeWeCom struct {
	t         *testing.T
	mu        sync.Mutex
	tokens    int    // gettoken calls
	valid     string // the current token
	expireNow bool   // answer the next send with 42001
	sendCode  int    // errcode for sends
	invalid   string // invaliduser of a send
	sends     []map[string]any
	robot     []map[string]any
}

func (f *fakeWeCom) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	q := r.URL.Query()
	var body map[string]any
	if r.Method == "POST" {
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			f.t.Errorf("body not JSON: %s", b)
		}
	}
	switch r.URL.Path {
	case "/cgi-bin/gettoken":
		if q.Get("corpid") != "ww1" || q.Get("corpsecret") != "app-secret" {
			fmt.Fprint(w, `{"errcode":40001,"errmsg":"invalid credential"}`)
			return
		}
		f.tokens++
		f.valid = fmt.Sprintf("tok-%d", f.tokens)
		fmt.Fprintf(w, `{"errcode":0,"errmsg":"ok","access_token":"%s","expires_in":7200}`, f.valid)
	case "/cgi-bin/message/send":
		if f.expireNow {
			f.expireNow = false
			fmt.Fprint(w, `{"errcode":42001,"errmsg":"access_token expired"}`)
			return
		}
		if q.Get("access_token") != f.valid {
			fmt.Fprint(w, `{"errcode":40014,"errmsg":"invalid access_token"}`)
			return
		}
		f.sends = append(f.sends, body)
		if f.sendCode != 0 {
			fmt.Fprintf(w, `{"errcode":%d,"errmsg":"error"}`, f.sendCode)
			return
		}
		fmt.Fprintf(w, `{"errcode":0,"errmsg":"ok","invaliduser":"%s","invalidparty":"","invalidtag":"","unlicenseduser":"","msgid":"msg-1","response_code":""}`, f.invalid)
	case "/cgi-bin/webhook/send":
		if q.Get("key") != "robot-key" {
			fmt.Fprint(w, `{"errcode":93000,"errmsg":"invalid webhook url"}`)
			return
		}
		f.robot = append(f.robot, body)
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok"}`)
	default:
		w.WriteHeader(404)
	}
}

var msg = comm.OutboundMessage{To: "zhangsan", Subject: "L2 approval", Text: "restart nginx on web-1",
	Actions: []comm.Action{{Label: "批准", URL: "https://it0.example/api/v1/comm/answer/t1"}}}

func TestAppMessage(t *testing.T) {
	t.Parallel()
	f := &fakeWeCom{t: t}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := wecom.New(wecom.Config{CorpID: "ww1", Secret: "app-secret", AgentID: 1000002, BaseURL: srv.URL})
	ctx := context.Background()
	// Ensure the message goes to the user as markdown with the agent id, and the token is cached.
	for i := 0; i < 2; i++ {
		if id, err := c.Send(ctx, msg); err != nil || id != "msg-1" {
			t.Fatalf("send %d: %q %v", i, id, err)
		}
	}
	if f.tokens != 1 {
		t.Errorf("gettoken called %d times, want 1 (cached)", f.tokens)
	}
	s := f.sends[0]
	md, _ := s["markdown"].(map[string]any)
	if s["touser"] != "zhangsan" || s["msgtype"] != "markdown" || s["agentid"] != float64(1000002) ||
		!strings.Contains(md["content"].(string), "[批准](https://it0.example/api/v1/comm/answer/t1)") {
		t.Errorf("send body %v", s)
	}
	// Ensure an expired token is refreshed once and the send retried.
	f.expireNow = true
	if _, err := c.Send(ctx, msg); err != nil || f.tokens != 2 {
		t.Errorf("after 42001: %v, tokens %d", err, f.tokens)
	}
	// Ensure rate limits are temporary, other codes permanent, and errcode 0 with invaliduser a failure.
	f.sendCode = 45009
	if _, err := c.Send(ctx, msg); !isTemp(err) {
		t.Errorf("45009: %v", err)
	}
	f.sendCode = 81013
	if _, err := c.Send(ctx, msg); err == nil || isTemp(err) {
		t.Errorf("81013: %v", err)
	}
	f.sendCode, f.invalid = 0, "zhangsan"
	if _, err := c.Send(ctx, msg); err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Errorf("partial failure: %v", err)
	}
	// Ensure a wrong secret fails at gettoken without the secret in the error.
	bad := wecom.New(wecom.Config{CorpID: "ww1", Secret: "wrong-secret", AgentID: 1, BaseURL: srv.URL})
	if _, err := bad.Send(ctx, msg); err == nil || strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("bad secret: %v", err)
	}
}

func isTemp(err error) bool { t, _ := comm.IsTemporary(err); return t }

// Ensure the robot posts markdown mentioning the user, and a wrong key fails.
func TestRobot(t *testing.T) {
	t.Parallel()
	f := &fakeWeCom{t: t}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := wecom.New(wecom.Config{WebhookKey: "robot-key", BaseURL: srv.URL})
	if err := c.Available(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	md := f.robot[0]["markdown"].(map[string]any)["content"].(string)
	if f.robot[0]["msgtype"] != "markdown" || !strings.HasPrefix(md, "**L2 approval**\nrestart nginx") || !strings.HasSuffix(md, "<@zhangsan>") {
		t.Errorf("robot body %v", f.robot[0])
	}
	bad := wecom.New(wecom.Config{WebhookKey: "other", BaseURL: srv.URL})
	if _, err := bad.Send(context.Background(), msg); err == nil || !strings.Contains(err.Error(), "93000") {
		t.Errorf("bad key: %v", err)
	}
	// A 5xx from the gateway is temporary.
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) }))
	defer down.Close()
	if _, err := wecom.New(wecom.Config{WebhookKey: "robot-key", BaseURL: down.URL}).Send(context.Background(), msg); !isTemp(err) {
		t.Errorf("502: %v", err)
	}
	if err := wecom.New(wecom.Config{}).Available(); err == nil {
		t.Error("available without config")
	}
}

// Ensure the secret and the robot key never show in logs.
func TestSecretsRedacted(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	cfg := wecom.Config{Secret: "app-secret-v", WebhookKey: "robot-key-v", WebhookURL: "https://x/send?key=robot-key-v"}
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", slog.Any("cfg", cfg))
	if strings.Contains(buf.String(), "-v") {
		t.Errorf("leaked: %s", buf.String())
	}
}

// Ensure an application message that offers answers gets a button card after the markdown when cards are
// on, whose keys are the answers' callback data and whose task_id WeCom accepts and is stable for a message.
func TestAppCards(t *testing.T) {
	t.Parallel()
	f := &fakeWeCom{t: t}
	srv := httptest.NewServer(f)
	defer srv.Close()
	m := comm.OutboundMessage{To: "li", Subject: "[IT0 WARNING] 需要您处理: disk 80% on web-2, and a subject longer than a card title",
		Text: "disk 80% on web-2\nRef 482113", Key: "esc:a1:4:c1:wecom",
		Actions: []comm.Action{{Label: "批准", Data: "y:0d9a-77", URL: "https://it0.example/a/y"}, {Label: "拒绝", Data: "n:0d9a-77", URL: "https://it0.example/a/n"}}}
	ctx := context.Background()
	off := wecom.New(wecom.Config{CorpID: "ww1", Secret: "app-secret", AgentID: 1000002, BaseURL: srv.URL})
	if _, err := off.Send(ctx, m); err != nil || len(f.sends) != 1 || f.sends[0]["msgtype"] != "markdown" {
		t.Fatalf("cards off: %v %v", err, f.sends)
	}
	on := wecom.New(wecom.Config{CorpID: "ww1", Secret: "app-secret", AgentID: 1000002, BaseURL: srv.URL, Cards: true})
	for range 2 {
		if id, err := on.Send(ctx, m); err != nil || id != "msg-1" {
			t.Fatalf("send: %q %v", id, err)
		}
	}
	if len(f.sends) != 5 || f.sends[1]["msgtype"] != "markdown" || f.sends[2]["msgtype"] != "template_card" {
		t.Fatalf("sends %v", f.sends)
	}
	card := f.sends[2]["template_card"].(map[string]any)
	task, _ := card["task_id"].(string)
	buttons, _ := card["button_list"].([]any)
	title := card["main_title"].(map[string]any)["title"].(string)
	if card["card_type"] != "button_interaction" || !regexp.MustCompile(`^[A-Za-z0-9_@-]{1,128}$`).MatchString(task) || len(buttons) != 2 ||
		buttons[0].(map[string]any)["key"] != "y:0d9a-77" || buttons[1].(map[string]any)["key"] != "n:0d9a-77" || len([]rune(title)) > 26 ||
		f.sends[2]["touser"] != "li" || f.sends[2]["agentid"] != float64(1000002) {
		t.Errorf("card %v", f.sends[2])
	}
	if again := f.sends[4]["template_card"].(map[string]any)["task_id"]; again != task {
		t.Errorf("task_id %v then %v: a retried message must keep its card's task", task, again)
	}
	// A message without button answers (a notice) gets no card.
	n := len(f.sends)
	if _, err := on.Send(ctx, comm.OutboundMessage{To: "li", Text: "daily report"}); err != nil || len(f.sends) != n+1 {
		t.Errorf("notice: %v, %d sends", err, len(f.sends)-n)
	}
}

// Ensure a card whose task_id WeCom already has (a retry whose first answer was lost) is not an error,
// while other card failures are.
func TestAppCardRetry(t *testing.T) {
	t.Parallel()
	code := 42014
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/cgi-bin/gettoken" {
			fmt.Fprint(w, `{"errcode":0,"access_token":"t","expires_in":7200}`)
			return
		}
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		if body["msgtype"] == "template_card" {
			fmt.Fprintf(w, `{"errcode":%d,"errmsg":"taskid has existed"}`, code)
			return
		}
		fmt.Fprint(w, `{"errcode":0,"msgid":"m1"}`)
	}))
	defer srv.Close()
	c := wecom.New(wecom.Config{CorpID: "ww1", Secret: "s", AgentID: 1, BaseURL: srv.URL, Cards: true})
	m := comm.OutboundMessage{To: "li", Text: "x", Key: "k", Actions: []comm.Action{{Label: "ok", Data: "y:1"}}}
	if _, err := c.Send(context.Background(), m); err != nil {
		t.Errorf("42014: %v", err)
	}
	mu.Lock()
	code = 45009
	mu.Unlock()
	_, err := c.Send(context.Background(), m)
	var ae *wecom.APIError
	if !isTemp(err) || !errors.As(err, &ae) || ae.Code != 45009 {
		t.Errorf("45009: %v", err)
	}
}
