package agent

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"text/template"

	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/tenant"
	opsconfig "github.com/it0/it0/ops-config"
)

// PromptSources supply what the system prompt describes. Skills and StandingOrders may be nil.
type PromptSources struct {
	Fleet   Fleet
	Tenants Tenants
	// Skills renders the tenant's skills section for a locale ("" when there are none); filled in by New.
	Skills func(ctx context.Context, locale string) (string, error)
	// StandingOrders renders the tenant's active standing orders ("" when there are none).
	StandingOrders func(ctx context.Context, locale string) (string, error)
}

// PromptBuilder renders the agent's system prompt from ops-config/system-prompts/<locale>.tmpl.
type PromptBuilder struct {
	src   PromptSources
	tmpls map[string]*template.Template
}

// NewPromptBuilder parses the shipped templates.
func NewPromptBuilder(src PromptSources) (*PromptBuilder, error) {
	funcs := template.FuncMap{"join": strings.Join}
	b := &PromptBuilder{src: src, tmpls: map[string]*template.Template{}}
	for _, loc := range []string{"en", "zh-CN"} {
		t, err := template.New(loc).Funcs(funcs).ParseFS(opsconfig.SystemPrompts, "system-prompts/"+loc+".tmpl")
		if err != nil {
			return nil, fmt.Errorf("system prompt %s: %w", loc, err)
		}
		b.tmpls[loc] = t.Lookup(loc + ".tmpl")
	}
	return b, nil
}

// promptLocale picks the template: Chinese for zh*, English otherwise.
func promptLocale(locale string) string {
	if strings.HasPrefix(strings.ToLower(locale), "zh") {
		return "zh-CN"
	}
	return "en"
}

// Build renders the system prompt of sess in its tenant's locale.
func (b *PromptBuilder) Build(ctx context.Context, sess *Session) (string, error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return "", err
	}
	t, err := b.src.Tenants.Tenant(ctx, tid)
	if err != nil {
		return "", err
	}
	loc := promptLocale(t.Locale)
	servers, err := b.src.Fleet.Servers(ctx, inventory.Selector{})
	if err != nil {
		return "", err
	}
	clusters, err := b.src.Fleet.Clusters(ctx)
	if err != nil {
		return "", err
	}
	// An unattended run is told what its own boundary lets it do, not what an attended session may.
	data := map[string]any{"Tenant": t.Name, "Servers": serverViews(servers), "Clusters": clusters,
		"Unattended": sess.Unattended(), "MaxRiskLevel": sess.MaxRiskLevel}
	if len(sess.ServerIDs) > 0 {
		var focus []string
		for _, s := range servers {
			for _, id := range sess.ServerIDs {
				if s.ID == id {
					focus = append(focus, s.Name)
				}
			}
		}
		data["Focus"] = focus
	}
	if b.src.Skills != nil {
		if data["Skills"], err = b.src.Skills(ctx, loc); err != nil {
			return "", err
		}
	}
	if b.src.StandingOrders != nil {
		if data["StandingOrders"], err = b.src.StandingOrders(ctx, loc); err != nil {
			return "", err
		}
	}
	var out bytes.Buffer
	if err := b.tmpls[loc].Execute(&out, data); err != nil {
		return "", fmt.Errorf("render system prompt: %w", err)
	}
	return out.String(), nil
}
