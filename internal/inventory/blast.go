package inventory

import (
	"fmt"

	"github.com/it0/it0/internal/guard"
)

// Targets describes servers as the guard's blast-radius rules see them.
func Targets(servers []Server) []guard.Target {
	out := make([]guard.Target, len(servers))
	for i, s := range servers {
		out[i] = guard.Target{Environment: s.Environment, Role: s.Role}
	}
	return out
}

// redacted replaces the output of a read of credential material.
func redacted(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf("[redacted: %d bytes of credential material]", len(s))
}
