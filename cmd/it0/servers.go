package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/it0/it0/internal/inventory"
)

// runServers implements `it0 servers import [flags] FILE`.
func runServers(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "import" {
		return usageError{"usage: it0 servers import [--format yaml|json|ssh_config] [--credential ID] [--env E] [--dry-run] FILE"}
	}
	fs := flag.NewFlagSet("it0 servers import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var format, cred, env string
	var dry bool
	fs.StringVar(&format, "format", "", "yaml, json or ssh_config (default: from the file name)")
	fs.StringVar(&cred, "credential", "", "credential id for servers that name none")
	fs.StringVar(&env, "env", "", "environment for servers that name none")
	fs.BoolVar(&dry, "dry-run", false, "validate only; change nothing")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err.Error()}
	}
	if fs.NArg() != 1 {
		return usageError{"give exactly one FILE to import"}
	}
	path := fs.Arg(0)
	content, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if format == "" {
		format = formatOf(path)
	}
	c, err := newAPIClient(getenv)
	if err != nil {
		return err
	}
	body := map[string]any{"format": format, "content": string(content), "credential_id": cred, "environment": env, "dry_run": dry}
	if format == "ssh_config" && !dry {
		ids, err := uploadIdentities(ctx, c, string(content), stderr)
		if err != nil {
			return err
		}
		body["identities"] = ids
	}
	var res inventory.ImportResult
	if err := c.call(ctx, "POST", "/api/v1/inventory/servers/import", body, &res); err != nil {
		return err
	}
	verb := "created"
	if dry {
		verb = "would create"
	}
	fmt.Fprintf(stdout, "%s %d, updated %d, failed %d\n", verb, len(res.Created), len(res.Updated), len(res.Errors))
	for _, n := range res.Created {
		fmt.Fprintf(stdout, "  + %s\n", n)
	}
	for _, n := range res.Updated {
		fmt.Fprintf(stdout, "  ~ %s\n", n)
	}
	for _, e := range res.Errors {
		fmt.Fprintf(stdout, "  ! %s: %s\n", e.Name, e.Message)
	}
	if len(res.Errors) > 0 {
		return exitWithCode{code: 1, err: fmt.Errorf("%d servers were not imported", len(res.Errors))}
	}
	return nil
}

func formatOf(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return "yaml"
	case ".json":
		return "json"
	}
	return "ssh_config"
}

var identityFile = regexp.MustCompile(`(?im)^\s*IdentityFile[\s=]+"?([^"\r\n]+?)"?\s*$`)

// uploadIdentities uploads each private key an ssh_config names (read here, on the admin's machine) as an
// ssh_key credential, reusing one of the same name, and returns IdentityFile → credential id. Keys never
// touch the server's disk: they travel once over the API and are sealed by the vault.
func uploadIdentities(ctx context.Context, c *apiClient, config string, stderr io.Writer) (map[string]string, error) {
	var existing struct {
		Items []inventory.Credential `json:"items"`
	}
	if err := c.call(ctx, "GET", "/api/v1/inventory/credentials", nil, &existing); err != nil {
		return nil, err
	}
	byName := map[string]string{}
	for _, cr := range existing.Items {
		byName[cr.Name] = cr.ID
	}
	out := map[string]string{}
	for _, m := range identityFile.FindAllStringSubmatch(config, -1) {
		file := m[1]
		if _, done := out[file]; done {
			continue
		}
		path := file
		if rest, ok := strings.CutPrefix(path, "~/"); ok {
			home, _ := os.UserHomeDir()
			path = filepath.Join(home, rest)
		}
		name := "ssh-" + strings.Trim(regexp.MustCompile(`[^A-Za-z0-9._-]+`).ReplaceAllString(filepath.Base(path), "-"), "-")
		if id, ok := byName[name]; ok {
			out[file] = id
			continue
		}
		key, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "warning: IdentityFile %s: %v (servers using it get --credential)\n", file, err)
			continue
		}
		var cred inventory.Credential
		if err := c.call(ctx, "POST", "/api/v1/inventory/credentials", map[string]string{"name": name, "type": "ssh_key",
			"secret": string(key)}, &cred); err != nil {
			return nil, fmt.Errorf("upload %s: %w", file, err)
		}
		fmt.Fprintf(stderr, "uploaded %s as credential %s (%s)\n", file, name, cred.Fingerprint)
		out[file], byName[name] = cred.ID, cred.ID
	}
	return out, nil
}
