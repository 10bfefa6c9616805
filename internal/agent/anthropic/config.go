package anthropic

import (
	"log/slog"
	"net/http"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/vault"
)

// Defaults for Config fields left zero.
const (
	DefaultModel      = "claude-sonnet-5-5"
	DefaultBaseURL    = "https://api.anthropic.com/"
	DefaultMaxTokens  = 8192
	DefaultMaxTurns   = 25
	DefaultMaxRetries = 2
)

// APIKey is an API key. It is a vault.Secret: it redacts itself in logs, fmt and JSON; Reveal sends it.
type APIKey = vault.Secret

// Price is what a model costs, in USD per million tokens (agent.Price).
type Price = agent.Price

// DefaultPrices returns list prices by model family, used when Config.Prices is empty. Unknown models
// are priced like Sonnet.
func DefaultPrices() []Price {
	return []Price{
		{ModelPrefix: "", InputPerMTok: 3, OutputPerMTok: 15},
		{ModelPrefix: "claude-sonnet", InputPerMTok: 3, OutputPerMTok: 15},
		{ModelPrefix: "claude-haiku", InputPerMTok: 1, OutputPerMTok: 5},
		{ModelPrefix: "claude-opus", InputPerMTok: 5, OutputPerMTok: 25},
	}
}

// Config configures the engine.
type Config struct {
	// APIKey authenticates to the API (IT0_ANTHROPIC_API_KEY). Required.
	APIKey APIKey
	// Model is the model id (IT0_CLAUDE_MODEL). Default DefaultModel.
	Model string
	// BaseURL is the API's base URL (IT0_ANTHROPIC_BASE_URL), for gateways and tests. Default the
	// public API.
	BaseURL string
	// MaxTokens bounds each reply. Default 8192.
	MaxTokens int
	// ThinkingBudget enables extended thinking with this many tokens (below MaxTokens); 0 = off.
	ThinkingBudget int
	// MaxTurns bounds the model calls of one run when the task sets none. Default 25.
	MaxTurns int
	// MaxRetries is how often a request that failed with 429, 529 or 5xx is retried (with backoff that
	// honours retry-after). Default 2; negative = never.
	MaxRetries int
	// Prices are used for cost accounting and budgets. Default DefaultPrices().
	Prices []Price
	// HTTPClient sends the requests. Default: a client without a timeout (runs are bounded by ctx).
	HTTPClient *http.Client
	// Logger receives diagnostics. Default: discard.
	Logger *slog.Logger
}
