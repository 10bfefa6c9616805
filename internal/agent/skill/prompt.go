package skill

import (
	"fmt"
	"slices"
	"strings"
)

// PromptSection renders the list of available skills for a system prompt: one entry per skill with its
// name, argument hint and description, in Chinese when locale starts with "zh" and in English otherwise.
// Skills marked disable-model-invocation are listed as user-only so the model asks the user to run them
// instead of following them itself. It returns "" when there are no skills.
//
// This is what API engines get in place of Claude Code's native skill loading; the body of a skill the
// user invokes is added with InvokedSection.
func PromptSection(skills []*Skill, locale string) string {
	if len(skills) == 0 {
		return ""
	}
	zh := isChinese(locale)
	sorted := slices.Clone(skills)
	slices.SortFunc(sorted, func(a, b *Skill) int { return strings.Compare(a.Name, b.Name) })
	var b strings.Builder
	if zh {
		b.WriteString("## 可用技能 (Skills)\n\n")
		b.WriteString("以下是本租户的运维技能。当用户的请求与某个技能的描述相符时，先说明你将使用哪个技能，然后严格按照该技能的步骤执行；风险命令仍需审批。\n\n")
	} else {
		b.WriteString("## Available skills\n\n")
		b.WriteString("These are the tenant's operations skills. When a request matches a skill's description, say which skill you are using and follow its steps; risky commands still need approval.\n\n")
	}
	for _, s := range sorted {
		if s == nil {
			continue
		}
		fmt.Fprintf(&b, "- **%s**", s.Name)
		if s.ArgumentHint != "" {
			fmt.Fprintf(&b, " `%s`", s.ArgumentHint)
		}
		b.WriteString(": ")
		b.WriteString(oneLine(s.Description))
		if s.DisableModelInvocation {
			if zh {
				fmt.Fprintf(&b, " (仅限用户调用：请让用户自行运行 /%s，不要自行执行)", s.Name)
			} else {
				fmt.Fprintf(&b, " (user-only: ask the user to run /%s; do not follow it yourself)", s.Name)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// InvokedSection renders the instructions of an invoked skill for a system prompt or a user turn:
// a heading naming the skill, then rendered, the output of (*Skill).Render.
func InvokedSection(s *Skill, rendered, locale string) string {
	var b strings.Builder
	if isChinese(locale) {
		fmt.Fprintf(&b, "## 已调用技能：%s\n\n请按以下说明完成任务。\n\n", s.Name)
	} else {
		fmt.Fprintf(&b, "## Invoked skill: %s\n\nFollow these instructions to complete the task.\n\n", s.Name)
	}
	b.WriteString(strings.TrimRight(rendered, "\n"))
	b.WriteByte('\n')
	return b.String()
}

func isChinese(locale string) bool {
	l := strings.ToLower(strings.TrimSpace(locale))
	return l == "zh" || strings.HasPrefix(l, "zh-") || strings.HasPrefix(l, "zh_")
}

// oneLine folds a description onto one line so the list stays a list.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
