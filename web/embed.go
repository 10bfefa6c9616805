// Package web is the console: TypeScript sources in src/, built by `make web` into dist/, which is
// committed and embedded so that `it0 serve` serves the console on a fresh clone with no npm step.
package web

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Dist is the built console: index.html at the root and content-hashed files under assets/.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path; fs.Sub fails only on an invalid one
	}
	return sub
}
