// Package checks is health checking: a Check probes an HTTP(S) URL, a TCP port, a host (ICMP echo), an
// inventory server over SSH through its jump chain, or runs a guarded L0 command, and keeps a state (up,
// down, unknown) that changes only after Retries consecutive failures. The Scheduler runs every enabled
// check of every tenant on its own fixed slots (a per-check phase spreads them), at most Concurrency at a
// time; replicas sharing a database claim each slot once. Results are pruned after a retention period.
package checks

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/it0/it0/internal/errs"
)

// Type is what a health check probes.
type Type string

// Check types.
const (
	TypeHTTP   Type = "http"   // an HTTP(S) URL: status, body match, TLS certificate expiry
	TypeTCP    Type = "tcp"    // a TCP connect to host:port
	TypePing   Type = "ping"   // ICMP echo where permitted, otherwise a TCP connect reported as such
	TypeSSH    Type = "ssh"    // an SSH session to an inventory server through its jump chain
	TypeCustom Type = "custom" // a guarded L0 command over SSH with an expected exit code and output
)

// Types lists every check type.
var Types = []Type{TypeHTTP, TypeTCP, TypePing, TypeSSH, TypeCustom}

// State is a check's current verdict.
type State string

// Check states.
const (
	Unknown State = "unknown" // never run yet
	Up      State = "up"
	Down    State = "down"
)

// TLS expiry actions: what a certificate closer to expiry than TLSExpiryDays does to an otherwise good result.
const (
	TLSExpiryDown = "down" // the result is down
	TLSExpiryWarn = "warn" // the result stays up and carries a warning
)

// Bounds of a check's timing.
const (
	MinInterval = 5 * time.Second
	MaxInterval = 24 * time.Hour
	MaxRetries  = 10
)

// Check is one health check of the tenant. The fields up to UpdatedAt are its definition, sent by clients;
// the rest is its state, kept by the checker.
type Check struct {
	ID       string `json:"id"`
	TenantID string `json:"tenant_id"`
	Name     string `json:"name"`
	Type     Type   `json:"type"`
	// Target is what to probe: a URL (http), host:port (tcp), a host (ping). For ssh and custom checks it is
	// the inventory server id (the same as ServerID).
	Target string `json:"target"`
	// ServerID links the check to an inventory server. Required for ssh and custom; optional otherwise, where
	// it names the server a check_failed event is about.
	ServerID        string `json:"server_id,omitempty"`
	IntervalSeconds int    `json:"interval_seconds"`
	TimeoutSeconds  int    `json:"timeout_seconds"`
	// Retries is how many consecutive results must disagree with the current state before it changes
	// (0 and 1 both mean one result is enough).
	Retries int `json:"retries"`
	// JitterSeconds delays each run by a random amount below it, on top of the check's fixed phase.
	JitterSeconds int  `json:"jitter_seconds,omitempty"`
	Enabled       bool `json:"enabled"`

	// ExpectedStatus is the HTTP status a good answer has; 0 accepts 200–399. Redirects are not followed.
	ExpectedStatus int `json:"expected_status,omitempty"`
	// BodyContains must occur in the first MiB of the body.
	BodyContains string `json:"body_contains,omitempty"`
	// BodyRegex must match the first MiB of the body (Go RE2 syntax).
	BodyRegex string `json:"body_regex,omitempty"`
	// TLSExpiryDays: a certificate with fewer days left fails the check (TLSExpiryAction "down", the
	// default) or adds a warning ("warn"). 0 does not look at expiry.
	TLSExpiryDays   int    `json:"tls_expiry_days,omitempty"`
	TLSExpiryAction string `json:"tls_expiry_action,omitempty"`
	// FallbackPort is the TCP port a ping check connects to when ICMP is not permitted (default 22).
	FallbackPort int `json:"fallback_port,omitempty"`
	// Command is the custom check's command: it must classify as L0 (read-only).
	Command string `json:"command,omitempty"`
	// ExpectedExitCode is the custom command's good exit code.
	ExpectedExitCode int `json:"expected_exit_code,omitempty"`
	// OutputMatch is a regular expression the custom command's stdout must match (optional).
	OutputMatch string `json:"output_match,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	State          State      `json:"state"`
	StateChangedAt *time.Time `json:"state_changed_at,omitempty"`
	// Streak counts the latest consecutive results that disagree with State.
	Streak        int        `json:"streak"`
	LastCheckedAt *time.Time `json:"last_checked_at,omitempty"`
	LastStatus    State      `json:"last_status,omitempty"`
	LastMessage   string     `json:"last_message,omitempty"`
}

// Interval is the time between runs.
func (c *Check) Interval() time.Duration { return time.Duration(c.IntervalSeconds) * time.Second }

// Timeout bounds one run.
func (c *Check) Timeout() time.Duration { return time.Duration(c.TimeoutSeconds) * time.Second }

// Jitter is the upper bound of the random delay of each run.
func (c *Check) Jitter() time.Duration { return time.Duration(c.JitterSeconds) * time.Second }

// Result is the outcome of one run.
type Result struct {
	ID      int64  `json:"id"`
	CheckID string `json:"check_id"`
	Status  State  `json:"status"` // up or down
	// CheckedAt is when the run started; Lateness how long after its scheduled time.
	CheckedAt  time.Time `json:"checked_at"`
	DurationMS int64     `json:"duration_ms"`
	LatenessMS int64     `json:"lateness_ms"`
	Message    string    `json:"message"`
	// Method says how the probe was made where it can vary: ping "icmp", "icmp-unprivileged" or
	// "tcp-fallback".
	Method      string `json:"method,omitempty"`
	StatusCode  int    `json:"status_code,omitempty"`
	TLSDaysLeft *int   `json:"tls_days_left,omitempty"`
	ExitCode    *int   `json:"exit_code,omitempty"`
	Warning     string `json:"warning,omitempty"`
}

// Transition is a change of a check's state.
type Transition struct {
	ID      int64     `json:"id"`
	CheckID string    `json:"check_id"`
	From    State     `json:"from"`
	To      State     `json:"to"`
	At      time.Time `json:"at"`
	// Results is how many consecutive results agreed on To; Message is the last one's.
	Results int    `json:"results"`
	Message string `json:"message"`
}

// observe applies one result to c's state and returns the transition it causes, if any.
//
// Policy: a check whose state is unknown takes the state of its first result at once, since there is no
// established state to protect from flapping and a new check should not stay unknown for retries×interval.
// After that the state changes only when Retries consecutive results (at least one) disagree with it;
// one agreeing result resets the count.
func (c *Check) observe(r *Result) *Transition {
	c.LastCheckedAt, c.LastStatus, c.LastMessage = &r.CheckedAt, r.Status, r.Message
	if r.Status == c.State {
		c.Streak = 0
		return nil
	}
	c.Streak++
	if c.State != Unknown && c.Streak < max(c.Retries, 1) {
		return nil
	}
	t := &Transition{CheckID: c.ID, From: c.State, To: r.Status, At: r.CheckedAt, Results: c.Streak, Message: r.Message}
	c.State, c.StateChangedAt, c.Streak = r.Status, &r.CheckedAt, 0
	return t
}

var (
	checkNamePattern = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} ._:/@()-]{0,99}$`)
	checkHostPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.:-]{0,252})$`)
)

// Validate checks c's definition and fills defaults; every problem is reported with its field.
func (c *Check) Validate() error {
	var list []error
	bad := func(field, format string, args ...any) { list = append(list, errs.Invalidf(field, format, args...)) }
	c.Name = strings.TrimSpace(c.Name)
	if !checkNamePattern.MatchString(c.Name) {
		bad("name", "name is required: 1 to 100 letters, digits, spaces or ._:/@()- starting with a letter or digit")
	}
	if !slices.Contains(Types, c.Type) {
		bad("type", "type %q is not one of http, tcp, ping, ssh, custom", c.Type)
	}
	if c.IntervalSeconds == 0 {
		c.IntervalSeconds = 60
	}
	if c.Interval() < MinInterval || c.Interval() > MaxInterval {
		bad("interval_seconds", "interval_seconds must be from %d to %d", int(MinInterval.Seconds()), int(MaxInterval.Seconds()))
	}
	if c.TimeoutSeconds == 0 {
		c.TimeoutSeconds = min(10, c.IntervalSeconds-1)
	}
	if c.TimeoutSeconds < 1 || c.TimeoutSeconds >= c.IntervalSeconds {
		bad("timeout_seconds", "timeout_seconds must be at least 1 and less than interval_seconds (%d)", c.IntervalSeconds)
	}
	if c.Retries < 0 || c.Retries > MaxRetries {
		bad("retries", "retries must be from 0 to %d (consecutive results needed to change state)", MaxRetries)
	}
	// A run, delayed by its jitter, must end before the next one may start.
	if c.JitterSeconds < 0 || c.JitterSeconds > 0 && c.JitterSeconds > c.IntervalSeconds-c.TimeoutSeconds {
		bad("jitter_seconds", "jitter_seconds must be from 0 to interval_seconds − timeout_seconds (%d)", max(0, c.IntervalSeconds-c.TimeoutSeconds))
	}
	if c.ServerID != "" && len(c.ServerID) > 100 {
		bad("server_id", "server_id is too long")
	}
	notFor := func(field string, set bool, types ...Type) {
		if set && !slices.Contains(types, c.Type) {
			bad(field, "%s applies only to %s checks", field, joinTypes(types))
		}
	}
	notFor("expected_status", c.ExpectedStatus != 0, TypeHTTP)
	notFor("body_contains", c.BodyContains != "", TypeHTTP)
	notFor("body_regex", c.BodyRegex != "", TypeHTTP)
	notFor("tls_expiry_days", c.TLSExpiryDays != 0, TypeHTTP)
	notFor("tls_expiry_action", c.TLSExpiryAction != "", TypeHTTP)
	notFor("fallback_port", c.FallbackPort != 0, TypePing)
	notFor("command", c.Command != "", TypeCustom)
	notFor("expected_exit_code", c.ExpectedExitCode != 0, TypeCustom)
	notFor("output_match", c.OutputMatch != "", TypeCustom)

	switch c.Type {
	case TypeHTTP:
		u, err := url.Parse(c.Target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("target", "target must be an http:// or https:// URL for an http check")
		}
		if c.ExpectedStatus != 0 && (c.ExpectedStatus < 100 || c.ExpectedStatus > 599) {
			bad("expected_status", "expected_status must be an HTTP status from 100 to 599 (0 accepts 200–399)")
		}
		if len(c.BodyContains) > 4096 {
			bad("body_contains", "body_contains must be at most 4096 bytes")
		}
		if c.BodyRegex != "" {
			if _, err := regexp.Compile(c.BodyRegex); err != nil || len(c.BodyRegex) > 4096 {
				bad("body_regex", "body_regex is not a valid regular expression (RE2 syntax, at most 4096 bytes)")
			}
		}
		if c.TLSExpiryDays < 0 || c.TLSExpiryDays > 3650 {
			bad("tls_expiry_days", "tls_expiry_days must be from 0 to 3650")
		} else if c.TLSExpiryDays > 0 && err == nil && u.Scheme != "https" {
			bad("tls_expiry_days", "tls_expiry_days needs an https:// target")
		}
		if c.TLSExpiryDays > 0 && c.TLSExpiryAction == "" {
			c.TLSExpiryAction = TLSExpiryDown
		}
		if c.TLSExpiryAction != "" && c.TLSExpiryAction != TLSExpiryDown && c.TLSExpiryAction != TLSExpiryWarn {
			bad("tls_expiry_action", "tls_expiry_action must be down or warn")
		}
	case TypeTCP:
		host, port, err := net.SplitHostPort(c.Target)
		if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 1 || p > 65535 || !checkHostPattern.MatchString(strings.Trim(host, "[]")) {
			bad("target", "target must be host:port for a tcp check, e.g. db.internal:5432")
		}
	case TypePing:
		if !checkHostPattern.MatchString(c.Target) {
			bad("target", "target must be a host name or IP address for a ping check")
		}
		if c.FallbackPort < 0 || c.FallbackPort > 65535 {
			bad("fallback_port", "fallback_port must be from 1 to 65535 (default 22)")
		}
	case TypeSSH, TypeCustom:
		if c.ServerID == "" {
			c.ServerID = c.Target
		}
		if c.Target == "" {
			c.Target = c.ServerID
		}
		if c.ServerID == "" || c.Target != c.ServerID {
			bad("server_id", "an %s check needs server_id (an inventory server id; target, if sent, must be the same id)", c.Type)
		}
	}
	if c.Type == TypeCustom {
		if strings.TrimSpace(c.Command) == "" || len(c.Command) > 4096 || !utf8.ValidString(c.Command) {
			bad("command", "command is required for a custom check (a read-only L0 command, at most 4096 bytes)")
		}
		if c.ExpectedExitCode < 0 || c.ExpectedExitCode > 255 {
			bad("expected_exit_code", "expected_exit_code must be from 0 to 255")
		}
		if c.OutputMatch != "" {
			if _, err := regexp.Compile(c.OutputMatch); err != nil || len(c.OutputMatch) > 4096 {
				bad("output_match", "output_match is not a valid regular expression (RE2 syntax, at most 4096 bytes)")
			}
		}
	}
	if c.Type != TypeSSH && c.Type != TypeCustom && len(c.Target) > 2048 {
		bad("target", "target must be at most 2048 bytes")
	}
	return errs.Join(list...)
}

func joinTypes(ts []Type) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// String names a check in logs and messages.
func (c *Check) String() string { return fmt.Sprintf("%s check %s (%s)", c.Type, c.Name, c.ID) }

// TransitionFact is the data of the monitor.EventCheckTransitioned event the store writes with t: what
// event-triggered standing orders get (check_failed) and the server the check belongs to.
func TransitionFact(c *Check, t *Transition) map[string]any {
	return map[string]any{"server_id": c.ServerID, "transition_id": t.ID, "check_id": c.ID, "check": c.Name, "type": c.Type,
		"target": c.Target, "from": t.From, "to": t.To, "at": t.At, "results": t.Results, "message": t.Message}
}
