package voice

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/it0/it0/internal/agent/agentapi"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/ops/approval"
)

// phrases holds everything the gateway says itself, per language. Keys are fmt formats.
var phrases = map[string]map[string]string{
	"en": {
		"greeting":        "Hello, this is I T zero. %s needs your decision. %s",
		"order":           "The standing order %s",
		"run":             "A run",
		"proposal":        "On %s, I propose to run: %s. Risk level L%d. Do you approve?",
		"proposal_noserv": "I propose to run: %s. Risk level L%d. Do you approve?",
		"decided":         "This request was already %s. Goodbye.",
		"confirm_approve": "Approved. I will go ahead now. Goodbye.",
		"confirm_reject":  "Rejected. I will not run it. Goodbye.",
		"ask_again":       "Sorry, I did not get that. Please say yes to approve, or no to reject.",
		"give_up":         "I could not get an answer. I will try the next contact. Goodbye.",
		"answer_failed":   "Your answer could not be recorded: %s. Goodbye.",
		"stt_failed":      "Sorry, I could not hear that.",
		"approval_ask":    "I need your approval to run %s, risk level L%d. Say approve or reject.",
		"approve_or_not":  "Please say approve or reject.",
		"approved":        "Approved.",
		"rejected":        "Rejected.",
		"agent_error":     "Something went wrong: %s",
		"busy":            "I am still working on the previous request.",
	},
	"zh-CN": {
		"greeting":        "您好，我是 IT0。%s需要您决定。%s",
		"order":           "值守任务“%s”",
		"run":             "一个任务",
		"proposal":        "我建议在 %s 上执行：%s。风险等级 L%d。您同意吗？",
		"proposal_noserv": "我建议执行：%s。风险等级 L%d。您同意吗？",
		"decided":         "这个请求已经%s。再见。",
		"confirm_approve": "已批准，我现在就执行。再见。",
		"confirm_reject":  "已拒绝，不会执行。再见。",
		"ask_again":       "抱歉，我没有听清。同意请说“同意”，拒绝请说“不同意”。",
		"give_up":         "没有得到答复，我会联系下一位联系人。再见。",
		"answer_failed":   "您的答复未能记录：%s。再见。",
		"stt_failed":      "抱歉，我没有听清。",
		"approval_ask":    "执行 %s 需要您的批准，风险等级 L%d。请说“同意”或“拒绝”。",
		"approve_or_not":  "请说“同意”或“拒绝”。",
		"approved":        "已批准。",
		"rejected":        "已拒绝。",
		"agent_error":     "出错了：%s",
		"busy":            "我还在处理上一个请求。",
	},
}

// say renders phrase key in lang.
func phrase(lang, key string, args ...any) string {
	f, ok := phrases[Lang(lang)][key]
	if !ok {
		f = phrases["en"][key]
	}
	if len(args) == 0 {
		return f
	}
	return fmt.Sprintf(f, args...)
}

// escalationBrain is an escalation call: it tells the contact what the run wants, asks, and decides the
// approval with their spoken answer (as their SMS answer would). Unclear answers and silence are asked
// about once more; after that the call ends and the escalation chain goes on.
type escalationBrain struct {
	s       *Service
	claims  *streamClaims
	callSID string
	vsID    string
	asks    int
	outcome string
	decided bool
}

func (b *escalationBrain) Greeting(ctx context.Context) (string, bool, error) {
	a, err := b.s.agent.Approval(ctx, b.claims.Approval)
	if err != nil {
		return "", false, err
	}
	lang := b.claims.Lang
	if a.Status != approval.Pending {
		b.outcome = "already_" + a.Status
		return phrase(lang, "decided", a.Status), true, nil
	}
	who := phrase(lang, "run")
	if sess, err := b.s.agent.Session(ctx, a.SessionID); err == nil && sess.Title != "" {
		who = phrase(lang, "order", sess.Title)
	}
	var what strings.Builder
	if a.Reason != "" {
		what.WriteString(strings.TrimRight(a.Reason, ".。") + ". ")
	}
	if srv := serverOf(a.ToolInput); srv != "" {
		what.WriteString(phrase(lang, "proposal", srv, a.Command, a.RiskLevel))
	} else {
		what.WriteString(phrase(lang, "proposal_noserv", a.Command, a.RiskLevel))
	}
	return phrase(lang, "greeting", who, what.String()), false, nil
}

// serverOf finds the target server(s) in a tool call's input.
func serverOf(input json.RawMessage) string {
	var in struct {
		Server  string   `json:"server"`
		Servers []string `json:"servers"`
	}
	if len(input) == 0 || json.Unmarshal(input, &in) != nil {
		return ""
	}
	if in.Server != "" {
		return in.Server
	}
	return strings.Join(in.Servers, ", ")
}

func (b *escalationBrain) Turn(ctx context.Context, u Utterance, say func(string)) (bool, error) {
	lang := b.claims.Lang
	in := ParseIntent(u.Text)
	if u.Silence || u.Failed || in.Kind == Unclear {
		b.asks++
		if b.asks == 1 {
			say(phrase(lang, "ask_again"))
			return false, nil
		}
		b.outcome = "no_answer"
		say(phrase(lang, "give_up"))
		return true, nil
	}
	if b.s.answers == nil {
		return true, errs.New(errs.Unavailable, "escalation answers are not wired")
	}
	data, outcome, confirm := "y:"+b.claims.Approval, "approved", "confirm_approve"
	if in.Kind == Reject {
		data, outcome, confirm = "n:"+b.claims.Approval, "rejected", "confirm_reject"
	}
	reply, err := b.s.answers.InboundButton(ctx, "phone", b.claims.To, data, "twilio:"+b.callSID+":voice:"+b.vsID)
	if err != nil {
		b.outcome = "refused"
		say(phrase(lang, "answer_failed", cmpOr(reply, err.Error())))
		return true, nil
	}
	b.outcome, b.decided = outcome, true
	say(phrase(lang, confirm))
	return true, nil
}

// agentBrain is the console's conversation with an agent session: each final transcript is a user turn
// of the session, and the reply is spoken as it streams. While the session waits for an approval, the
// answer approves or rejects it as the signed-in user (the same rules as the approvals API).
type agentBrain struct {
	s         *Service
	sessionID string
	lang      string
}

func (b *agentBrain) Greeting(context.Context) (string, bool, error) { return "", false, nil }

// replyTimeout bounds how long one turn waits for the agent's run.
const replyTimeout = 10 * time.Minute

func (b *agentBrain) Turn(ctx context.Context, u Utterance, say func(string)) (bool, error) {
	switch {
	case u.Failed:
		say(phrase(b.lang, "stt_failed"))
		return false, nil
	case u.Text == "":
		return false, nil
	}
	sess, err := b.s.agent.Session(ctx, b.sessionID)
	if err != nil {
		return false, err
	}
	events, stop := b.s.agent.Follow(b.sessionID)
	defer stop()
	if sess.Status == agentapi.StatusAwaitingApproval {
		in := ParseIntent(u.Text)
		if in.Kind == Unclear {
			say(phrase(b.lang, "approve_or_not"))
			return false, nil
		}
		pending, err := b.s.agent.Approvals(ctx, b.sessionID, approval.Pending, 20)
		if err != nil {
			return false, err
		}
		for _, a := range pending {
			if _, err := b.s.agent.Decide(ctx, a.ID, in.Kind == Approve, "by voice: "+clipStr(u.Text, 200)); err != nil {
				say(phrase(b.lang, "agent_error", err.Error()))
				return false, nil
			}
		}
		say(phrase(b.lang, map[IntentKind]string{Approve: "approved", Reject: "rejected"}[in.Kind]))
	} else if _, err := b.s.agent.SendMessage(ctx, b.sessionID, u.Text); err != nil {
		if errs.Is(err, errs.Conflict) {
			say(phrase(b.lang, "busy"))
			return false, nil
		}
		return false, err
	}
	return false, b.speakRun(ctx, events, say)
}

// speakRun speaks the session's answer text, sentence by sentence, until the run completes, fails or
// pauses for an approval (which it asks for).
func (b *agentBrain) speakRun(ctx context.Context, events <-chan agentapi.Message, say func(string)) error {
	ctx, cancel := context.WithTimeout(ctx, replyTimeout)
	defer cancel()
	var buf string
	flush := func() {
		if s := strings.TrimSpace(buf); s != "" {
			say(s)
		}
		buf = ""
	}
	for {
		select {
		case <-ctx.Done():
			flush()
			return ctx.Err()
		case m, ok := <-events:
			if !ok {
				flush()
				return nil
			}
			var e agentapi.Event
			if json.Unmarshal(m.JSON, &e) != nil {
				continue
			}
			switch e.Type {
			case agentapi.EventText:
				var done []string
				done, buf = Sentences(buf + e.Text)
				for _, s := range done {
					say(s)
				}
			case agentapi.EventApprovalRequired:
				flush()
				lvl := 0
				if e.RiskLevel != nil {
					lvl = *e.RiskLevel
				}
				say(phrase(b.lang, "approval_ask", e.Command, lvl))
				return nil
			case agentapi.EventCompleted:
				flush()
				return nil
			case agentapi.EventError:
				flush()
				say(phrase(b.lang, "agent_error", e.Message))
				return nil
			}
		}
	}
}
