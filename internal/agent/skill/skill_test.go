package skill

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// refExample is the example SKILL.md of the reference (Part B.4), including its folded description.
const refExample = `---
name: restart-service
description: Restart a systemd service on one managed host after checking its status. Use when the
  user asks to restart, bounce or reload a service on a server.
argument-hint: "[host] [service]"
disable-model-invocation: true
allowed-tools: Bash(ssh *), mcp__it0__run_command
---
Restart service ` + "`$1`" + ` on host ` + "`$0`" + `.
1. Check the current status first and report it.
2. Restart, then confirm it is active. Helper: ${CLAUDE_SKILL_DIR}/scripts/check.sh
`

func TestParse(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		dir  string
		src  string
		want Skill
	}{
		{
			name: "ReferenceExample",
			dir:  "restart-service",
			src:  refExample,
			want: Skill{
				Name:                   "restart-service",
				Description:            "Restart a systemd service on one managed host after checking its status. Use when the user asks to restart, bounce or reload a service on a server.",
				ArgumentHint:           "[host] [service]",
				DisableModelInvocation: true,
				UserInvocable:          true,
				AllowedTools:           []string{"Bash(ssh *)", "mcp__it0__run_command"},
				Body:                   refExample[strings.Index(refExample, "Restart service"):],
			},
		},
		{
			name: "Minimal",
			dir:  "a",
			src:  "---\nname: a\ndescription: d\n---\n",
			want: Skill{Name: "a", Description: "d", UserInvocable: true},
		},
		{
			name: "NoDirCheck",
			src:  "---\nname: anything-9\ndescription: d\n---\nbody",
			want: Skill{Name: "anything-9", Description: "d", UserInvocable: true, Body: "body"},
		},
		{
			name: "SpaceSeparatedTools",
			dir:  "x",
			src:  "---\nname: x\ndescription: d\nallowed-tools: Read  Grep\tBash(git log *)\n---\n",
			want: Skill{Name: "x", Description: "d", UserInvocable: true, AllowedTools: []string{"Read", "Grep", "Bash(git log *)"}},
		},
		{
			name: "ToolsAsYAMLList",
			dir:  "x",
			src:  "---\nname: x\ndescription: d\nallowed-tools:\n  - Read\n  - \"Bash(kubectl get *)\"\n---\n",
			want: Skill{Name: "x", Description: "d", UserInvocable: true, AllowedTools: []string{"Read", "Bash(kubectl get *)"}},
		},
		{
			name: "AllFields",
			dir:  "full",
			src: `---
name: full
description: "Does it all: every field"
license: Apache-2.0
compatibility: Needs kubectl 1.30+
metadata:
  author: ops-team
  version: 1.0
allowed-tools: [Read, Grep]
argument-hint: "[a]"
disable-model-invocation: false
user-invocable: false
model: claude-opus-4
context: fork
agent: Explore
disallowed-tools: Write Edit
arguments: [host, service]
hooks:
  PreToolUse:
    - matcher: Bash
      hooks:
        - type: command
          command: it0 hook pre-tool-use
when_to_use: later
---
# Body
`,
			want: Skill{
				Name: "full", Description: "Does it all: every field", License: "Apache-2.0",
				Compatibility: "Needs kubectl 1.30+",
				Metadata:      map[string]string{"author": "ops-team", "version": "1.0"},
				AllowedTools:  []string{"Read", "Grep"}, ArgumentHint: "[a]",
				Model: "claude-opus-4", Context: "fork", Agent: "Explore",
				DisallowedTools: []string{"Write", "Edit"}, Arguments: []string{"host", "service"},
				Hooks: json.RawMessage(`{"PreToolUse":[{"hooks":[{"command":"it0 hook pre-tool-use","type":"command"}],"matcher":"Bash"}]}`),
				Extra: map[string]json.RawMessage{"when_to_use": json.RawMessage(`"later"`)},
				Body:  "# Body\n",
			},
		},
		{
			name: "CRLFAndBOM",
			dir:  "w",
			src:  "\xef\xbb\xbf---\r\nname: w\r\ndescription: windows\r\n---\r\nline\r\n",
			want: Skill{Name: "w", Description: "windows", UserInvocable: true, Body: "line\r\n"},
		},
		{
			name: "BlockScalarDescription",
			dir:  "b",
			src:  "---\nname: b\ndescription: |\n  first\n  second\n---\n",
			want: Skill{Name: "b", Description: "first\nsecond", UserInvocable: true},
		},
		{
			name: "BodyMayContainFences",
			dir:  "f",
			src:  "---\nname: f\ndescription: d\n---\nabove\n---\nbelow\n",
			want: Skill{Name: "f", Description: "d", UserInvocable: true, Body: "above\n---\nbelow\n"},
		},
		{
			name: "NullOptionalFields",
			dir:  "n",
			src:  "---\nname: n\ndescription: d\nlicense:\nuser-invocable:\nhooks:\n---\n",
			want: Skill{Name: "n", Description: "d", UserInvocable: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tc.dir, []byte(tc.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				gj, _ := json.MarshalIndent(got, "", " ")
				wj, _ := json.MarshalIndent(tc.want, "", " ")
				t.Fatalf("got\n%s\nwant\n%s", gj, wj)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()

	long := strings.Repeat("x", MaxDescriptionLen+1)
	tests := []struct {
		name     string
		dir      string
		src      string
		field    string
		line     int
		sentinel error
		msg      string // substring of the message
	}{
		{"NoFrontmatter", "a", "# just markdown\n", "frontmatter", 1, ErrNoFrontmatter, "---"},
		{"Empty", "a", "", "frontmatter", 1, ErrNoFrontmatter, ""},
		{"Unterminated", "a", "---\nname: a\ndescription: d\n", "frontmatter", 1, ErrUnterminated, "not closed"},
		{"OnlyOpening", "a", "---", "frontmatter", 1, ErrUnterminated, ""},
		{"MissingName", "a", "---\ndescription: d\n---\n", "name", 1, ErrInvalidName, "required"},
		{"NameUppercase", "", "---\nname: Bad\ndescription: d\n---\n", "name", 2, ErrInvalidName, "lowercase"},
		{"NameLeadingDash", "", "---\nname: -a\ndescription: d\n---\n", "name", 2, ErrInvalidName, "start or end"},
		{"NameTrailingDash", "", "---\nname: a-\ndescription: d\n---\n", "name", 2, ErrInvalidName, "start or end"},
		{"NameDoubleDash", "", "---\nname: a--b\ndescription: d\n---\n", "name", 2, ErrInvalidName, "--"},
		{"NameTooLong", "", "---\nname: " + strings.Repeat("a", 65) + "\ndescription: d\n---\n", "name", 2, ErrInvalidName, "at most 64"},
		{"NamePathEscape", "", "---\nname: ../etc\ndescription: d\n---\n", "name", 2, ErrInvalidName, ""},
		{"NameNotDir", "other", "---\nname: mine\ndescription: d\n---\n", "name", 2, ErrInvalidName, "directory name"},
		{"MissingDescription", "a", "---\nname: a\n---\n", "description", 1, ErrInvalid, "required"},
		{"BlankDescription", "a", "---\nname: a\ndescription: \"  \"\n---\n", "description", 3, ErrInvalid, "required"},
		{"DescriptionTooLong", "a", "---\nname: a\ndescription: " + long + "\n---\n", "description", 3, ErrInvalid, "at most 1024"},
		{"CompatibilityTooLong", "a", "---\nname: a\ndescription: d\ncompatibility: " + strings.Repeat("c", 501) + "\n---\n", "compatibility", 4, ErrInvalid, "at most 500"},
		{"UnquotedColon", "a", "---\nname: a\ndescription: Restart: a service\n---\n", "frontmatter", 3, ErrInvalid, "quote"},
		{"NotAMapping", "a", "---\n- a\n- b\n---\n", "frontmatter", 2, ErrInvalid, "mapping"},
		{"DuplicateKey", "a", "---\nname: a\ndescription: d\nname: a\n---\n", "frontmatter", 4, ErrInvalid, "already defined"},
		{"DescriptionList", "a", "---\nname: a\ndescription: [x]\n---\n", "description", 3, ErrInvalid, "must be a string"},
		{"UnquotedHint", "a", "---\nname: a\ndescription: d\nargument-hint: [host]\n---\n", "argument-hint", 4, ErrInvalid, "quote"},
		{"BoolNotBool", "a", "---\nname: a\ndescription: d\nuser-invocable: maybe\n---\n", "user-invocable", 4, ErrInvalid, "true or false"},
		{"MetadataList", "a", "---\nname: a\ndescription: d\nmetadata: [a]\n---\n", "metadata", 4, ErrInvalid, "mapping"},
		{"MetadataNested", "a", "---\nname: a\ndescription: d\nmetadata:\n  a:\n    b: c\n---\n", "metadata", 4, ErrInvalid, "a must be a string"},
		{"ToolsMapping", "a", "---\nname: a\ndescription: d\nallowed-tools:\n  x: y\n---\n", "allowed-tools", 4, ErrInvalid, "list"},
		{"ContextUnknown", "a", "---\nname: a\ndescription: d\ncontext: spoon\n---\n", "context", 4, ErrInvalid, "fork"},
		{"ArgumentName", "a", "---\nname: a\ndescription: d\narguments: [\"1st\"]\n---\n", "arguments", 4, ErrInvalid, "argument names"},
		{"HooksList", "a", "---\nname: a\ndescription: d\nhooks: [a]\n---\n", "hooks", 4, ErrInvalid, "mapping"},
		{"Alias", "a", "---\nname: &n a\ndescription: *n\n---\n", "frontmatter", 2, ErrInvalid, "aliases"},
		{"DeepNesting", "a", "---\nname: a\ndescription: d\nx: " + strings.Repeat("[", 65) + strings.Repeat("]", 65) + "\n---\n", "frontmatter", 1, ErrInvalid, "deeper than 64"},
		{"FrontmatterTooLarge", "a", "---\nname: a\ndescription: " + strings.Repeat("d", MaxFrontmatter) + "\n---\n", "frontmatter", 1, ErrTooLarge, "larger than"},
		{"TooLarge", "a", "---\nname: a\ndescription: d\n---\n" + strings.Repeat("x", MaxSize), "", 0, ErrTooLarge, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse(tc.dir, []byte(tc.src))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", s)
			}
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("error %q is not %v", err, tc.sentinel)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %q is not an *Error", err)
			}
			if e.Field != tc.field || e.Line != tc.line {
				t.Errorf("field %q line %d, want %q line %d (%v)", e.Field, e.Line, tc.field, tc.line, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q lacks %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), "\n") && !strings.Contains(tc.name, "Name") {
				// Ensure YAML errors are one line per problem, without the library's source excerpt.
				if len(strings.Split(err.Error(), "\n")) > 2 {
					t.Errorf("error spans many lines:\n%s", err)
				}
			}
		})
	}
}

// Ensure every problem is reported at once, each with its own line.
func TestParseReportsAllProblems(t *testing.T) {
	t.Parallel()
	_, err := Parse("x", []byte("---\nname: Bad\ndescription: \"\"\ncompatibility: "+strings.Repeat("c", 600)+"\n---\n"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"line 2: name:", "line 3: description:", "line 4: compatibility:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		skill   Skill
		dir     string
		wantErr error
	}{
		{"OK", Skill{Name: "ok", Description: "d"}, "ok", nil},
		{"WrongDir", Skill{Name: "ok", Description: "d"}, "other", ErrInvalidName},
		{"NoDescription", Skill{Name: "ok"}, "", ErrInvalid},
		{"Slash", Skill{Name: "a/b", Description: "d"}, "", ErrInvalidName},
		{"EmptyTool", Skill{Name: "a", Description: "d", AllowedTools: []string{""}}, "", ErrInvalid},
		{"ExtraShadowsKnown", Skill{Name: "a", Description: "d", Extra: map[string]json.RawMessage{"name": json.RawMessage(`"x"`)}}, "", ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.skill.Validate(tc.dir)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Validate = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestSplitTools(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"Read", []string{"Read"}},
		{"Read Grep", []string{"Read", "Grep"}},
		{"Read, Grep, Bash(git *)", []string{"Read", "Grep", "Bash(git *)"}},
		{"Bash(a, b) Read", []string{"Bash(a, b)", "Read"}},
		{" ,, Read ,", []string{"Read"}},
		{"Bash(unclosed *", []string{"Bash(unclosed *"}},
	}
	for _, tc := range tests {
		if got := SplitTools(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitTools(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		skill Skill
	}{
		{"Minimal", Skill{Name: "a", Description: "d", UserInvocable: true}},
		{"Tricky", Skill{
			Name:          "tricky-1",
			Description:   "Has: colons, # hashes, \"quotes\", 'single', and\nnewlines\n---\nand a fence",
			License:       "yes",
			Compatibility: "123",
			Metadata:      map[string]string{"k: x": "true", "n": "null", "e": ""},
			AllowedTools:  []string{"Read", "Bash(git *)", "Bash(a, b)"},
			ArgumentHint:  "[host] [service]",
			Model:         "@sonnet",
			Arguments:     []string{"host"},
			Hooks:         json.RawMessage(`{"Stop":[{"hooks":[{"command":"echo done","type":"command"}]}]}`),
			Extra:         map[string]json.RawMessage{"version": json.RawMessage(`2`), "x-list": json.RawMessage(`["a",1,true,null]`)},
			Body:          "---\nnot frontmatter\n$ARGUMENTS\n",
		}},
		{"UnbalancedTools", Skill{Name: "u", Description: "d", UserInvocable: true, AllowedTools: []string{"Bash(x", "y)"}}},
		{"HiddenAndUserOnly", Skill{Name: "h", Description: "d", DisableModelInvocation: true, UserInvocable: false}},
		{"Unicode", Skill{Name: "zh", Description: "检查服务器磁盘空间。当用户说“磁盘满了”时使用。", UserInvocable: true, Body: "# 巡检\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := tc.skill.Marshal()
			got, err := Parse(tc.skill.Name, out)
			if err != nil {
				t.Fatalf("Parse(Marshal()): %v\n%s", err, out)
			}
			if !reflect.DeepEqual(*got, tc.skill) {
				t.Fatalf("round trip differs\n%s\ngot  %+v\nwant %+v", out, *got, tc.skill)
			}
		})
	}

	// Ensure the reference example survives a round trip.
	t.Run("ReferenceExample", func(t *testing.T) {
		t.Parallel()
		s, err := Parse("restart-service", []byte(refExample))
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse("restart-service", s.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(s, again) {
			t.Fatalf("got %+v, want %+v", again, s)
		}
	})
}
