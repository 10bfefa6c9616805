// Package opsconfig embeds the defaults IT0 ships: risk patterns, and later
// system prompt templates and runbooks.
package opsconfig

import _ "embed"

// RiskPatterns is risk-patterns.yaml, the guard's shipped rules.
//
//go:embed risk-patterns.yaml
var RiskPatterns []byte
