package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/it0/it0/internal/agent"
)

// chatText holds the CLI's words in each language it speaks.
var chatText = map[string]map[string]string{
	"en": {
		"prompt": "you> ", "session": "session %s on %s\n", "approval": "\n⚠ approval needed (L%d): %s\n  %s\n  approve? [y/N, or a reason to reject] ",
		"approved": "  approved\n", "rejected": "  rejected\n", "done": "\n✓ done: %s\n", "failed": "\n✗ %s: %s\n",
		"bye": "bye\n", "tool": "→ %s %s\n", "result": "← %s\n", "thinking": "…thinking\n", "waiting": "  (waiting for another approver)\n",
		"notice": "! %s\n",
	},
	"zh": {
		"prompt": "你> ", "session": "会话 %s，引擎 %s\n", "approval": "\n⚠ 需要审批（L%d）：%s\n  %s\n  批准吗？[y/N，或输入拒绝理由] ",
		"approved": "  已批准\n", "rejected": "  已拒绝\n", "done": "\n✓ 完成：%s\n", "failed": "\n✗ %s：%s\n",
		"bye": "再见\n", "tool": "→ %s %s\n", "result": "← %s\n", "thinking": "…思考中\n", "waiting": "  （等待其他审批人）\n",
		"notice": "！%s\n",
	},
}

// runChat implements `it0 chat`: talk to the agent in the terminal, answering approvals inline.
func runChat(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("it0 chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var engine, sessionID, lang string
	var servers stringList
	fs.StringVar(&engine, "engine", "", "engine for a new session (default: the tenant's)")
	fs.StringVar(&sessionID, "session", "", "continue this session instead of starting one")
	fs.StringVar(&lang, "lang", "", "zh or en (default: from your locale or LANG)")
	fs.Var(&servers, "server", "server id the task is about (repeatable)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err.Error()}
	}
	c, err := newAPIClient(getenv)
	if err != nil {
		return err
	}
	t := chatText[chatLang(ctx, c, lang, getenv("LANG"))]
	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 64<<10), 1<<20)
	readLine := func(prompt string) (string, bool) {
		fmt.Fprint(stdout, prompt)
		if !in.Scan() {
			return "", false
		}
		return strings.TrimSpace(in.Text()), true
	}
	message := strings.TrimSpace(strings.Join(fs.Args(), " "))
	var after int64
	for {
		if message == "" {
			var ok bool
			if message, ok = readLine(t["prompt"]); !ok || message == "" {
				fmt.Fprint(stdout, t["bye"])
				return nil
			}
		}
		if sessionID == "" {
			var res struct {
				SessionID string `json:"session_id"`
				Engine    string `json:"engine"`
			}
			if err := c.call(ctx, "POST", "/api/v1/agent/tasks", map[string]any{"prompt": message, "engine": engine, "server_ids": servers}, &res); err != nil {
				return err
			}
			sessionID = res.SessionID
			fmt.Fprintf(stdout, t["session"], res.SessionID, res.Engine)
		} else if err := c.call(ctx, "POST", "/api/v1/agent/sessions/"+sessionID+"/messages", map[string]string{"message": message}, nil); err != nil {
			return err
		}
		message = ""
		var err error
		if after, err = chatStream(ctx, c, sessionID, after, t, stdout, readLine); err != nil {
			return err
		}
	}
}

// chatLang picks zh or en: the flag, else the user's or tenant's locale, else LANG.
func chatLang(ctx context.Context, c *apiClient, flagLang, envLang string) string {
	pick := func(s string) string {
		if strings.HasPrefix(strings.ToLower(s), "zh") {
			return "zh"
		}
		return "en"
	}
	if flagLang != "" {
		return pick(flagLang)
	}
	var me struct {
		User   struct{ Locale string } `json:"user"`
		Tenant struct{ Locale string } `json:"tenant"`
	}
	if err := c.call(ctx, "GET", "/api/v1/auth/me", nil, &me); err == nil {
		for _, l := range []string{me.User.Locale, me.Tenant.Locale} {
			if l != "" {
				return pick(l)
			}
		}
	}
	return pick(envLang)
}

// chatStream renders a session's events from the WebSocket until the run ends, answering approvals
// inline. It returns the last sequence number seen.
func chatStream(ctx context.Context, c *apiClient, sessionID string, after int64, t map[string]string, out io.Writer,
	readLine func(string) (string, bool)) (int64, error) {
	u, err := url.Parse(c.base)
	if err != nil {
		return after, err
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	u.Path = "/ws/agent"
	u.RawQuery = url.Values{"session": {sessionID}, "after": {fmt.Sprint(after)}, "token": {c.token}}.Encode()
	for attempt := 0; ; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, _, err := websocket.Dial(dctx, u.String(), nil)
		cancel()
		if err != nil {
			return after, fmt.Errorf("open the event stream: %w", err)
		}
		conn.SetReadLimit(64 << 20)
		done, last, err := chatRender(ctx, conn, c, t, out, readLine, after)
		conn.CloseNow()
		after = last
		if done || err != nil || attempt > 5 {
			return after, err
		}
		// The server dropped a slow reader: reconnect from the last event seen.
		q := u.Query()
		q.Set("after", fmt.Sprint(after))
		u.RawQuery = q.Encode()
	}
}

func chatRender(ctx context.Context, conn *websocket.Conn, c *apiClient, t map[string]string, out io.Writer,
	readLine func(string) (string, bool), after int64) (done bool, last int64, err error) {
	last = after
	inText := false
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusTryAgainLater {
				return false, last, nil
			}
			return false, last, fmt.Errorf("event stream: %w", err)
		}
		// A message holds one or more events, one per line.
		for _, line := range strings.Split(string(b), "\n") {
			var e agent.Event
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				return false, last, fmt.Errorf("bad event: %w", err)
			}
			last = e.Seq
			if done, err := renderEvent(ctx, e, c, t, out, readLine, &inText); done || err != nil {
				return done, last, err
			}
		}
	}
}

// renderEvent prints one event, answering an approval inline; done reports the end of the run.
func renderEvent(ctx context.Context, e agent.Event, c *apiClient, t map[string]string, out io.Writer,
	readLine func(string) (string, bool), inText *bool) (done bool, err error) {
	if e.Type != agent.EventText && *inText {
		fmt.Fprintln(out)
		*inText = false
	}
	switch e.Type {
	case agent.EventText:
		fmt.Fprint(out, e.Text)
		*inText = true
	case agent.EventToolUse:
		fmt.Fprintf(out, t["tool"], e.Tool, compactJSON(e.Input))
	case agent.EventToolResult:
		fmt.Fprintf(out, t["result"], firstLine(e.Output))
	case agent.EventApprovalRequired:
		lvl := 0
		if e.RiskLevel != nil {
			lvl = *e.RiskLevel
		}
		ans, ok := readLine(fmt.Sprintf(t["approval"], lvl, e.Command, e.ApprovalID))
		if !ok {
			return true, nil // no one to ask here: it stays pending for another channel
		}
		verb, reason := "reject", ans
		if strings.EqualFold(ans, "y") || strings.EqualFold(ans, "yes") || ans == "是" {
			verb, reason = "approve", ""
		}
		err := c.call(ctx, "POST", "/api/v1/agent/approvals/"+e.ApprovalID+"/"+verb, map[string]string{"reason": reason}, nil)
		var ae *apiError
		switch {
		case errors.As(err, &ae) && ae.Status == 403:
			fmt.Fprint(out, t["waiting"])
		case err != nil:
			return false, err
		case verb == "approve":
			fmt.Fprint(out, t["approved"])
		default:
			fmt.Fprint(out, t["rejected"])
		}
	case agent.EventNotice:
		fmt.Fprintf(out, t["notice"], firstLine(e.Message))
	case agent.EventCompleted:
		fmt.Fprintf(out, t["done"], e.Summary)
		return true, nil
	case agent.EventError:
		fmt.Fprintf(out, t["failed"], e.Code, e.Message)
		return true, nil
	}
	return false, nil
}

func compactJSON(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return firstLine(string(b))
}
