package openai

import (
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxTurns       = 25
	DefaultMaxRetries     = 2
	DefaultRetryBaseDelay = 500 * time.Millisecond
	maxRetryDelay         = 30 * time.Second
	// DefaultMaxEventBytes caps one SSE line; a bigger one fails the request as a bad response.
	DefaultMaxEventBytes = 8 << 20
)

// APIKey is an API key for an OpenAI-compatible server. It redacts itself in logs, fmt and JSON; use
// Reveal to send it.
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

// Price is what a model costs, in USD per million tokens.
type Price struct {
	// ModelPrefix selects the models the price applies to; the longest matching prefix wins and ""
	// matches every model.
	ModelPrefix   string
	InputPerMTok  float64
	OutputPerMTok float64
}

// DefaultPrices returns the prices used when Config.Prices is empty: zero, because the usual servers
// behind this engine (Ollama, vLLM) are self-hosted. Configure prices for paid APIs so that budgets
// work.
func DefaultPrices() []Price {
	return []Price{{ModelPrefix: ""}}
}

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
	// BaseURL is the server's API root including its version path (IT0_OPENAI_BASE_URL), e.g.
	// "http://127.0.0.1:11434/v1" for Ollama or "https://api.deepseek.com/v1"; requests go to
	// BaseURL + "/chat/completions". Required.
	BaseURL string
	// APIKey is sent as a bearer token (IT0_OPENAI_API_KEY); local servers often need none.
	APIKey APIKey
	// Model is the model name (IT0_OPENAI_MODEL). Required.
	Model string
	// MaxTokens bounds each reply (max_tokens); 0 leaves it to the server.
	MaxTokens int
	// MaxTurns bounds the model calls of one run when the task sets none. Default 25.
	MaxTurns int
	// MaxRetries is how often a request that failed with 429, 5xx or a network error is retried.
	// Default 2; negative = never.
	MaxRetries int
	// RetryBaseDelay is the first backoff step when the server sends no Retry-After. Default 500ms.
	RetryBaseDelay time.Duration
	// MaxEventBytes caps one line of the event stream. Default 8 MiB.
	MaxEventBytes int
	// Prices are used for cost accounting and budgets. Default DefaultPrices().
	Prices []Price
	// HTTPClient sends the requests. Default: a client without a timeout (runs are bounded by ctx).
	HTTPClient *http.Client
	// Logger receives diagnostics. Default: discard.
	Logger *slog.Logger
}
