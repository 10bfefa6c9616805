package claudecode

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/it0/it0/internal/agent"
)

func TestLineReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		max     int
		want    []string
		wantErr []bool // per returned item: true = errLineTooLong
	}{
		{"Lines", "a\nbb\n", 10, []string{"a", "bb"}, []bool{false, false}},
		{"NoFinalNewline", "a\nbb", 10, []string{"a", "bb"}, []bool{false, false}},
		{"ExactlyMax", "abc\nd\n", 3, []string{"abc", "d"}, []bool{false, false}},
		{"TooLongThenGoOn", "abcd\nok\n", 3, []string{"", "ok"}, []bool{true, false}},
		{"TooLongAtEOF", "ok\nabcdef", 3, []string{"ok", ""}, []bool{false, true}},
		{"Empty", "", 3, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lr := newLineReader(strings.NewReader(tc.in), tc.max)
			var got []string
			var gotErr []bool
			for {
				b, err := lr.readLine()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil && !errors.Is(err, errLineTooLong) {
					t.Fatal(err)
				}
				got = append(got, string(b))
				gotErr = append(gotErr, err != nil)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(gotErr) != len(tc.wantErr) {
				t.Fatalf("got %q %v, want %q %v", got, gotErr, tc.want, tc.wantErr)
			}
			for i := range gotErr {
				if gotErr[i] != tc.wantErr[i] {
					t.Fatalf("errors %v, want %v", gotErr, tc.wantErr)
				}
			}
		})
	}
}

// TestLineReaderLongerThanBuffer ensures lines spanning many reads of the bufio buffer come back whole.
func TestLineReaderLongerThanBuffer(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 300<<10)
	lr := newLineReader(strings.NewReader(long+"\nshort\n"), 1<<20)
	for _, want := range []string{long, "short"} {
		b, err := lr.readLine()
		if err != nil || string(b) != want {
			t.Fatalf("got %d bytes, %v", len(b), err)
		}
	}
}

func TestParseLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		lines    []string
		want     []agent.EventType
		wantSkip bool // the last line is skipped
	}{
		{"Malformed", []string{`{"type":`}, nil, true},
		{"UnknownType", []string{`{"type":"telemetry"}`}, nil, true},
		{"Blank", []string{`   `}, nil, true},
		{"UserPromptString", []string{`{"type":"user","message":{"role":"user","content":"[Request interrupted by user]"}}`}, nil, true},
		{"AssistantWithoutPartials", []string{`{"type":"assistant","message":{"id":"m1","content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"hi"}]}}`}, []agent.EventType{agent.EventThinking, agent.EventText}, false},
		{"AssistantAfterPartials", []string{
			`{"type":"stream_event","event":{"type":"message_start","message":{"id":"m1"}}}`,
			`{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}}`,
			`{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"hi"}]}}`,
		}, nil, false},
		{"SubagentToolUseKept", []string{`{"type":"assistant","parent_tool_use_id":"toolu_1","message":{"id":"s","content":[{"type":"text","text":"x"},{"type":"tool_use","id":"t2","name":"Bash","input":{"command":"ls"}}]}}`}, []agent.EventType{agent.EventToolUse}, false},
		{"ToolResultMarkerInBlocks", []string{
			`{"type":"assistant","message":{"id":"m","content":[{"type":"tool_use","id":"t1","name":"mcp__it0__run_command","input":{"server":"web-1","command":"reboot"}}]}}`,
			`{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"IT0-APPROVAL-REQUIRED approval_id=a1 risk_level=1"}],"is_error":true}]}}`,
		}, []agent.EventType{agent.EventToolResult, agent.EventApprovalRequired}, false},
		{"BadToolInput", []string{`{"type":"assistant","message":{"id":"m","content":[{"type":"tool_use","id":"t1","name":"X","input":"oops"}]}}`}, []agent.EventType{agent.EventToolUse}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newParser()
			var evs []agent.Event
			var err error
			for _, l := range tc.lines {
				evs, err = p.parseLine([]byte(l))
			}
			if (err != nil) != tc.wantSkip || (err != nil && !errors.Is(err, errSkip)) {
				t.Fatalf("err = %v", err)
			}
			var got []agent.EventType
			for _, ev := range evs {
				got = append(got, ev.Type)
				if _, err := json.Marshal(ev); err != nil {
					t.Errorf("event does not marshal: %v", err)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestResultEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		line     string
		wantType agent.EventType
		wantCode string
		wantMsg  string
	}{
		{"Success", `{"type":"result","subtype":"success","result":"ok","total_cost_usd":0.5}`, agent.EventCompleted, "", ""},
		{"OlderCostField", `{"type":"result","subtype":"success","result":"ok","total_cost":0.5}`, agent.EventCompleted, "", ""},
		{"MaxTurns", `{"type":"result","subtype":"error_max_turns","is_error":true,"errors":["too many"]}`, agent.EventError, agent.CodeMaxTurns, "too many"},
		{"Budget", `{"type":"result","subtype":"error_max_budget_usd","is_error":true}`, agent.EventError, agent.CodeBudget, "claude reported error_max_budget_usd"},
		{"DuringExecution", `{"type":"result","subtype":"error_during_execution","is_error":true,"errors":["a","b"]}`, agent.EventError, agent.CodeEngine, "a; b"},
		{"APIErrorAsSuccess", `{"type":"result","subtype":"success","is_error":true,"api_error_status":529,"result":"Overloaded"}`, agent.EventError, agent.CodeEngine, "API error 529: Overloaded"},
		{"UnknownSubtype", `{"type":"result","subtype":"error_new_kind","is_error":true}`, agent.EventError, agent.CodeEngine, "claude reported error_new_kind"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newParser()
			if _, err := p.parseLine([]byte(tc.line)); err != nil {
				t.Fatal(err)
			}
			ev := p.final
			if ev == nil || ev.Type != tc.wantType || ev.Code != tc.wantCode || ev.Message != tc.wantMsg {
				t.Fatalf("got %+v", ev)
			}
			if ev.Type == agent.EventCompleted && (ev.CostUSD != 0.5 || ev.Summary != "ok") {
				t.Fatalf("got %+v", ev)
			}
		})
	}
}

// FuzzParseLine feeds arbitrary lines (seeded with every fixture line) through one parser: it must not
// panic, every event must marshal, and approval events must carry a valid marker's fields.
func FuzzParseLine(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.jsonl"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if !strings.HasPrefix(sc.Text(), "#") {
				f.Add(sc.Bytes())
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := newParser()
		for _, l := range bytes.Split(b, []byte("\n")) {
			evs, err := p.parseLine(l)
			if err != nil && len(evs) > 0 {
				t.Fatal("events with an error")
			}
			for _, ev := range evs {
				if _, err := json.Marshal(ev); err != nil {
					t.Fatalf("event does not marshal: %v", err)
				}
				if ev.Type == agent.EventApprovalRequired && (ev.ApprovalID == "" || ev.RiskLevel == nil || *ev.RiskLevel < 0 || *ev.RiskLevel > 3) {
					t.Fatalf("bad approval event %+v", ev)
				}
			}
		}
	})
}

// TestContentText ensures every kind of tool_result content reads as something: ToolSearch's
// tool_reference blocks, images and blocks IT0 does not know are not dropped into an empty output.
func TestContentText(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, raw, want string }{
		{"String", `"Filesystem  Size"`, "Filesystem  Size"},
		{"Text", `[{"type":"text","text":"a"},{"type":"text","text":"b"}]`, "a\nb"},
		{"ToolReference", `[{"type":"tool_reference","tool_name":"mcp__it0__run_command"}]`, "[tool loaded: mcp__it0__run_command]"},
		{"Image", `[{"type":"image","source":{"type":"base64","data":"AAAA"}}]`, "[image]"},
		{"Unknown", `[{"type":"search_result", "title":"x"}]`, `{"type":"search_result","title":"x"}`},
		{"Empty", ``, ""},
		{"Garbage", `{`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := contentText(json.RawMessage(tc.raw)); got != tc.want {
				t.Errorf("contentText = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestToolUseResultFallback ensures a tool result without content shows the line's structured copy.
func TestToolUseResultFallback(t *testing.T) {
	t.Parallel()
	p := newParser()
	evs, err := p.parseLine([]byte(`{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[]}]},"tool_use_result":{"matches":["mcp__it0__run_command"]}}`))
	if err != nil || len(evs) != 1 || evs[0].Output != `{"matches":["mcp__it0__run_command"]}` {
		t.Fatalf("events = %+v, %v", evs, err)
	}
}

// TestPermissionDenials ensures a refusal reported twice (system line, then result) gives one notice,
// and that a run ends as permission_denied only when every IT0 tool call was refused.
func TestPermissionDenials(t *testing.T) {
	t.Parallel()
	lines := func(extra ...string) []string {
		return append([]string{
			`{"type":"assistant","message":{"id":"m1","role":"assistant","content":[{"type":"tool_use","id":"t1","name":"mcp__it0__run_command","input":{"command":"df -h"}}]}}`,
			`{"type":"system","subtype":"permission_denied","tool_name":"mcp__it0__run_command","tool_use_id":"t1","message":"not granted"}`,
			`{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"not granted","is_error":true}]}}`,
		}, extra...)
	}
	result := `{"type":"result","subtype":"success","is_error":false,"result":"done","permission_denials":[{"tool_name":"mcp__it0__run_command","tool_use_id":"t1","tool_input":{"command":"df -h"}}]}`
	tests := []struct {
		name      string
		lines     []string
		wantFinal agent.EventType
	}{
		{"AllRefused", lines(result), agent.EventError},
		{"OneRan", lines(
			`{"type":"assistant","message":{"id":"m2","role":"assistant","content":[{"type":"tool_use","id":"t2","name":"mcp__it0__list_servers","input":{}}]}}`,
			`{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t2","content":"web-1"}]}}`,
			result), agent.EventCompleted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newParser()
			notices := 0
			for _, l := range tc.lines {
				evs, _ := p.parseLine([]byte(l))
				for _, ev := range evs {
					if ev.Type == agent.EventNotice {
						notices++
						if ev.Code != agent.CodePermissionDenied || !strings.Contains(ev.Message, "(df -h): not granted") {
							t.Errorf("notice = %+v", ev)
						}
					}
				}
			}
			if notices != 1 {
				t.Errorf("%d notices, want 1", notices)
			}
			if p.final == nil || p.final.Type != tc.wantFinal {
				t.Fatalf("final = %+v, want %s", p.final, tc.wantFinal)
			}
			if tc.wantFinal == agent.EventError && (p.final.Code != agent.CodePermissionDenied || !strings.Contains(p.final.Message, "mcp__it0__run_command")) {
				t.Errorf("final = %+v", p.final)
			}
		})
	}
}

// TestLineWriter ensures stderr is cut into lines whatever the writes' boundaries, long lines are cut at
// the limit once, and a last line without a newline comes out on flush.
func TestLineWriter(t *testing.T) {
	t.Parallel()
	var got []string
	w := &lineWriter{max: 8, line: func(s string) { got = append(got, s) }}
	for _, p := range []string{"warn", "ing one\nshort\n", "0123456789abcdef", "ghij\nx", "\n", "tail"} {
		if n, err := w.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	w.flush()
	want := []string{"warning …", "short", "01234567…", "x", "tail"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines = %q, want %q", got, want)
	}
}

// TestMCPServerNotConnected ensures an init line whose IT0 MCP server failed gives a notice.
func TestMCPServerNotConnected(t *testing.T) {
	t.Parallel()
	for status, want := range map[string]int{"connected": 0, "failed": 1, "pending": 1} {
		evs, _ := newParser().parseLine([]byte(`{"type":"system","subtype":"init","session_id":"s","mcp_servers":[{"name":"other","status":"failed"},{"name":"it0","status":"` + status + `"}]}`))
		if len(evs) != want || want == 1 && (evs[0].Type != agent.EventNotice || !strings.Contains(evs[0].Message, status)) {
			t.Errorf("status %s: events %+v", status, evs)
		}
	}
}
