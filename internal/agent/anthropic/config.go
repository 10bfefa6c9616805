package anthropic

import (
	"log/slog"
	"net/http"
	"strings"
)

// Defaults for Config fields left zero.
const (
	DefaultModel      = "claude-sonnet-5-5"
	DefaultBaseURL    = "https://api.anthropic.com/"
	DefaultMaxTokens  = 8192
	DefaultMaxTurns   = 25
	DefaultMaxRetries = 2
)

// APIKey is an Anthropic API key. It redacts itself in logs, fmt and JSON; use Reveal to send it.
type APIKey string

const redacted = "[REDACTED]"

// Reveal returns the key itself.
func (k APIKey) Reveal() string { return string(k) }

// String redacts the key.
func (k APIKey) String() string {
	if k == "" {
		return ""
	}
	return redacted
}

// GoString redacts the key under %#v.
func (k APIKey) GoString() string { return k.String() }

// LogValue redacts the key in slog output.
func (k APIKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON redacts the key.
func (k APIKey) MarshalJSON() ([]byte, error) { return []byte(`"` + k.String() + `"`), nil }

// Price is what a model costs, in USD per million tokens. Cache writes are billed at 1.25 times the
// input price and cache reads at a tenth of it.
type Price struct {
	// ModelPrefix selects the models the price applies to ("claude-opus" matches "claude-opus-5-5");
	// the longest matching prefix wins, and "" matches every model.
	ModelPrefix   string
	InputPerMTok  float64
	OutputPerMTok float64
}

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

// priceFor returns the price of model from prices: the longest matching prefix.
func priceFor(prices []Price, model string) Price {
	best, found := Price{}, false
	for _, p := range prices {
		if strings.HasPrefix(model, p.ModelPrefix) && (!found || len(p.ModelPrefix) > len(best.ModelPrefix)) {
			best, found = p, true
		}
	}
	return best
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
