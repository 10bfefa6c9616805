package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/monitor/alerts"
	"github.com/it0/it0/internal/monitor/metrics"
)

const alertsUsage = `usage:
  it0 alerts list [--status firing|acknowledged|resolved] [--severity S] [--server ID] [--limit N] [--json]
  it0 alerts ack ID`

const metricsUsage = `usage:
  it0 metrics query --server ID --metric cpu_usage [--from RFC3339|-1h] [--to RFC3339] [--step 5m] [--label /] [--json]`

// runAlerts implements `it0 alerts list|ack`.
func runAlerts(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{alertsUsage}
	}
	switch args[0] {
	case "list":
		return alertsList(ctx, args[1:], getenv, stdout, stderr)
	case "ack", "acknowledge":
		if len(args) != 2 {
			return usageError{alertsUsage}
		}
		c, err := newAPIClient(getenv)
		if err != nil {
			return err
		}
		var ev alerts.Event
		if err := c.call(ctx, "POST", "/api/v1/monitor/alerts/"+url.PathEscape(args[1])+"/acknowledge", nil, &ev); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "acknowledged %s (%s on %s) as %s\n", ev.ID, ev.RuleName, ev.ServerID, ev.AcknowledgedBy)
		return nil
	}
	return usageError{fmt.Sprintf("unknown alerts command %q\n%s", args[0], alertsUsage)}
}

// parseFlags parses a subcommand's flags and refuses positional arguments; help reports -h.
func parseFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	if help, err := parseSubFlags(fs, args); help || err != nil {
		return help, err
	}
	if fs.NArg() > 0 {
		return false, usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return false, nil
}

func alertsList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("it0 alerts list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	status := fs.String("status", "", "firing, acknowledged or resolved")
	severity := fs.String("severity", "", "info, warning, critical or fatal")
	server := fs.String("server", "", "server id")
	limit := fs.Int("limit", 50, "at most this many")
	asJSON := fs.Bool("json", false, "print JSON")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	c, err := newAPIClient(getenv)
	if err != nil {
		return err
	}
	q := url.Values{"limit": {fmt.Sprint(*limit)}}
	for k, v := range map[string]string{"status": *status, "severity": *severity, "server_id": *server} {
		if v != "" {
			q.Set(k, v)
		}
	}
	list, err := getItems[alerts.Event](ctx, c, "/api/v1/monitor/alerts?"+q.Encode())
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(list)
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "no alerts")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEVERITY\tSTATUS\tRULE\tSERVER\tVALUE\tFIRED\tREMEDIATION")
	for _, e := range list {
		rem := e.RemediationTaskID
		if e.RemediationError != "" {
			rem = "not started: " + e.RemediationError
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%g\t%s\t%s\n", e.ID, e.Severity, e.Status, e.RuleName, e.ServerID, e.Value,
			e.FiredAt.Local().Format("2006-01-02 15:04"), rem)
	}
	return tw.Flush()
}

// relTime reads an RFC 3339 time or a negative duration from now such as -1h.
func relTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if strings.HasPrefix(s, "-") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(d), nil
	}
	return time.Parse(time.RFC3339, s)
}

// runMetrics implements `it0 metrics query`.
func runMetrics(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "query" {
		return usageError{metricsUsage}
	}
	fs := flag.NewFlagSet("it0 metrics query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "server id (required)")
	metric := fs.String("metric", "", "metric type: "+strings.Join(monitor.MetricTypes, ", "))
	from := fs.String("from", "-1h", "start: RFC 3339 or a negative duration from now")
	to := fs.String("to", "", "end: RFC 3339 or a negative duration (default now)")
	step := fs.String("step", "", "average into steps of this width, e.g. 5m")
	label := fs.String("label", "", "one series only (a mount point for disk_usage)")
	asJSON := fs.Bool("json", false, "print JSON")
	if help, err := parseFlags(fs, args[1:]); help || err != nil {
		return err
	}
	if *server == "" || *metric == "" {
		return usageError{"--server and --metric are required\n" + metricsUsage}
	}
	now := time.Now().UTC()
	f, err := relTime(*from, now)
	if err != nil {
		return usageError{"--from: " + err.Error()}
	}
	t, err := relTime(*to, now)
	if err != nil {
		return usageError{"--to: " + err.Error()}
	}
	q := url.Values{"server_id": {*server}, "metric_type": {*metric}}
	if !f.IsZero() {
		q.Set("from", f.Format(time.RFC3339Nano))
	}
	if !t.IsZero() {
		q.Set("to", t.Format(time.RFC3339Nano))
	}
	if *step != "" {
		q.Set("step", *step)
	}
	if *label != "" {
		q.Set("label", *label)
	}
	c, err := newAPIClient(getenv)
	if err != nil {
		return err
	}
	res, err := getItems[metrics.Series](ctx, c, "/api/v1/monitor/metrics?"+q.Encode())
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	if len(res) == 0 {
		fmt.Fprintln(stdout, "no data in that range")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tLABEL\tVALUE\tMIN\tMAX\tSAMPLES")
	for _, s := range res {
		for _, p := range s.Points {
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t%.2f\t%d\n", p.At.Local().Format(time.DateTime), s.Label, p.Value, p.Min, p.Max, p.Count)
		}
	}
	return tw.Flush()
}

// runMonitor dispatches `it0 alerts …` and `it0 metrics …`.
func runMonitor(ctx context.Context, cmd string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if cmd == "alerts" {
		return runAlerts(ctx, args, getenv, stdout, stderr)
	}
	return runMetrics(ctx, args, getenv, stdout, stderr)
}
