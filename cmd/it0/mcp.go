package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/it0/it0/internal/agent/mcpserver"
)

const mcpUsage = `usage: it0 mcp [--http ADDR]

Serves IT0's agent tools over MCP: stdio by default, or streamable HTTP at http://ADDR/mcp.
Environment:
  IT0_URL          base URL of the IT0 server (required)
  IT0_TOKEN        IT0 API token (required)
  IT0_SESSION_ID   agent session the tool calls belong to (optional)
  IT0_LOG_LEVEL    debug, info, warn or error (default warn); logs go to stderr`

// runMCP implements `it0 mcp`: an MCP server that proxies tool calls to a running IT0 server. stdout
// carries only MCP messages in stdio mode; diagnostics go to stderr.
func runMCP(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mcp", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	httpAddr := fs.String("http", "", "serve streamable HTTP on `ADDR` (host:port) at /mcp instead of stdio")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, mcpUsage)
			return nil
		}
		return usageError{fmt.Sprintf("mcp: %v\n%s", err, mcpUsage)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("mcp: unexpected argument %q\n%s", fs.Arg(0), mcpUsage)}
	}
	cfg := mcpserver.Config{
		URL:       strings.TrimSpace(getenv("IT0_URL")),
		Token:     mcpserver.Token(strings.TrimSpace(getenv("IT0_TOKEN"))),
		SessionID: strings.TrimSpace(getenv("IT0_SESSION_ID")),
		Version:   version,
	}
	var missing []string
	if cfg.URL == "" {
		missing = append(missing, "IT0_URL")
	}
	if cfg.Token == "" {
		missing = append(missing, "IT0_TOKEN")
	}
	if len(missing) > 0 {
		return usageError{fmt.Sprintf("mcp: set %s\n%s", strings.Join(missing, " and "), mcpUsage)}
	}
	if _, err := mcpserver.NewClient(cfg.URL, "", "", nil); err != nil {
		return usageError{fmt.Sprintf("mcp: %v", err)}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cmp.Or(getenv("IT0_LOG_LEVEL"), "warn"))); err != nil {
		return usageError{fmt.Sprintf("mcp: IT0_LOG_LEVEL: %v", err)}
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	var opts mcpserver.HTTPOptions
	if *httpAddr != "" {
		host, _, err := net.SplitHostPort(*httpAddr)
		if err != nil {
			return usageError{fmt.Sprintf("mcp: --http %q: want host:port, such as 127.0.0.1:8765", *httpAddr)}
		}
		// Whoever reaches the endpoint acts with IT0_TOKEN, so anything beyond loopback must present it.
		opts.RequireToken = !isLoopback(host)
	}

	srv, err := mcpserver.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("mcp: %w", err)
	}
	if *httpAddr == "" {
		return srv.ServeStdio(ctx, stdin, stdout)
	}
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("mcp: listen: %w", err)
	}
	msg := "mcp: serving streamable HTTP at http://%s%s\n"
	if opts.RequireToken {
		msg = "mcp: serving streamable HTTP at http://%s%s (clients must send Authorization: Bearer $IT0_TOKEN)\n"
	}
	fmt.Fprintf(stderr, msg, ln.Addr(), mcpserver.Path)
	return srv.ServeHTTP(ctx, ln, opts)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}
