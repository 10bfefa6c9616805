package skill

import (
	"reflect"
	"testing"
)

func TestRender(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		body  string
		named []string
		args  string
		want  string
	}{
		{"Whole", "Check $ARGUMENTS now.", nil, "  web-1 nginx ", "Check web-1 nginx now."},
		{"Positional", "host=$0 svc=$1", nil, "web-1 nginx", "host=web-1 svc=nginx"},
		{"Indexed", "host=$ARGUMENTS[0] svc=$ARGUMENTS[1]", nil, "web-1 nginx", "host=web-1 svc=nginx"},
		{"QuotedArgs", "[$0] [$1] [$2]", nil, `"two words" 'it''s' x\ y`, "[two words] [its] [x y]"},
		{"UnmatchedLeftLiteral", "a=$0 c=$2 d=$ARGUMENTS[5]", nil, "one", "a=one c=$2 d=$ARGUMENTS[5]"},
		{"NoArgsUnmatched", "a=$0", nil, "", "a=$0"},
		{"EmptyWhole", "run [$ARGUMENTS]", nil, "", "run []"},
		{"AppendWhenNoPlaceholder", "Do the thing.\n", nil, "web-1  --fast", "Do the thing.\n\nARGUMENTS: web-1  --fast\n"},
		{"NoAppendWithoutArgs", "Do the thing.\n", nil, "   ", "Do the thing.\n"},
		{"NoAppendWhenPositionalUsed", "host $0\n", nil, "a b", "host a\n"},
		{"NoAppendWhenUnmatchedPlaceholder", "host $3\n", nil, "a", "host $3\n"},
		{"AppendToEmptyBody", "", nil, "x", "ARGUMENTS: x\n"},
		{"SessionAndDir", "id=${CLAUDE_SESSION_ID} dir=${CLAUDE_SKILL_DIR}/scripts", nil, "", "id=s-1 dir=/skills/x/scripts"},
		{"SessionDoesNotCountAsArgs", "${CLAUDE_SESSION_ID}", nil, "a", "s-1\n\nARGUMENTS: a\n"},
		{"NoReexpansion", "$0 and $1", nil, `'$1' '$ARGUMENTS'`, "$1 and $ARGUMENTS"},
		{"MultiDigit", "$10 $1", nil, "a b c d e f g h i j k", "k b"},
		{"HugeIndex", "$99999999999999999999", nil, "a", "$99999999999999999999"},
		{"ShellVarsUntouched", "echo $HOME ${PATH} $$ $ $ARGUMENTSX awk '{print $NF}'", nil, "", "echo $HOME ${PATH} $$ $ $ARGUMENTSX awk '{print $NF}'"},
		{"BadIndexSyntax", "$ARGUMENTS[x] $ARGUMENTS[", nil, "a", "a[x] a["},
		{"Named", "host=$host svc=$service other=$hostname", []string{"host", "service"}, "web-1 nginx", "host=web-1 svc=nginx other=$hostname"},
		{"NamedMissing", "svc=$service", []string{"host", "service"}, "web-1", "svc=$service"},
		{"TrailingDollar", "cost $", nil, "", "cost $"},
		{"Reference", "Restart service `$1` on host `$0`.\nHelper: ${CLAUDE_SKILL_DIR}/scripts/check.sh\n", nil, "web-1 nginx",
			"Restart service `nginx` on host `web-1`.\nHelper: /skills/x/scripts/check.sh\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &Skill{Name: "x", Description: "d", Body: tc.body, Arguments: tc.named}
			if got := s.Render(tc.args, "s-1", "/skills/x"); got != tc.want {
				t.Errorf("Render(%q)\n got %q\nwant %q", tc.args, got, tc.want)
			}
		})
	}
}

func TestSplitArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"a b\tc\nd", []string{"a", "b", "c", "d"}},
		{`"two words" three`, []string{"two words", "three"}},
		{`'single "kept"'`, []string{`single "kept"`}},
		{`"esc \" \\ \$ \n"`, []string{`esc " \ $ \n`}},
		{`a\ b`, []string{"a b"}},
		{`""`, []string{""}},
		{`x"y z"w`, []string{"xy zw"}},
		{`"unterminated rest`, []string{"unterminated rest"}},
		{`'unterminated`, []string{"unterminated"}},
		{`trailing\`, []string{`trailing\`}},
		{"a\\\nb", []string{"ab"}},
		{"中文 参数", []string{"中文", "参数"}},
	}
	for _, tc := range tests {
		if got := SplitArgs(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
