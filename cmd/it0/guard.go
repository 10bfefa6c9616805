package main

import (
	"context"
	"errors"
	"io"
)

// runGuard implements `it0 guard …`. (Placeholder until the guard package lands.)
func runGuard(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("guard: not built yet")
}

// runHook implements `it0 hook …`.
func runHook(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	return errors.New("hook: not built yet")
}
