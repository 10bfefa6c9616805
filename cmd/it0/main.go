// Command it0 is the IT0 binary: the server, its CLI clients and its operator tools.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "it0:", msg)
		}
		os.Exit(exitCode(err))
	}
}

// usageError marks a command-line mistake; it exits 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitWithCode carries a specific exit status (for example `audit verify` on a broken chain).
type exitWithCode struct {
	code int
	err  error
}

func (e exitWithCode) Error() string { return e.err.Error() }
func (e exitWithCode) Unwrap() error { return e.err }

// exitStatus is an exit status that answers a question rather than reports an error (`guard check`
// exits with the level); main prints nothing for it.
type exitStatus int

func (exitStatus) Error() string { return "" }

func exitCode(err error) int {
	switch e := err.(type) {
	case usageError:
		return 2
	case exitWithCode:
		return e.code
	case exitStatus:
		return int(e)
	}
	return 1
}

const usage = `usage: it0 <command> [flags]

commands:
  serve          run the IT0 server (all modules on embedded defaults)
  migrate        apply database migrations and exit
  audit verify   check the audit log's hash chain (exit 3 and the first bad row when broken)
  audit export   write a tenant's audit log as JSON Lines
  chat           talk to the agent (approvals answered inline): it0 chat "检查所有生产服务器的磁盘"
  exec           run a guarded command on servers: it0 exec --env prod -- df -h
  servers import import servers from YAML, JSON or an OpenSSH ssh_config
  alerts list|ack  list alerts (--status firing) or acknowledge one
  metrics query  a server's metric over time: it0 metrics query --server ID --metric cpu_usage --step 5m
  contacts list|add    the people IT0 reaches (phone, email, Telegram, WeCom, push)
  escalations list     escalation chains of unattended runs and who answered
  vault keygen   print a new master key
  vault rotate   re-seal every data key under IT0_VAULT_MASTER_KEY
  guard check    classify a shell command (L0-L3); exits with the level
  hook pre-tool-use   Claude Code PreToolUse hook
  mcp            MCP server exposing IT0's tools (stdio; --http ADDR for streamable HTTP)
  version        print the version`

// run is the whole program; tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{usage}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "it0", version)
		return nil
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, getenv, stdout, stderr)
	case "audit":
		return runAudit(ctx, rest, getenv, stdout, stderr)
	case "exec":
		return runExec(ctx, rest, getenv, stdout, stderr)
	case "servers":
		return runServers(ctx, rest, getenv, stdout, stderr)
	case "checks":
		return runChecks(ctx, rest, getenv, stdout, stderr)
	case "alerts", "metrics":
		return runMonitor(ctx, cmd, rest, getenv, stdout, stderr)
	case "contacts", "escalations":
		return runComm(ctx, cmd, rest, getenv, stdout, stderr)
	case "vault":
		return runVault(ctx, rest, getenv, stdout, stderr)
	case "chat":
		return runChat(ctx, rest, getenv, stdin, stdout, stderr)
	case "mcp":
		return runMCP(ctx, rest, getenv, stdin, stdout, stderr)
	case "guard":
		return runGuard(ctx, rest, stdout, stderr)
	case "hook":
		return runHook(ctx, rest, getenv, stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q\n%s", cmd, usage)}
}

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"
