package comm

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/it0/it0/internal/ops/approval"
)

// Route is how one escalation goes and what it tells people, as the standing order behind the run decides
// (Config.Route): the escalation rule the agent named chooses the severity and the channels; without
// one, the order's policy; without that, the tenant's default for the approval's severity.
type Route struct {
	// Severity of the escalation; "" = the report_escalation tool's severity, else critical.
	Severity string
	// Policy is the severity whose tenant policy gives the steps; "" = Severity's.
	Policy string
	// Channels, when set (an escalation rule's channel), are used at once in the first step, to the
	// primary audience, besides that step's own channels.
	Channels []string
	// Rule is the condition of the rule that applied, for the record.
	Rule string

	// What a person needs to decide at 3 am.
	Server    string // the server(s) concerned
	Order     string // the standing order's id
	OrderName string
	Finding   string // what the agent found
	Proposal  string // the action it proposes
	Why       string // why the action is beyond the order's boundary
}

// expandChannels resolves the channels of a rule: "all" is every outbound channel, "im" whichever
// instant messenger the tenant has (a messenger that is not configured is recorded as skipped).
func expandChannels(list []string) []string {
	var out []string
	add := func(c ...string) {
		for _, x := range c {
			if !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
	}
	for _, c := range list {
		switch c {
		case "all":
			add(Channels...)
		case "im":
			add(ChannelTelegram, ChannelWeCom)
		default:
			if slices.Contains(Channels, c) {
				add(c)
			}
		}
	}
	return out
}

// route asks Config.Route how approval a escalates; the zero Route without one.
func (s *Service) route(ctx context.Context, a *approval.Approval) (Route, error) {
	if s.cfg.Route == nil {
		return Route{}, nil
	}
	return s.cfg.Route(ctx, a)
}

// steps are the escalation's steps: the policy's, with a rule's channels added to the first step.
func (r Route) steps(p Policy) []Step {
	steps := slices.Clone(p.Steps)
	if extra := expandChannels(r.Channels); len(extra) > 0 {
		first := Step{Audience: AudiencePrimary, Channels: extra}
		if len(steps) > 0 && steps[0].DelaySeconds == 0 && steps[0].Audience == AudiencePrimary {
			first = steps[0]
			first.Channels = expandChannels(append(slices.Clone(extra), first.Channels...))
			steps = steps[1:]
		}
		steps = append([]Step{first}, steps...)
	}
	return steps
}

// summary is the one line that tells a person what the escalation is about: where, which order, what was
// found, what is proposed and why it needs them. Without a route it is the approval's request.
func (r Route) summary(a *approval.Approval) string {
	if r.Finding == "" && r.Order == "" {
		return a.Command
	}
	var b strings.Builder
	if r.Server != "" {
		b.WriteString(r.Server + " ")
	}
	if r.Order != "" {
		b.WriteString(strings.TrimSpace(r.Order + " " + r.OrderName))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(strings.TrimRight(cmpOr(r.Finding, a.Command), ". "))
	b.WriteString(".")
	if r.Proposal != "" {
		b.WriteString(" Proposed: " + strings.TrimRight(r.Proposal, ". "))
		if r.Why != "" {
			b.WriteString(" (" + r.Why + ")")
		}
		b.WriteString(".")
	} else if r.Why != "" {
		b.WriteString(" " + r.Why + ".")
	}
	return b.String()
}

// smsSegment is what fits in one SMS: 160 GSM-7 characters, or 70 UCS-2 characters (Chinese).
func smsSegment(s string) int {
	for _, r := range s {
		if r > 0x7e {
			return 70
		}
	}
	return 160
}

// fitSMS renders an SMS of format key with summary clipped so the whole message fits one segment when
// possible (the summary keeps at least 40 characters; the full text goes by email and in the app).
func fitSMS(locale, key, sev, summary, ref string, expires time.Time) string {
	render := func(sum string) string {
		return T(locale, key, strings.ToUpper(sev), sum, ref, ref, expiryText(locale, expires))
	}
	msg := render(summary)
	limit := smsSegment(msg)
	over := utf8.RuneCountInString(msg) - limit
	if over <= 0 {
		return msg
	}
	keep := max(utf8.RuneCountInString(summary)-over, 40)
	return render(clip(summary, keep))
}

// expiryText is when an escalation closes, in the reader's usual zone.
func expiryText(locale string, t time.Time) string {
	if Locale(locale) == "zh-CN" {
		if z, err := time.LoadLocation("Asia/Shanghai"); err == nil {
			return t.In(z).Format("15:04")
		}
	}
	return t.UTC().Format("15:04 MST")
}
