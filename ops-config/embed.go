// Package opsconfig embeds the defaults IT0 ships: risk patterns, system prompt templates and runbooks.
package opsconfig

import "embed"

// RiskPatterns is risk-patterns.yaml, the guard's shipped rules.
//
//go:embed risk-patterns.yaml
var RiskPatterns []byte

// SystemPrompts holds system-prompts/<locale>.tmpl, the agent's system prompt templates (text/template).
//
//go:embed system-prompts/*.tmpl
var SystemPrompts embed.FS

// Runbooks holds runbooks/*.yaml, seeded into each tenant.
//
//go:embed runbooks/*.yaml
var Runbooks embed.FS

// StandingOrderSchema is the JSON Schema of a standing order draft, given to the agent.
//
//go:embed standing-order.schema.json
var StandingOrderSchema []byte
