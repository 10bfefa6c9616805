package guard

import (
	"errors"
	"fmt"
	"strings"
)

// Level is the risk level of a command, from L0 (read-only) to L3 (forbidden).
// Levels are ordered: a higher value is riskier.
type Level int

const (
	// L0 is read-only: the command runs without asking anyone.
	L0 Level = iota
	// L1 is a low-risk write: it needs a confirmation.
	L1
	// L2 is high-risk: it needs a human approval.
	L2
	// L3 is forbidden: it is always refused.
	L3
)

// ErrBadLevel is returned by ParseLevel for text that names no level.
var ErrBadLevel = errors.New("bad risk level")

// String returns "L0" … "L3".
func (l Level) String() string {
	if l < L0 || l > L3 {
		return fmt.Sprintf("L?(%d)", int(l))
	}
	return "L" + string(rune('0'+l))
}

// Valid reports whether l is one of L0…L3.
func (l Level) Valid() bool { return l >= L0 && l <= L3 }

// ParseLevel parses "L0"…"L3" (case-insensitive) or a bare digit "0"…"3".
// It returns ErrBadLevel for anything else.
func ParseLevel(s string) (Level, error) {
	t := strings.TrimSpace(s)
	if len(t) == 2 && (t[0] == 'L' || t[0] == 'l') {
		t = t[1:]
	}
	if len(t) == 1 && t[0] >= '0' && t[0] <= '3' {
		return Level(t[0] - '0'), nil
	}
	return 0, fmt.Errorf("%w: %q (want L0, L1, L2 or L3)", ErrBadLevel, s)
}
