// Package app wires IT0's modules into one process: configuration, the module graph, and -target.
package app

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Config is the whole server's configuration. Flags beat IT0_* environment variables beat defaults.
type Config struct {
	Addr           string
	DataDir        string
	DatabaseURL    string
	RedisURL       string
	Target         string
	LogLevel       string
	LogFormat      string
	TokenTTL       time.Duration
	PublicURL      string
	TrustProxy     bool
	MetricsAddr    string // serve /metrics here instead of on Addr (IT0_METRICS_ADDR)
	BootstrapEmail string
	BootstrapPass  string

	// Agent engines.
	DefaultEngine    string
	ClaudePath       string
	ClaudeModel      string
	AnthropicKey     string
	AnthropicBaseURL string
	OpenAIBaseURL    string
	OpenAIKey        string
	OpenAIModel      string

	// Secrets. In embedded mode (SQLite, no IT0_DATABASE_URL) any that are unset are generated once and kept
	// in <data-dir>/secrets.json (mode 0600), so `it0 serve` works with zero configuration; with PostgreSQL
	// they must be set, because replicas must share them.
	JWTSecret      string
	AuditKey       string
	AuditKeyFile   string // IT0_AUDIT_KEY_FILE: read the audit key from this file (see auditkey.go)
	AuditKeySource string // where AuditKey came from, set by FillSecrets
	VaultMasterKey string
	VaultPrevKeys  string

	// CheckConcurrency bounds the health checks running at once; CheckResultRetention is how long their
	// results are kept.
	CheckConcurrency     int
	CheckResultRetention time.Duration

	// RemediationMaxRisk is the highest risk level (0–2) of a runbook an alert may start unattended.
	RemediationMaxRisk int

	// Comm holds the providers of the communication channels (IT0_TWILIO_*, IT0_SMTP_*, IT0_TELEGRAM_*,
	// IT0_WECOM_*, IT0_FCM_*).
	Comm CommConfig
	// Voice selects the speech engines of the voice gateway (IT0_STT*, IT0_TTS*, IT0_VOICE_*).
	Voice VoiceConfig

	// Uses is what the command at hand reads (RegisterFlagsFor sets it); Validate checks only that.
	// Zero means everything, as `it0 serve`.
	Uses Settings

	// envErrs are the IT0_* variables whose values did not parse, found by RegisterFlags.
	envErrs []error
}

// Settings are groups of settings. A subcommand registers and validates only the groups it uses, so
// `it0 migrate -h` does not list the server's flags and `it0 audit verify` does not demand the JWT
// secret it never reads.
type Settings uint8

// Setting groups.
const (
	UsesStorage  Settings = 1 << iota // data-dir, database-url
	UsesAuditKey                      // IT0_AUDIT_KEY
	UsesVault                         // IT0_VAULT_MASTER_KEY, IT0_VAULT_PREVIOUS_KEYS
	UsesServer                        // everything else `it0 serve` reads
	UsesAll      = UsesStorage | UsesAuditKey | UsesVault | UsesServer
)

// storageFlags are the flags of UsesStorage; every other flag belongs to UsesServer.
var storageFlags = []string{"data-dir", "database-url"}

// RegisterFlagsFor declares on fs the flags of the groups in uses (defaults from getenv) and records
// uses for Validate.
func (c *Config) RegisterFlagsFor(fs *flag.FlagSet, getenv func(string) string, uses Settings) {
	c.Uses = uses
	if uses&UsesServer != 0 {
		c.RegisterFlags(fs, getenv)
		return
	}
	// Fill every field from the environment, then show fs only the storage flags; they share values.
	all := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	c.RegisterFlags(all, getenv)
	for _, name := range storageFlags {
		f := all.Lookup(name)
		fs.Var(f.Value, f.Name, f.Usage)
	}
}

// envParser reads typed IT0_* variables and keeps an error for each value that does not parse: a bad
// setting stops the server, it never quietly becomes zero.
type envParser struct {
	getenv func(string) string
	errs   *[]error
}

func (p envParser) duration(name, def string) time.Duration {
	v := cmp.Or(p.getenv(name), def)
	d, err := time.ParseDuration(v)
	if err != nil {
		*p.errs = append(*p.errs, fmt.Errorf("%s=%q: not a duration (write it like 90s, 30m or 12h)", name, v))
	}
	return d
}

func (p envParser) boolean(name string) bool {
	v := p.getenv(name)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		*p.errs = append(*p.errs, fmt.Errorf("%s=%q: want true or false (or 1 / 0)", name, v))
	}
	return b
}

func (p envParser) integer(name, def string) int {
	v := cmp.Or(p.getenv(name), def)
	n, err := strconv.Atoi(v)
	if err != nil {
		*p.errs = append(*p.errs, fmt.Errorf("%s=%q: not a whole number", name, v))
	}
	return n
}

// RegisterFlags declares every flag on fs with defaults taken from getenv.
func (c *Config) RegisterFlags(fs *flag.FlagSet, getenv func(string) string) {
	env := func(name, def string) string { return cmp.Or(getenv(name), def) }
	c.envErrs = nil
	typed := envParser{getenv: getenv, errs: &c.envErrs}
	fs.StringVar(&c.Addr, "addr", env("IT0_ADDR", "127.0.0.1:8000"), "listen address (IT0_ADDR)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", getenv("IT0_METRICS_ADDR"), "serve /metrics on this address instead of the API's, e.g. 127.0.0.1:9090 (IT0_METRICS_ADDR)")
	fs.StringVar(&c.DataDir, "data-dir", env("IT0_DATA_DIR", "./it0-data"), "directory for embedded SQLite data (IT0_DATA_DIR)")
	fs.StringVar(&c.DatabaseURL, "database-url", getenv("IT0_DATABASE_URL"), "PostgreSQL URL; empty = embedded SQLite (IT0_DATABASE_URL)")
	fs.StringVar(&c.RedisURL, "redis-url", getenv("IT0_REDIS_URL"), "Redis URL of the event bus shared by replicas; empty = in-process bus (IT0_REDIS_URL)")
	fs.StringVar(&c.Target, "target", env("IT0_TARGET", "all"), "comma-separated deploy targets to run: api, agent, ops, monitor, comm, voice, or all (IT0_TARGET); see -list-targets")
	fs.StringVar(&c.LogLevel, "log-level", env("IT0_LOG_LEVEL", "info"), "debug, info, warn or error (IT0_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", env("IT0_LOG_FORMAT", "json"), "json or text (IT0_LOG_FORMAT)")
	ttl := typed.duration("IT0_TOKEN_TTL", "1h")
	fs.DurationVar(&c.TokenTTL, "token-ttl", ttl, "access token lifetime (IT0_TOKEN_TTL)")
	fs.StringVar(&c.PublicURL, "public-url", getenv("IT0_PUBLIC_URL"), "URL clients and providers reach IT0 at (IT0_PUBLIC_URL)")
	tp := typed.boolean("IT0_TRUST_PROXY")
	fs.BoolVar(&c.TrustProxy, "trust-proxy", tp, "take the client address from X-Forwarded-For (IT0_TRUST_PROXY)")
	fs.StringVar(&c.DefaultEngine, "engine", env("IT0_DEFAULT_ENGINE", "claude_api"), "engine for tenants that chose none: claude_code_cli, claude_api or openai_compatible (IT0_DEFAULT_ENGINE)")
	c.ClaudePath = env("IT0_CLAUDE_PATH", "claude")
	c.ClaudeModel = getenv("IT0_CLAUDE_MODEL")
	c.AnthropicKey = getenv("IT0_ANTHROPIC_API_KEY")
	c.AnthropicBaseURL = getenv("IT0_ANTHROPIC_BASE_URL")
	c.OpenAIBaseURL = getenv("IT0_OPENAI_BASE_URL")
	c.OpenAIKey = getenv("IT0_OPENAI_API_KEY")
	c.OpenAIModel = getenv("IT0_OPENAI_MODEL")
	c.BootstrapEmail = getenv("IT0_BOOTSTRAP_ADMIN_EMAIL")
	c.BootstrapPass = getenv("IT0_BOOTSTRAP_ADMIN_PASSWORD")
	c.JWTSecret = getenv("IT0_JWT_SECRET")
	c.AuditKey = getenv("IT0_AUDIT_KEY")
	c.AuditKeyFile = getenv("IT0_AUDIT_KEY_FILE")
	c.VaultMasterKey = getenv("IT0_VAULT_MASTER_KEY")
	c.VaultPrevKeys = getenv("IT0_VAULT_PREVIOUS_KEYS")
	c.Comm.load(getenv)
	c.Voice.load(getenv)
	cc := typed.integer("IT0_CHECK_CONCURRENCY", "64")
	fs.IntVar(&c.CheckConcurrency, "check-concurrency", cc, "health checks running at once (IT0_CHECK_CONCURRENCY)")
	keep := typed.duration("IT0_CHECK_RESULT_RETENTION", "168h")
	fs.DurationVar(&c.CheckResultRetention, "check-result-retention", keep, "how long health check results are kept (IT0_CHECK_RESULT_RETENTION)")
	risk := typed.integer("IT0_MONITOR_REMEDIATION_MAX_RISK", "2")
	fs.IntVar(&c.RemediationMaxRisk, "remediation-max-risk", risk, "highest runbook risk level (0-2) an alert starts unattended (IT0_MONITOR_REMEDIATION_MAX_RISK)")
}

// Validate reports every configuration problem of the settings in c.Uses at once, each naming the
// setting and what it accepts.
func (c *Config) Validate() error {
	uses := cmp.Or(c.Uses, UsesAll)
	var list []error
	if c.DatabaseURL == "" && c.DataDir == "" {
		list = append(list, errors.New("data-dir: must not be empty when no database-url is set"))
	}
	if c.DatabaseURL != "" {
		for _, req := range []struct {
			uses  Settings
			name  string
			value string
		}{{UsesServer, "IT0_JWT_SECRET", c.JWTSecret}, {UsesAuditKey, "IT0_AUDIT_KEY (or IT0_AUDIT_KEY_FILE)", c.AuditKey + c.AuditKeyFile},
			{UsesVault, "IT0_VAULT_MASTER_KEY", c.VaultMasterKey}} {
			if uses&req.uses != 0 && req.value == "" {
				list = append(list, fmt.Errorf("%s is required with IT0_DATABASE_URL (replicas must share it); generate one with: openssl rand -base64 32", req.name))
			}
		}
	}
	if uses&UsesAuditKey != 0 && c.AuditKey != "" && len(c.AuditKey) < 32 {
		list = append(list, errors.New("IT0_AUDIT_KEY must be at least 32 characters"))
	}
	if uses&UsesServer == 0 {
		return errors.Join(list...)
	}
	list = append(list, c.envErrs...)
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		list = append(list, fmt.Errorf("log-level %q: want debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		list = append(list, fmt.Errorf("log-format %q: want json or text", c.LogFormat))
	}
	if c.TokenTTL < time.Minute || c.TokenTTL > 30*24*time.Hour {
		list = append(list, fmt.Errorf("token-ttl %s: want 1m to 720h", c.TokenTTL))
	}
	switch c.DefaultEngine {
	case "claude_code_cli", "claude_api", "openai_compatible":
	default:
		list = append(list, fmt.Errorf("engine %q: want claude_code_cli, claude_api or openai_compatible", c.DefaultEngine))
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		list = append(list, errors.New("IT0_JWT_SECRET must be at least 32 characters"))
	}
	if c.CheckConcurrency < 1 || c.CheckConcurrency > 10000 {
		list = append(list, fmt.Errorf("check-concurrency %d: want 1 to 10000", c.CheckConcurrency))
	}
	if c.CheckResultRetention < time.Hour {
		list = append(list, fmt.Errorf("check-result-retention %s: want at least 1h (e.g. 168h)", c.CheckResultRetention))
	}
	list = append(list, c.Comm.validate()...)
	list = append(list, c.Voice.validate()...)
	if c.RemediationMaxRisk < 0 || c.RemediationMaxRisk > 2 {
		list = append(list, fmt.Errorf("remediation-max-risk %d: want 0, 1 or 2 (L3 never runs)", c.RemediationMaxRisk))
	}
	return errors.Join(list...)
}

// generatedSecrets is the embedded-mode secrets file.
type generatedSecrets struct {
	JWTSecret      string `json:"jwt_secret"`
	AuditKey       string `json:"audit_key"`
	VaultMasterKey string `json:"vault_master_key"`
}

// FillSecrets loads or creates <data-dir>/secrets.json for any secret that is unset, in embedded mode only.
// It reports whether it generated new ones.
func (c *Config) FillSecrets() (generated bool, err error) {
	if err := c.loadAuditKey(); err != nil {
		return false, err
	}
	if c.DatabaseURL != "" || (c.JWTSecret != "" && c.AuditKey != "" && c.VaultMasterKey != "") {
		return false, nil
	}
	path := filepath.Join(c.DataDir, "secrets.json")
	var s generatedSecrets
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := os.Chmod(path, 0o600); err != nil { // tighten a file an older version or a person made wider
			return false, err
		}
		if err := json.Unmarshal(b, &s); err != nil {
			return false, fmt.Errorf("read %s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
		s = generatedSecrets{JWTSecret: randomKey(), AuditKey: randomKey(), VaultMasterKey: randomKey()}
		if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
			return false, err
		}
		b, _ := json.MarshalIndent(s, "", "  ")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return false, fmt.Errorf("write %s: %w", path, err)
		}
		generated = true
	default:
		return false, err
	}
	c.JWTSecret = cmp.Or(c.JWTSecret, s.JWTSecret)
	if c.AuditKey == "" {
		c.AuditKey, c.AuditKeySource = s.AuditKey, path
	}
	c.VaultMasterKey = cmp.Or(c.VaultMasterKey, s.VaultMasterKey)
	return generated, nil
}

func randomKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
