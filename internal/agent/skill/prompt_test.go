package skill

import (
	"strings"
	"testing"
)

func TestPromptSection(t *testing.T) {
	t.Parallel()
	skills := []*Skill{
		{Name: "zz-deploy", Description: "Deploy a version.\n  Use when asked to release.", ArgumentHint: "[svc] [ver]", DisableModelInvocation: true},
		{Name: "aa-inspect", Description: "Read-only health check."},
	}
	tests := []struct {
		name   string
		locale string
		want   []string
		absent []string
	}{
		{"English", "en-US", []string{
			"## Available skills",
			"- **aa-inspect**: Read-only health check.\n",
			"- **zz-deploy** `[svc] [ver]`: Deploy a version. Use when asked to release. (user-only: ask the user to run /zz-deploy",
		}, []string{"可用技能"}},
		{"Chinese", "zh-CN", []string{"## 可用技能", "- **aa-inspect**: Read-only health check.", "仅限用户调用：请让用户自行运行 /zz-deploy"}, []string{"Available skills"}},
		{"ChineseUnderscore", "zh_TW", []string{"## 可用技能"}, nil},
		{"DefaultEnglish", "", []string{"## Available skills"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := PromptSection(skills, tc.locale)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(got, a) {
					t.Errorf("unexpected %q in:\n%s", a, got)
				}
			}
			if strings.Index(got, "aa-inspect") > strings.Index(got, "zz-deploy") {
				t.Errorf("skills not sorted by name:\n%s", got)
			}
		})
	}

	// Ensure no skills means no section at all.
	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		if got := PromptSection(nil, "en"); got != "" {
			t.Fatalf("got %q", got)
		}
	})
}

func TestInvokedSection(t *testing.T) {
	t.Parallel()
	s := &Skill{Name: "inspect", Description: "d", Body: "Check $0.\n"}
	rendered := s.Render("web-1", "", "")
	for _, tc := range []struct{ locale, want string }{
		{"en", "## Invoked skill: inspect\n\nFollow these instructions to complete the task.\n\nCheck web-1.\n"},
		{"zh-CN", "## 已调用技能：inspect\n\n请按以下说明完成任务。\n\nCheck web-1.\n"},
	} {
		if got := InvokedSection(s, rendered, tc.locale); got != tc.want {
			t.Errorf("InvokedSection(%s) = %q, want %q", tc.locale, got, tc.want)
		}
	}
}
