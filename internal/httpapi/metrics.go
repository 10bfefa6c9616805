package httpapi

import "strings"

// routeLabel is the route label of a request's metrics: the mux pattern without its method (the method is
// a label of its own), "unmatched" when no pattern took the request and "api_fallback" for unknown API paths,
// so that scanners cannot grow the label set.
func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if pattern == apiFallbackPattern {
		return "api_fallback"
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		return path
	}
	return pattern
}
