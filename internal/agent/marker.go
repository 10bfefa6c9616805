package agent

import (
	"strconv"
	"strings"
)

// ApprovalMarker starts the text IT0's PreToolUse hook and MCP tools put in a refused tool result when a
// command needs a human decision. Engines that do not call the Toolbox themselves (Claude Code) find it in
// the tool_result and pause the session.
const ApprovalMarker = "IT0-APPROVAL-REQUIRED"

// maxApprovalIDLen bounds the approval id a marker may carry; real ids are UUIDs.
const maxApprovalIDLen = 128

// FormatApprovalMarker renders the marker line for approval id at risk level, with an optional reason
// for the model to read: "IT0-APPROVAL-REQUIRED approval_id=<id> risk_level=<n>: <reason>". Newlines in
// reason are folded into spaces so the marker stays one line.
func FormatApprovalMarker(id string, level int, reason string) string {
	s := ApprovalMarker + " approval_id=" + id + " risk_level=" + strconv.Itoa(level)
	reason = strings.Join(strings.Fields(reason), " ")
	if reason != "" {
		s += ": " + reason
	}
	return s
}

// ParseApprovalMarker finds the first approval marker in text and returns its approval id and risk
// level. The marker may be embedded anywhere (the CLI wraps hook output in its own words), the two
// fields may come in either order, and a trailing ':' or ',' after a value is ignored. ok is false when
// there is no marker, or the marker lacks a valid id (1..128 of [A-Za-z0-9._-]) or a level in 0..3.
func ParseApprovalMarker(text string) (id string, level int, ok bool) {
	for {
		i := strings.Index(text, ApprovalMarker)
		if i < 0 {
			return "", 0, false
		}
		text = text[i+len(ApprovalMarker):]
		if id, level, ok := parseMarkerFields(text); ok {
			return id, level, true
		}
	}
}

// parseMarkerFields reads the key=value fields that follow the marker word.
func parseMarkerFields(s string) (id string, level int, ok bool) {
	level = -1
	// The marker word must end here: "IT0-APPROVAL-REQUIREDX" is not a marker.
	if s != "" && s[0] != ' ' && s[0] != '\t' {
		return "", 0, false
	}
	for _, f := range strings.Fields(s) {
		key, val, found := strings.Cut(f, "=")
		if !found {
			break
		}
		end := strings.TrimRight(val, ":,;")
		stop := len(end) != len(val) // "risk_level=2:" ends the field list
		switch key {
		case "approval_id":
			if id == "" && validApprovalID(end) {
				id = end
			}
		case "risk_level":
			if n, err := strconv.Atoi(end); err == nil && n >= 0 && n <= 3 && level < 0 {
				level = n
			}
		}
		if stop || (id != "" && level >= 0) {
			break
		}
	}
	if id == "" || level < 0 {
		return "", 0, false
	}
	return id, level, true
}

func validApprovalID(s string) bool {
	if s == "" || len(s) > maxApprovalIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}
