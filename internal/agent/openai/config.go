package openai

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/vault"
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

// APIKey is an API key. It is a vault.Secret: it redacts itself in logs, fmt and JSON; Reveal sends it.
type APIKey = vault.Secret

// Price is what a model costs, in USD per million tokens (agent.Price).
type Price = agent.Price

// DefaultPrices returns the prices used when Config.Prices is empty: zero, because the usual servers
// behind this engine (Ollama, vLLM) are self-hosted. Configure prices for paid APIs so that budgets
// work.
func DefaultPrices() []Price {
	return []Price{{ModelPrefix: ""}}
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
