package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/guard/hook"
)

const guardUsage = `usage: it0 guard check [--json] [--rules FILE] [--tenant-rules FILE] [--targets ENV[:ROLE][=N],…] -- <command>

Classifies a shell command (L0 read-only … L3 forbidden) and explains why.
Exits with the level, so scripts can branch on it: 0 (L0), 1 (L1), 2 (L2),
3 (L3); 64 on a usage error, 78 when the rules files cannot be loaded.
--targets applies the blast-radius rules to servers the command would run
on (e.g. --targets prod:web=12,prod:db).`

// Exit statuses of `guard check` beyond the levels 0-3 (sysexits.h EX_USAGE and EX_CONFIG).
const (
	guardExitUsage  = 64
	guardExitConfig = 78
)

const hookUsage = `usage: it0 hook pre-tool-use

Claude Code PreToolUse hook: reads the event JSON on stdin, answers with a
permission decision on stdout, always exits 0. Environment: IT0_URL,
IT0_TOKEN, IT0_SESSION_ID (optional; defaults to the event's session_id),
IT0_GUARD_RULES (optional rules file instead of the shipped one).`

// runGuard implements `it0 guard check`.
func runGuard(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return usageError{guardUsage}
	}
	fs := flag.NewFlagSet("guard check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print the verdict as JSON")
	rulesFile := fs.String("rules", "", "rules file instead of the shipped risk-patterns.yaml")
	tenantFile := fs.String("tenant-rules", "", "tenant override file applied on top of the rules")
	targetSpec := fs.String("targets", "", "servers the command would run on, ENV[:ROLE][=N],… (blast radius)")
	if err := fs.Parse(args[1:]); err != nil {
		return exitWithCode{guardExitUsage, usageError{fmt.Sprintf("guard check: %v\n%s", err, guardUsage)}}
	}
	if fs.NArg() == 0 {
		return exitWithCode{guardExitUsage, usageError{"guard check: no command given\n" + guardUsage}}
	}
	command := strings.Join(fs.Args(), " ")
	c, err := loadClassifier(*rulesFile, *tenantFile)
	if err != nil {
		return exitWithCode{guardExitConfig, err}
	}
	v := c.Classify(command)
	if *targetSpec != "" {
		targets, err := guard.ParseTargets(*targetSpec)
		if err != nil {
			return exitWithCode{guardExitUsage, usageError{fmt.Sprintf("guard check: --targets: %v\n%s", err, guardUsage)}}
		}
		v = c.Raise(v, targets)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("write verdict: %w", err)
		}
		return levelExit(v.Level)
	}
	fmt.Fprintf(stdout, "level:  %s\nreason: %s\n", v.Level, v.Reason)
	if len(v.Hosts) > 0 {
		fmt.Fprintf(stdout, "hosts:  %s\n", strings.Join(v.Hosts, ", "))
	}
	if v.Secret {
		fmt.Fprintln(stdout, "secret: reads credential material (output redacted unless an admin approves)")
	}
	fmt.Fprintln(stdout, "matches:")
	for _, m := range v.Matches {
		fmt.Fprintf(stdout, "  %s  %-24s %s — %s\n", m.Level, m.Rule, m.Command, m.Reason)
	}
	return levelExit(v.Level)
}

// levelExit is how `guard check` ends: exit status = level (nil for L0).
func levelExit(l guard.Level) error {
	if l == 0 {
		return nil
	}
	return exitStatus(l)
}

// loadClassifier builds the classifier from the shipped rules or a file,
// with an optional tenant override.
func loadClassifier(rulesFile, tenantFile string) (*guard.Classifier, error) {
	var (
		c   *guard.Classifier
		err error
	)
	if rulesFile == "" {
		c, err = guard.Default()
	} else {
		var data []byte
		if data, err = os.ReadFile(rulesFile); err != nil {
			return nil, fmt.Errorf("read rules: %w", err)
		}
		var r *guard.Rules
		if r, err = guard.LoadRules(data); err != nil {
			return nil, fmt.Errorf("%s: %w", rulesFile, err)
		}
		c = guard.NewClassifier(r)
	}
	if err != nil {
		return nil, err
	}
	if tenantFile == "" {
		return c, nil
	}
	data, err := os.ReadFile(tenantFile)
	if err != nil {
		return nil, fmt.Errorf("read tenant rules: %w", err)
	}
	r, err := c.Rules().Override(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tenantFile, err)
	}
	return guard.NewClassifier(r), nil
}

// runHook implements `it0 hook pre-tool-use`. Whatever goes wrong, it prints
// a deny decision and returns nil: a non-zero exit other than 2 makes Claude
// Code run the tool anyway.
func runHook(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "pre-tool-use" && args[0] != "pretooluse" && args[0] != "PreToolUse") {
		return usageError{hookUsage}
	}
	cfg := hook.Config{
		ServerURL: getenv("IT0_URL"),
		Token:     getenv("IT0_TOKEN"),
		SessionID: getenv("IT0_SESSION_ID"),
		AlwaysAsk: getenv("IT0_HOOK_ALWAYS_ASK") == "1",
		Client:    &http.Client{Timeout: 20 * time.Second},
	}
	c, err := loadClassifier(getenv("IT0_GUARD_RULES"), "")
	if err != nil {
		// No classifier: the hook denies everything, with the reason.
		fmt.Fprintln(stderr, "it0 hook:", err)
		return hook.Deny(stdout, "it0 guard unavailable: "+err.Error())
	}
	cfg.Classifier = c
	if err := hook.Run(ctx, stdin, stdout, cfg); err != nil {
		fmt.Fprintln(stderr, "it0 hook:", err)
		if errors.Is(err, hook.ErrWrite) {
			return nil // stdout is gone; nothing more can be said
		}
	}
	return nil
}
