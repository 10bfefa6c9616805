package voice

import (
	"strings"
	"unicode"
)

// IntentKind is what a spoken answer to an approval question means.
type IntentKind int

// Intents. Unclear is never a decision: the question is asked again.
const (
	Unclear IntentKind = iota
	Approve
	Reject
)

func (k IntentKind) String() string {
	return [...]string{"unclear", "approve", "reject"}[k]
}

// Intent is a parsed spoken answer.
type Intent struct {
	Kind IntentKind
	// Rest is what was said besides the yes or no (an instruction that goes with an approval).
	Rest string
}

// Word lists. Negated approvals (不同意) are rewritten to a reject word before the approve words are looked
// up, so 同意 inside 不同意 never approves.
var (
	zhNegated = []string{"先别执行", "不同意", "不可以", "不批准", "不执行", "不要执行", "不好", "不行", "不要", "别执行"}
	zhApprove = []string{"同意", "可以", "批准", "执行", "好的", "好", "行", "是的", "对"}
	zhReject  = []string{"拒绝", "取消", "先别", "不", "否", "别"}
	enApprove = map[string]bool{"yes": true, "yeah": true, "yep": true, "approve": true, "approved": true, "confirm": true,
		"confirmed": true, "sure": true, "ok": true, "okay": true, "proceed": true}
	enReject = map[string]bool{"no": true, "nope": true, "reject": true, "rejected": true, "cancel": true, "deny": true,
		"denied": true, "don't": true, "dont": true, "stop": true, "abort": true}
	enApprovePhrases = []string{"go ahead", "do it"}
	enNeutral        = []string{"no problem", "no worries"} // contain "no" but approve nothing by themselves
)

// ParseIntent reads an answer in Chinese or English (mixed is fine): approve (zh 同意/可以/批准/执行/好;
// en yes/approve/go ahead), reject (zh 不/不行/拒绝/取消/先别; en no/reject/cancel), anything else — and any
// answer that says both — is Unclear.
func ParseIntent(text string) Intent {
	t := strings.ToLower(strings.TrimSpace(text))
	approve, reject := 0, 0
	// Chinese: negated approvals first, then the rest.
	for _, w := range zhNegated {
		if n := strings.Count(t, w); n > 0 {
			reject += n
			t = strings.ReplaceAll(t, w, " ")
		}
	}
	for _, w := range zhReject {
		if n := strings.Count(t, w); n > 0 {
			reject += n
			t = strings.ReplaceAll(t, w, " ")
		}
	}
	for _, w := range zhApprove {
		if n := strings.Count(t, w); n > 0 {
			approve += n
			t = strings.ReplaceAll(t, w, " ")
		}
	}
	for _, p := range enNeutral {
		t = strings.ReplaceAll(t, p, " ")
	}
	for _, p := range enApprovePhrases {
		if n := countWords(t, p); n > 0 {
			approve += n
			t = replaceWords(t, p)
		}
	}
	var rest []string
	for _, w := range strings.FieldsFunc(t, func(r rune) bool { return unicode.IsSpace(r) || (unicode.IsPunct(r) && r != '\'') }) {
		switch {
		case enApprove[w]:
			approve++
		case enReject[w]:
			reject++
		default:
			rest = append(rest, w)
		}
	}
	in := Intent{Rest: strings.Join(rest, " ")}
	switch {
	case approve > 0 && reject == 0:
		in.Kind = Approve
	case reject > 0 && approve == 0:
		in.Kind = Reject
	}
	return in
}

// countWords counts phrase p in t at word boundaries.
func countWords(t, p string) int {
	n := 0
	for i := 0; ; {
		j := strings.Index(t[i:], p)
		if j < 0 {
			return n
		}
		j += i
		if boundary(t, j-1) && boundary(t, j+len(p)) {
			n++
		}
		i = j + len(p)
	}
}

func replaceWords(t, p string) string {
	var b strings.Builder
	for i := 0; ; {
		j := strings.Index(t[i:], p)
		if j < 0 {
			b.WriteString(t[i:])
			return b.String()
		}
		j += i
		b.WriteString(t[i:j])
		if boundary(t, j-1) && boundary(t, j+len(p)) {
			b.WriteByte(' ')
		} else {
			b.WriteString(p)
		}
		i = j + len(p)
	}
}

func boundary(t string, i int) bool {
	if i < 0 || i >= len(t) {
		return true
	}
	c := t[i]
	return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '\'')
}
