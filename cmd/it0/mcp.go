package main

import (
	"context"
	"errors"
	"io"
)

// runMCP implements `it0 mcp` (placeholder until the MCP server lands).
func runMCP(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	return errors.New("mcp: not built yet")
}
