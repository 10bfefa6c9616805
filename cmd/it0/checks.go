package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/it0/it0/internal/monitor/checks"
)

const checksUsage = `usage: it0 checks list [--json]
       it0 checks add --name NAME --type http|tcp|ping|ssh|custom --target T [flags]
       it0 checks show [--results N] ID`

// runChecks implements `it0 checks list|add|show` against a running server (IT0_URL, IT0_TOKEN).
func runChecks(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{checksUsage}
	}
	switch args[0] {
	case "list":
		return checksList(ctx, args[1:], getenv, stdout, stderr)
	case "add":
		return checksAdd(ctx, args[1:], getenv, stdout, stderr)
	case "show":
		return checksShow(ctx, args[1:], getenv, stdout, stderr)
	}
	return usageError{fmt.Sprintf("unknown checks command %q\n%s", args[0], checksUsage)}
}

// parseSubFlags parses a subcommand's flags, leaving positional arguments in fs.Args(); help reports -h.
// Flags may follow positional arguments (`it0 contacts test ID --channel sms`); after "--" everything is
// positional.
func parseSubFlags(fs *flag.FlagSet, args []string) (bool, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return true, nil
			}
			return false, usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	// Leave the positional arguments in fs.Args(); "--" keeps one that looks like a flag from being parsed.
	return false, fs.Parse(append([]string{"--"}, pos...))
}

func checksList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("it0 checks list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the checks as JSON")
	if help, err := parseSubFlags(fs, args); help || err != nil {
		return err
	}
	c, err := newAPIClient(getenv)
	if err != nil {
		return err
	}
	list, err := getItems[checks.Check](ctx, c, "/api/v1/monitor/checks")
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTYPE\tTARGET\tEVERY\tSTATE\tLAST")
	for _, ch := range list {
		state := string(ch.State)
		if !ch.Enabled {
			state += " (paused)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%ds\t%s\t%s\n", ch.ID, ch.Name, ch.Type, ch.Target, ch.IntervalSeconds, state, checksClip(ch.LastMessage, 60))
	}
	return tw.Flush()
}

func checksAdd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("it0 checks add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	body := map[string]any{}
	str := func(name, usage string) *string { return fs.String(name, "", usage) }
	num := func(name, usage string) *int { return fs.Int(name, 0, usage) }
	strs := map[string]*string{
		"name":              str("name", "check name"),
		"type":              str("type", "http, tcp, ping, ssh or custom"),
		"target":            str("target", "URL (http), host:port (tcp), host (ping), server id (ssh, custom)"),
		"server_id":         str("server", "inventory server id (ssh, custom; optional for others)"),
		"body_contains":     str("body-contains", "http: text the body must contain"),
		"body_regex":        str("body-regex", "http: regexp the body must match"),
		"tls_expiry_action": str("tls-action", "http: down (default) or warn when the certificate is near expiry"),
		"command":           str("command", "custom: a read-only (L0) command"),
		"output_match":      str("output-match", "custom: regexp stdout must match"),
	}
	nums := map[string]*int{
		"interval_seconds":   num("interval", "seconds between runs (default 60)"),
		"timeout_seconds":    num("timeout", "seconds per run (default 10)"),
		"retries":            num("retries", "consecutive disagreeing results before the state changes"),
		"jitter_seconds":     num("jitter", "random delay bound, seconds"),
		"expected_status":    num("status", "http: expected status (default 200–399)"),
		"tls_expiry_days":    num("tls-days", "http: minimum days of certificate validity"),
		"fallback_port":      num("fallback-port", "ping: TCP port when ICMP is not permitted (default 22)"),
		"expected_exit_code": num("exit-code", "custom: expected exit code"),
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: it0 checks add --name NAME --type TYPE --target TARGET [flags]")
		fs.PrintDefaults()
	}
	if help, err := parseSubFlags(fs, args); help || err != nil {
		return err
	}
	for k, v := range strs {
		if *v != "" {
			body[k] = *v
		}
	}
	for k, v := range nums {
		if *v != 0 {
			body[k] = *v
		}
	}
	if body["name"] == nil || body["type"] == nil {
		fs.Usage()
		return usageError{"--name and --type are required"}
	}
	c, err := newAPIClient(getenv)
	if err != nil {
		return err
	}
	var ch checks.Check
	if err := c.call(ctx, "POST", "/api/v1/monitor/checks", body, &ch); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added %s check %s (%s): every %ds, state %s\n", ch.Type, ch.Name, ch.ID, ch.IntervalSeconds, ch.State)
	return nil
}

func checksShow(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("it0 checks show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("results", 10, "recent results to show")
	if help, err := parseSubFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() != 1 || *n < 1 || *n > 1000 {
		return usageError{"usage: it0 checks show [--results 1..1000] ID"}
	}
	c, err := newAPIClient(getenv)
	if err != nil {
		return err
	}
	id := url.PathEscape(fs.Arg(0))
	var ch checks.Check
	if err := c.call(ctx, "GET", "/api/v1/monitor/checks/"+id, nil, &ch); err != nil {
		return err
	}
	results, err := getItems[checks.Result](ctx, c, fmt.Sprintf("/api/v1/monitor/checks/%s/results?limit=%d", id, *n))
	if err != nil {
		return err
	}
	transitions, err := getItems[checks.Transition](ctx, c, "/api/v1/monitor/checks/"+id+"/transitions?limit=5")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s  %s %s  every %ds, timeout %ds, retries %d\n", ch.Name, ch.Type, ch.Target, ch.IntervalSeconds, ch.TimeoutSeconds, ch.Retries)
	since := ""
	if ch.StateChangedAt != nil {
		since = " since " + ch.StateChangedAt.Local().Format(time.DateTime)
	}
	fmt.Fprintf(stdout, "state: %s%s\n", ch.State, since)
	if len(transitions) > 0 {
		fmt.Fprintln(stdout, "\ntransitions:")
		for _, t := range transitions {
			fmt.Fprintf(stdout, "  %s  %s → %s after %d result(s): %s\n", t.At.Local().Format(time.DateTime), t.From, t.To, t.Results, t.Message)
		}
	}
	if len(results) > 0 {
		fmt.Fprintln(stdout, "\nrecent results:")
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		for _, r := range results {
			extra := ""
			if r.Method != "" {
				extra = " [" + r.Method + "]"
			}
			if r.Warning != "" {
				extra += " warning: " + r.Warning
			}
			fmt.Fprintf(tw, "  %s\t%s\t%dms\t%s%s\n", r.CheckedAt.Local().Format(time.DateTime), r.Status, r.DurationMS, checksClip(r.Message, 100), extra)
		}
		tw.Flush()
	}
	return nil
}

// checksClip shortens s to n runes for a table cell.
func checksClip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
