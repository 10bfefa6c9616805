package voice

import (
	"testing"
	"unicode/utf8"
)

func TestParseIntent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text string
		want IntentKind
		rest string
	}{
		{"yes approve", Approve, ""},
		{"Yes, go ahead.", Approve, ""},
		{"no reject", Reject, ""},
		{"No.", Reject, ""},
		{"cancel that", Reject, "that"},
		{"no problem, go ahead", Approve, ""},
		{"yes but only the logs older than 14 days", Approve, "but only the logs older than 14 days"},
		{"yes no", Unclear, ""},
		{"what is the weather like", Unclear, "what is the weather like"},
		{"", Unclear, ""},
		{"the approval thing", Unclear, "the approval thing"}, // "approval" is not "approve"
		{"I know", Unclear, "i know"},                         // "know" is not "no"
		{"同意", Approve, ""},
		{"可以，执行吧", Approve, "吧"},
		{"好", Approve, ""},
		{"批准", Approve, ""},
		{"不同意", Reject, ""},
		{"不行", Reject, ""},
		{"拒绝", Reject, ""},
		{"先别", Reject, ""},
		{"先别执行", Reject, ""},
		{"取消", Reject, ""},
		{"不", Reject, ""},
		{"不可以", Reject, ""},
		{"今天天气怎么样", Unclear, "今天天气怎么样"},
		{"好的，不过先别", Unclear, ""},
	} {
		t.Run(tc.text, func(t *testing.T) {
			got := ParseIntent(tc.text)
			if got.Kind != tc.want {
				t.Fatalf("ParseIntent(%q) = %v, want %v", tc.text, got.Kind, tc.want)
			}
			if tc.rest != "" && got.Rest != tc.rest {
				t.Fatalf("rest = %q, want %q", got.Rest, tc.rest)
			}
		})
	}
}

func FuzzParseIntent(f *testing.F) {
	for _, s := range []string{"yes approve", "no reject", "不同意", "go ahead", "好的，不过先别", "don't", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in := ParseIntent(s)
		if in.Kind < Unclear || in.Kind > Reject {
			t.Fatalf("kind %d", in.Kind)
		}
		if utf8.ValidString(s) && !utf8.ValidString(in.Rest) {
			t.Fatalf("rest %q is not UTF-8", in.Rest)
		}
	})
}

func FuzzPCMFromBytes(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := PCMFromBytes(nil, b)
		if (err == nil) != (len(b)%2 == 0) || (err == nil && len(s) != len(b)/2) {
			t.Fatalf("len %d: %d samples, err %v", len(b), len(s), err)
		}
	})
}
