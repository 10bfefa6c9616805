package ops

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestDraftVocabulary: the design document's draft format (environment_filter as a list, channels
// voice_call|im|sms|push|email, priorities urgent|high|normal|low) is accepted and stored in IT0's
// canonical names; the older single-string environment_filter still reads; unknown words are refused.
func TestDraftVocabulary(t *testing.T) {
	t.Parallel()
	draft := `{"name":"disk guard","trigger":{"type":"manual"},"targets":{"environment_filter":["prod","staging"]},
		"agent_instructions":{"prompt":"check disks","max_risk_level":1},
		"decision_boundary":{"escalation_rules":[
			{"condition":"disk above 95%","channel":"voice_call","priority":"urgent"},
			{"condition":"a service is down","channel":"im","priority":"high"},
			{"condition":"disk above 85%","channel":"sms","priority":"normal"},
			{"condition":"anything else","channel":"push","priority":"low"},
			{"condition":"weekly summary","channel":"email","priority":"low"}]},
		"escalation_policy_id":"high"}`
	o, err := decodeDraft(json.RawMessage(draft))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(ValidateParams{}); err != nil {
		t.Fatalf("the design's vocabulary is refused: %v", err)
	}
	var got []string
	for _, r := range o.DecisionBoundary.EscalationRules {
		got = append(got, r.Channel+"/"+r.Priority)
	}
	if want := "phone/fatal im/critical sms/warning push/info email/info"; strings.Join(got, " ") != want {
		t.Errorf("canonical rules: %s, want %s", strings.Join(got, " "), want)
	}
	if o.EscalationPolicyID != "critical" {
		t.Errorf("policy: %q", o.EscalationPolicyID)
	}
	out, _ := json.Marshal(o.Targets)
	if string(out) != `{"environment_filter":["prod","staging"]}` {
		t.Errorf("targets written as %s", out)
	}

	// The single-string form of earlier drafts still reads, as a list.
	var tg Targets
	if err := json.Unmarshal([]byte(`{"environment_filter":"prod"}`), &tg); err != nil || len(tg.EnvironmentFilter) != 1 || tg.EnvironmentFilter[0] != "prod" {
		t.Errorf("single environment: %v %v", tg, err)
	}
	if err := json.Unmarshal([]byte(`{"environment_filter":7}`), &tg); err == nil {
		t.Error("a number was read as an environment")
	}

	bad := *o
	bad.Targets.EnvironmentFilter = Strings{"prod", "moon"}
	bad.DecisionBoundary.EscalationRules = []EscalationRule{{Condition: "x", Channel: "pigeon", Priority: "whenever"}}
	bad.EscalationPolicyID = "sometimes"
	err = bad.Validate(ValidateParams{})
	for _, p := range []string{"/targets/environment_filter/1", "/decision_boundary/escalation_rules/0/channel",
		"/decision_boundary/escalation_rules/0/priority", "/escalation_policy_id"} {
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("error does not name %s: %v", p, err)
		}
	}
}
