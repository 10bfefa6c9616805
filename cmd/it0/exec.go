package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/it0/it0/internal/inventory"
)

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// runExec implements `it0 exec [selection] -- <command>`: a guarded fan-out through a running server,
// with a live progress line and a table at the end. Exit 1 when any server did not succeed.
func runExec(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("it0 exec", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var names, ids, tags stringList
	var sel inventory.Selector
	var timeout, parallel int
	var asJSON bool
	fs.Var(&names, "server", "server name (repeatable)")
	fs.Var(&ids, "id", "server id (repeatable)")
	fs.Var(&tags, "tag", "tag every chosen server has (repeatable)")
	fs.StringVar(&sel.Environment, "env", "", "environment: dev, staging or prod")
	fs.StringVar(&sel.Role, "role", "", "role: web, db, cache, worker, gateway")
	fs.StringVar(&sel.ClusterID, "cluster", "", "cluster id")
	fs.BoolVar(&sel.All, "all", false, "every server")
	fs.IntVar(&timeout, "timeout", 60, "seconds per server before the command is killed")
	fs.IntVar(&parallel, "parallel", 50, "servers at a time")
	fs.BoolVar(&asJSON, "json", false, "print the results as JSON lines")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: it0 exec [--env E] [--role R] [--server NAME]... [--tag T]... [--all] -- <command>")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err.Error()}
	}
	command := strings.Join(fs.Args(), " ")
	sel.Names, sel.ServerIDs, sel.Tags = names, ids, tags
	if command == "" || sel.Empty() {
		fs.Usage()
		return usageError{"give a selection (--env, --role, --server, --tag, --all) and a command after --"}
	}
	c, err := newAPIClient(getenv)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, "POST", "/api/v1/inventory/exec",
		map[string]any{"selector": sel, "command": command, "timeout_seconds": timeout, "parallelism": parallel}, "application/x-ndjson")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	tty := isTerminal(stderr)
	var results []inventory.ExecResult
	var sum inventory.Summary
	counts := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var line struct {
			Type    string                `json:"type"`
			Result  *inventory.ExecResult `json:"result"`
			Summary *inventory.Summary    `json:"summary"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("bad line from server: %w", err)
		}
		switch {
		case line.Result != nil:
			r := *line.Result
			results = append(results, r)
			counts[r.Status]++
			if asJSON {
				json.NewEncoder(stdout).Encode(r)
			}
			progress := fmt.Sprintf("[%d] %s", len(results), formatCounts(counts))
			if tty {
				fmt.Fprintf(stderr, "\r\033[K%s  %s: %s", progress, r.Server, r.Status)
			} else {
				fmt.Fprintf(stderr, "%s  %s: %s\n", progress, r.Server, r.Status)
			}
		case line.Summary != nil:
			sum = *line.Summary
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	if tty {
		fmt.Fprintln(stderr)
	}
	if !asJSON {
		printExecTable(stdout, results, sum)
	}
	if sum.Total == 0 || sum.OK != sum.Total {
		return exitWithCode{code: 1, err: fmt.Errorf("%d of %d servers did not succeed", sum.Total-sum.OK, sum.Total)}
	}
	return nil
}

func formatCounts(c map[string]int) string {
	var parts []string
	for _, s := range []string{"ok", "failed", "unreachable", "timeout", "blocked", "approval_required", "error", "cancelled"} {
		if c[s] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, c[s]))
		}
	}
	return strings.Join(parts, ", ")
}

func printExecTable(w io.Writer, results []inventory.ExecResult, sum inventory.Summary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tSTATUS\tEXIT\tTIME\tOUTPUT")
	for _, r := range results {
		exit := "-"
		if r.ExitCode != nil {
			exit = fmt.Sprint(*r.ExitCode)
		}
		out := firstLine(r.Stdout)
		switch {
		case r.Reason != "":
			out = r.Reason
		case r.Error != "":
			out = r.Error
		case out == "":
			out = firstLine(r.Stderr)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%dms\t%s\n", r.Server, r.Status, exit, r.DurationMS, out)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d servers: %d ok, %d failed, %d unreachable, %d timed out, %d refused (risk L%d) in %dms\n",
		sum.Total, sum.OK, sum.Failed, sum.Unreachable, sum.TimedOut, sum.Refused, sum.RiskLevel, sum.DurationMS)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
