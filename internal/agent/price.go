package agent

import "strings"

// Price is what a model costs, in USD per million tokens.
type Price struct {
	// ModelPrefix selects the models the price applies to ("claude-opus" matches "claude-opus-5-5");
	// the longest matching prefix wins, and "" matches every model.
	ModelPrefix   string
	InputPerMTok  float64
	OutputPerMTok float64
}

// PriceFor returns the price in prices with the longest prefix of model (the zero Price if none).
func PriceFor(prices []Price, model string) Price {
	best, found := Price{}, false
	for _, p := range prices {
		if strings.HasPrefix(model, p.ModelPrefix) && (!found || len(p.ModelPrefix) > len(best.ModelPrefix)) {
			best, found = p, true
		}
	}
	return best
}
