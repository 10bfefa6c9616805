package comm

import (
	"fmt"
	"strings"
)

// catalog holds every text comm sends, per locale. Keys are fmt formats.
var catalog = map[string]map[string]string{
	"en": {
		"subject":           "[IT0 %s] A run needs you: %s",
		"body":              "IT0 standing order needs a human (%s).\n%s\nReply Y %s to approve, N %s to reject, or any other text as an instruction.",
		"sms":               "IT0 %s: %s Reply Y %s to approve, N %s to reject, by %s.",
		"expires":           "Answer by %s; after that the request is rejected.",
		"im":                "IT0 escalation (%s): %s",
		"approval_subject":  "[IT0] L%d needs your approval: %s",
		"approval_text":     "The agent wants to run (L%d): %s\nWhy it needs you: %s\nOpen until %s.",
		"speech":            "This is I T zero. A %s escalation needs you. %s. Press 1 to approve, 2 to reject.",
		"speech_none":       "No answer received. Goodbye.",
		"approve":           "Approve",
		"reject":            "Reject",
		"answered":          "Thanks: your answer (%s) was recorded.",
		"late":              "Too late: this escalation was already answered or closed.",
		"unknown":           "This number is not a contact of IT0.",
		"forbidden":         "You are not allowed to decide this: %s",
		"no_pending":        "There is no open escalation for you.",
		"report_title":      "Full report",
		"link_confirm":      "Confirm your answer",
		"decision_approve":  "approved",
		"decision_reject":   "rejected",
		"decision_instruct": "instructed",
	},
	"zh-CN": {
		"subject":           "[IT0 %s] 需要您处理: %s",
		"body":              "IT0 值守任务需要人工处理 (%s)。\n%s\n回复 Y %s 批准，N %s 拒绝，或回复其他文字作为指示。",
		"sms":               "IT0 %s：%s 回复 Y %s 批准，N %s 拒绝，%s 前有效。",
		"expires":           "请在 %s 前答复，逾期视为拒绝。",
		"im":                "IT0 升级告警 (%s): %s",
		"approval_subject":  "[IT0] L%d 操作待您审批：%s",
		"approval_text":     "智能体请求执行（L%d）：%s\n需要审批的原因：%s\n有效期至 %s。",
		"speech":            "这里是 IT0。一个%s级别的事件需要您处理。%s。批准请按 1，拒绝请按 2。",
		"speech_none":       "未收到输入，再见。",
		"approve":           "批准",
		"reject":            "拒绝",
		"answered":          "已记录您的答复 (%s)。",
		"late":              "太迟了：此升级已被处理或关闭。",
		"unknown":           "此号码不是 IT0 的联系人。",
		"forbidden":         "您无权处理此事项: %s",
		"no_pending":        "没有需要您处理的升级。",
		"report_title":      "完整报告",
		"link_confirm":      "确认您的答复",
		"decision_approve":  "已批准",
		"decision_reject":   "已拒绝",
		"decision_instruct": "已指示",
	},
}

// Locale normalises a locale to one comm speaks: zh* → zh-CN, anything else → en.
func Locale(l string) string {
	if strings.HasPrefix(strings.ToLower(l), "zh") {
		return "zh-CN"
	}
	return "en"
}

// T renders key in locale.
func T(locale, key string, args ...any) string {
	f, ok := catalog[Locale(locale)][key]
	if !ok {
		f = catalog["en"][key]
	}
	if len(args) == 0 {
		return f
	}
	return fmt.Sprintf(f, args...)
}

// speechLanguage is the TTS language for locale.
func speechLanguage(locale string) string {
	if Locale(locale) == "zh-CN" {
		return "zh-CN"
	}
	return "en-US"
}
