package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/ops/approval"
)

// Notice is a report sent to people now (the comm module delivers it on the channels named).
type Notice struct {
	Audience string   // primary, backup or managers
	Channels []string // app, push, sms, phone, email, telegram, wecom
	Severity string   // info, warning, critical, fatal
	Subject  string
	Body     string
	Key      string // idempotency key: the same key is delivered once
}

// Notifier delivers notices.
type Notifier interface {
	Notify(ctx context.Context, n Notice) error
}

// Report kinds of a finished run, as recorded on the execution's audit entry.
const (
	ReportSilent   = "silent"   // a clean run that changed nothing: no message
	ReportActed    = "acted"    // it changed something on its own: push the summary
	ReportFailed   = "failed"   // it failed: push and SMS at once
	ReportStopped  = "stopped"  // a human rejected its escalation, or it timed out: push
	ReportEscalate = "escalate" // it waits for a human: the escalation chain (comm) takes over
)

// JobDigest is the durable job that sends a tenant's daily digest of standing-order runs.
const JobDigest = "standing_order.digest"

// Tenant settings of reports.
const (
	SettingReportTimezone = "report_timezone"    // IANA zone of the digest; default from the locale
	SettingDigestTime     = "report_digest_time" // HH:MM local; default 20:00
	SettingDigestEnabled  = "report_digest_enabled"
)

// ReportSettings are a tenant's report preferences.
type ReportSettings struct {
	Timezone      string `json:"timezone"`
	DigestTime    string `json:"digest_time"`
	DigestEnabled bool   `json:"digest_enabled"`
}

// reportText is the wording of reports in each locale.
var reportText = map[string]map[string]string{
	"en": {
		ReportActed:   "[IT0] %s acted on its own",
		"acted_by":    "[IT0] %s acted, approved by %s",
		ReportFailed:  "[IT0] %s FAILED",
		ReportStopped: "[IT0] %s stopped",
		"actions":     "Actions taken:",
		"error":       "Error:",
		"digest":      "[IT0] Standing orders: daily digest %s",
		"digest_line": "%s (%s): %d runs — %d clean, %d acted, %d escalated, %d failed, %d skipped",
		"digest_none": "No standing order ran in the last 24 hours.",
	},
	"zh-CN": {
		ReportActed:   "【IT0】%s 已自动处理",
		"acted_by":    "【IT0】%s 已执行（经 %s 批准）",
		ReportFailed:  "【IT0】%s 执行失败",
		ReportStopped: "【IT0】%s 已停止",
		"actions":     "执行的操作：",
		"error":       "错误：",
		"digest":      "【IT0】常设指令每日汇总 %s",
		"digest_line": "%s（%s）：共 %d 次 — 正常 %d，自动处理 %d，升级 %d，失败 %d，跳过 %d",
		"digest_none": "过去 24 小时没有常设指令运行。",
	},
}

func text(locale, key string) string {
	if t, ok := reportText[locale][key]; ok {
		return t
	}
	return reportText["en"][key]
}

// SetReports connects runs to people: n delivers notices, locale gives the tenant's language. Without it
// runs are recorded but nobody is told.
func (s *Orders) SetReports(n Notifier, locale func(ctx context.Context) string, log *slog.Logger) {
	s.notifier, s.locale, s.log = n, locale, log
}

// actionsOf lists the commands a run executed, oldest first; acted reports whether any of them could
// change something (above L0) and ran.
func (s *Orders) actionsOf(ctx context.Context, sessionID string) (list []map[string]any, acted bool) {
	recs, err := s.fleet.CommandRecords(ctx, "", sessionID, 200)
	if err != nil {
		return nil, false
	}
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		a := map[string]any{"server": r.ServerName, "command": r.Command, "risk_level": r.RiskLevel, "status": r.Status}
		if r.ExitCode != nil {
			a["exit_code"] = *r.ExitCode
		}
		list = append(list, a)
		acted = acted || changed(r.RiskLevel, r.Status)
	}
	return list, acted
}

// reportKind decides how a run's end is reported.
func reportKind(e *Execution, acted bool) string {
	switch e.Status {
	case ExecCompleted:
		if acted {
			return ReportActed
		}
		return ReportSilent
	case ExecFailed:
		return ReportFailed
	case ExecAborted:
		return ReportStopped
	case ExecAwaitingHuman:
		return ReportEscalate
	}
	return ReportSilent
}

// ApprovalLister lists a session's approvals (approval.Service).
type ApprovalLister interface {
	List(ctx context.Context, sessionID, status string, limit int) ([]approval.Approval, error)
}

// SetApprovals tells reports where to find who approved what in a run; without it reports name nobody.
func (s *Orders) SetApprovals(l ApprovalLister) { s.approvals = l }

// SetPeople tells reports how to name the person with a user id (their name or email); without it the id
// is shown.
func (s *Orders) SetPeople(name func(ctx context.Context, userID string) string) { s.people = name }

// approvers names the people who approved something in a run (a human's decision, not the order's own
// authority or a timeout), so a report never says a run acted on its own when someone approved it.
func (s *Orders) approvers(ctx context.Context, sessionID string) []string {
	if s.approvals == nil {
		return nil
	}
	list, err := s.approvals.List(ctx, sessionID, approval.Approved, 50)
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range list {
		if a.DecidedBy == "" || strings.Contains(a.DecidedBy, ":") { // standing_order:…, system:timeout, auto:…
			continue
		}
		name := a.DecidedBy
		if s.people != nil {
			name = s.people(ctx, a.DecidedBy)
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// report tells people about a finished run as its kind requires; approvers are the people who approved
// something in it. It returns the notifier's error.
func (s *Orders) report(ctx context.Context, o *StandingOrder, e *Execution, kind string, approvers []string) error {
	if s.notifier == nil || kind == ReportSilent || kind == ReportEscalate {
		return nil
	}
	loc := "en"
	if s.locale != nil {
		loc = s.locale(ctx)
	}
	var b strings.Builder
	b.WriteString(e.Summary)
	if kind == ReportFailed && e.Error != "" {
		fmt.Fprintf(&b, "\n%s %s", text(loc, "error"), e.Error)
	}
	var actions []map[string]any
	json.Unmarshal(e.ActionsTaken, &actions)
	if len(actions) > 0 {
		fmt.Fprintf(&b, "\n%s", text(loc, "actions"))
		for _, a := range actions {
			fmt.Fprintf(&b, "\n- %v: %v", a["server"], a["command"])
		}
	}
	subject := fmt.Sprintf(text(loc, kind), o.ID+" "+o.Name)
	if kind == ReportActed && len(approvers) > 0 {
		subject = fmt.Sprintf(text(loc, "acted_by"), o.ID+" "+o.Name, strings.Join(approvers, ", "))
	}
	n := Notice{Audience: "primary", Channels: []string{"app", "push"}, Severity: "info",
		Subject: subject, Body: strings.TrimSpace(b.String()), Key: "so-report:" + e.ID}
	if kind == ReportFailed {
		n.Channels, n.Severity = []string{"app", "push", "sms"}, "critical"
	}
	return s.notifier.Notify(ctx, n)
}

// defaultTimezone is the digest's zone when the tenant set none.
func defaultTimezone(locale string) string {
	if locale == "zh-CN" {
		return "Asia/Shanghai"
	}
	return "UTC"
}

// Reports returns the tenant's report settings, defaults filled in.
func (s *Orders) Reports(ctx context.Context) (ReportSettings, error) {
	st := s.store
	r := ReportSettings{DigestTime: "20:00", DigestEnabled: true}
	loc := "en"
	if s.locale != nil {
		loc = s.locale(ctx)
	}
	r.Timezone = defaultTimezone(loc)
	for key, dst := range map[string]*string{SettingReportTimezone: &r.Timezone, SettingDigestTime: &r.DigestTime} {
		if v, err := st.SettingGet(ctx, key); err != nil {
			return r, err
		} else if v != "" {
			*dst = v
		}
	}
	v, err := st.SettingGet(ctx, SettingDigestEnabled)
	r.DigestEnabled = v != "false"
	return r, err
}

// SetReportSettings validates and stores the tenant's report settings and reschedules the digest.
func (s *Orders) SetReportSettings(ctx context.Context, r ReportSettings) error {
	st := s.store
	if _, err := time.LoadLocation(r.Timezone); err != nil || r.Timezone == "" {
		return errs.Invalidf("timezone", "timezone %q is not an IANA time zone (such as Asia/Shanghai or UTC)", r.Timezone)
	}
	if _, _, err := digestClock(r.DigestTime); err != nil {
		return err
	}
	for key, v := range map[string]string{SettingReportTimezone: r.Timezone, SettingDigestTime: r.DigestTime,
		SettingDigestEnabled: fmt.Sprint(r.DigestEnabled)} {
		if err := st.SettingSet(ctx, key, v); err != nil {
			return err
		}
	}
	if _, err := s.audit.Record(ctx, audit.Record{Action: "standing_order.reports_changed", ResourceType: "tenant",
		Description: "report settings changed", Detail: map[string]any{"timezone": r.Timezone, "digest_time": r.DigestTime, "digest_enabled": r.DigestEnabled}}); err != nil {
		return err
	}
	return s.EnsureDigest(ctx)
}

// digestClock parses HH:MM.
func digestClock(v string) (h, m int, err error) {
	if _, err := fmt.Sscanf(v, "%d:%d", &h, &m); err != nil || h < 0 || h > 23 || m < 0 || m > 59 || len(v) != 5 {
		return 0, 0, errs.Invalidf("digest_time", "digest_time %q must be HH:MM on a 24-hour clock, such as 20:00", v)
	}
	return h, m, nil
}

// digestArgs are a digest job's arguments.
type digestArgs struct {
	At time.Time `json:"at"`
}

// EnsureDigest queues the tenant's next daily digest, once (the job key names the day).
func (s *Orders) EnsureDigest(ctx context.Context) error {
	if s.schedule == nil || s.nextCron == nil {
		return nil
	}
	r, err := s.Reports(ctx)
	if err != nil || !r.DigestEnabled {
		return err
	}
	h, m, err := digestClock(r.DigestTime)
	if err != nil {
		return err
	}
	next, err := s.nextCron(fmt.Sprintf("%d %d * * *", m, h), r.Timezone, s.now())
	if err != nil {
		return err
	}
	return s.schedule(ctx, JobDigest, digestArgs{At: next}, next, "so-digest:"+tenantOf(ctx)+":"+next.UTC().Format(time.RFC3339))
}

// HandleDigest sends the digest of the last 24 hours of runs and queues the next one (the JobDigest
// handler). A digest whose time no longer matches the settings was superseded and is dropped.
func (s *Orders) HandleDigest(ctx context.Context, raw json.RawMessage) error {
	var a digestArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		return errs.Invalidf("args", "digest job arguments: %v", err)
	}
	r, err := s.Reports(ctx)
	if err != nil {
		return err
	}
	h, m, err := digestClock(r.DigestTime)
	if err != nil || !r.DigestEnabled {
		return nil
	}
	if want, err := s.nextCron(fmt.Sprintf("%d %d * * *", m, h), r.Timezone, a.At.Add(-time.Second)); err != nil || !want.Equal(a.At) {
		return nil
	}
	if err := s.EnsureDigest(ctx); err != nil {
		return err
	}
	subject, body, err := s.Digest(ctx, a.At.Add(-24*time.Hour), a.At, r.Timezone)
	if err != nil || s.notifier == nil {
		return err
	}
	return s.notifier.Notify(ctx, Notice{Audience: "primary", Channels: []string{"app", "push", "email"}, Severity: "info",
		Subject: subject, Body: body, Key: "so-digest:" + tenantOf(ctx) + ":" + a.At.UTC().Format(time.RFC3339)})
}

// Digest summarises the runs started in [from, to) per order, in the tenant's language.
func (s *Orders) Digest(ctx context.Context, from, to time.Time, tz string) (subject, body string, err error) {
	loc := "en"
	if s.locale != nil {
		loc = s.locale(ctx)
	}
	zone, err := time.LoadLocation(tz)
	if err != nil {
		zone = time.UTC
	}
	subject = fmt.Sprintf(text(loc, "digest"), to.In(zone).Format("2006-01-02"))
	type counts struct {
		name                                            string
		total, clean, acted, escalated, failed, skipped int
	}
	per := map[string]*counts{}
	list, err := s.store.ExecutionList(ctx, "", "", 5000)
	if err != nil {
		return "", "", err
	}
	orders, err := s.store.StandingOrderList(ctx, "")
	if err != nil {
		return "", "", err
	}
	names := make(map[string]string, len(orders))
	for _, o := range orders {
		names[o.ID] = o.Name
	}
	for _, e := range list {
		if e.StartedAt.Before(from) || !e.StartedAt.Before(to) {
			continue
		}
		c := per[e.OrderID]
		if c == nil {
			c = &counts{name: names[e.OrderID]}
			per[e.OrderID] = c
		}
		c.total++
		switch {
		case e.Status == ExecSkipped:
			c.skipped++
		case e.Status == ExecFailed:
			c.failed++
		case len(e.Escalation) > 0 || e.Status == ExecAwaitingHuman || e.Status == ExecAborted:
			c.escalated++
		case actedRun(e.ActionsTaken):
			c.acted++
		default:
			c.clean++
		}
	}
	if len(per) == 0 {
		return subject, text(loc, "digest_none"), nil
	}
	ids := make([]string, 0, len(per))
	for id := range per {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b strings.Builder
	for _, id := range ids {
		c := per[id]
		fmt.Fprintf(&b, text(loc, "digest_line")+"\n", id, c.name, c.total, c.clean, c.acted, c.escalated, c.failed, c.skipped)
	}
	return subject, strings.TrimSpace(b.String()), nil
}

// actedRun reports whether a run's recorded actions changed something.
func actedRun(actions json.RawMessage) bool {
	var list []struct {
		RiskLevel int    `json:"risk_level"`
		Status    string `json:"status"`
	}
	json.Unmarshal(actions, &list)
	for _, a := range list {
		if changed(a.RiskLevel, a.Status) {
			return true
		}
	}
	return false
}

// changed reports whether a command could have changed something: above L0, and it ran.
func changed(level int, status string) bool { return level > 0 && status == inventory.StatusOK }
