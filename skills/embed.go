// Package skills holds the Agent Skills IT0 ships: one directory per skill with its SKILL.md. They are
// copied into each tenant's skill directory when the tenant is provisioned, and package skill reads them
// with skill.ReadFS(skills.FS).
package skills

import "embed"

// FS holds <name>/SKILL.md for every shipped skill.
//
//go:embed */SKILL.md
var FS embed.FS
