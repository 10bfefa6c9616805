package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// loadAuditKey reads IT0_AUDIT_KEY_FILE when IT0_AUDIT_KEY is unset, and records where the key came from.
func (c *Config) loadAuditKey() error {
	switch {
	case c.AuditKey != "":
		c.AuditKeySource = "IT0_AUDIT_KEY"
	case c.AuditKeyFile != "":
		b, err := os.ReadFile(c.AuditKeyFile)
		if err != nil {
			return fmt.Errorf("IT0_AUDIT_KEY_FILE: %w", err)
		}
		key := strings.TrimSpace(string(b))
		if len(key) < 32 {
			return fmt.Errorf("IT0_AUDIT_KEY_FILE %s: the key must be at least 32 characters", c.AuditKeyFile)
		}
		c.AuditKey, c.AuditKeySource = key, c.AuditKeyFile
	}
	return nil
}

// AuditKeyWarning says why the audit key is weak where it is kept, or "" when it is kept apart from the
// data. The key MACs the audit chain; whoever can edit the database and read the key can rewrite history
// and MAC it again, so a key next to the data (the generated <data-dir>/secrets.json, or a key file inside
// the data dir) only detects tampering by someone who cannot read the data dir.
func (c *Config) AuditKeyWarning() string {
	if c.DatabaseURL != "" || c.AuditKeySource == "IT0_AUDIT_KEY" || c.AuditKeySource == "" {
		return ""
	}
	dir, err := filepath.Abs(c.DataDir)
	if err != nil {
		return ""
	}
	src, err := filepath.Abs(c.AuditKeySource)
	if err != nil {
		return ""
	}
	if rel, err := filepath.Rel(dir, src); err == nil && !strings.HasPrefix(rel, "..") {
		return "the audit key is kept in " + c.AuditKeySource + ", next to the audit log it protects: anyone who can edit " +
			"the database can read it and re-MAC the chain; move it out (IT0_AUDIT_KEY, or IT0_AUDIT_KEY_FILE outside the data dir)"
	}
	return ""
}
