package agent_test

import (
	"strings"
	"testing"

	"github.com/it0/it0/internal/agent"
)

func TestParseApprovalMarker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		text   string
		wantID string
		wantL  int
		wantOK bool
	}{
		{"Plain", "IT0-APPROVAL-REQUIRED approval_id=ap_1 risk_level=2", "ap_1", 2, true},
		{"WithReason", "IT0-APPROVAL-REQUIRED approval_id=7f3c-11 risk_level=1: restarts nginx", "7f3c-11", 1, true},
		{"WrappedByCLI", "PreToolUse:Bash hook error: [it0 hook pre-tool-use]: IT0-APPROVAL-REQUIRED approval_id=a.b risk_level=2: L2 command\n", "a.b", 2, true},
		{"ReversedOrder", "IT0-APPROVAL-REQUIRED risk_level=1 approval_id=x", "x", 1, true},
		{"ExtraSpaces", "IT0-APPROVAL-REQUIRED   approval_id=x\trisk_level=0,", "x", 0, true},
		{"SecondMarkerValid", "IT0-APPROVAL-REQUIRED oops then IT0-APPROVAL-REQUIRED approval_id=y risk_level=2", "y", 2, true},
		{"NoMarker", "permission denied", "", 0, false},
		{"MissingLevel", "IT0-APPROVAL-REQUIRED approval_id=x", "", 0, false},
		{"MissingID", "IT0-APPROVAL-REQUIRED risk_level=2", "", 0, false},
		{"LevelOutOfRange", "IT0-APPROVAL-REQUIRED approval_id=x risk_level=9", "", 0, false},
		{"LevelNotNumber", "IT0-APPROVAL-REQUIRED approval_id=x risk_level=high", "", 0, false},
		{"BadIDChars", "IT0-APPROVAL-REQUIRED approval_id=x/../y risk_level=1", "", 0, false},
		{"GluedWord", "IT0-APPROVAL-REQUIREDX approval_id=x risk_level=1", "", 0, false},
		{"ReasonStopsFields", "IT0-APPROVAL-REQUIRED approval_id=x risk_level=1: approval_id=z", "x", 1, true},
		{"TooLongID", "IT0-APPROVAL-REQUIRED approval_id=" + strings.Repeat("a", 129) + " risk_level=1", "", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, l, ok := agent.ParseApprovalMarker(tc.text)
			if id != tc.wantID || l != tc.wantL || ok != tc.wantOK {
				t.Fatalf("ParseApprovalMarker(%q) = %q, %d, %v; want %q, %d, %v", tc.text, id, l, ok, tc.wantID, tc.wantL, tc.wantOK)
			}
		})
	}
}

func TestFormatApprovalMarker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, id, reason, want string
		level                  int
	}{
		{"NoReason", "ap1", "", "IT0-APPROVAL-REQUIRED approval_id=ap1 risk_level=2", 2},
		{"Reason", "ap1", "restart\nof nginx", "IT0-APPROVAL-REQUIRED approval_id=ap1 risk_level=1: restart of nginx", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := agent.FormatApprovalMarker(tc.id, tc.level, tc.reason)
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			id, l, ok := agent.ParseApprovalMarker(got)
			if !ok || id != tc.id || l != tc.level {
				t.Fatalf("round trip: %q, %d, %v", id, l, ok)
			}
		})
	}
}

func FuzzParseApprovalMarker(f *testing.F) {
	f.Add("IT0-APPROVAL-REQUIRED approval_id=ap_1 risk_level=2: why")
	f.Add("x IT0-APPROVAL-REQUIRED risk_level=1 approval_id=y")
	f.Add("IT0-APPROVAL-REQUIRED")
	f.Fuzz(func(t *testing.T, text string) {
		id, l, ok := agent.ParseApprovalMarker(text)
		if !ok {
			if id != "" || l != 0 {
				t.Fatalf("not ok but returned %q, %d", id, l)
			}
			return
		}
		if id == "" || len(id) > 128 || l < 0 || l > 3 || !strings.Contains(text, id) {
			t.Fatalf("bad result %q, %d from %q", id, l, text)
		}
		id2, l2, ok2 := agent.ParseApprovalMarker(agent.FormatApprovalMarker(id, l, ""))
		if !ok2 || id2 != id || l2 != l {
			t.Fatalf("round trip of %q, %d failed", id, l)
		}
	})
}
