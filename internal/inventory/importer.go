package inventory

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/it0/it0/internal/errs"
)

// ImportEntry is one server to import: a server's writable fields, with the jump host and credential
// possibly named rather than given by id.
type ImportEntry struct {
	Name          string            `json:"name" yaml:"name"`
	Host          string            `json:"host" yaml:"host"`
	Port          int               `json:"port,omitempty" yaml:"port"`
	Environment   string            `json:"environment,omitempty" yaml:"environment"`
	Role          string            `json:"role,omitempty" yaml:"role"`
	SSHUser       string            `json:"ssh_user,omitempty" yaml:"ssh_user"`
	CredentialID  string            `json:"credential_id,omitempty" yaml:"credential_id"`
	Credential    string            `json:"credential,omitempty" yaml:"credential"` // a credential name
	IdentityFile  string            `json:"identity_file,omitempty" yaml:"identity_file"`
	NetworkType   string            `json:"network_type,omitempty" yaml:"network_type"`
	JumpServer    string            `json:"jump_server,omitempty" yaml:"jump_server"` // a server name
	ClusterID     string            `json:"cluster_id,omitempty" yaml:"cluster_id"`
	Tags          []string          `json:"tags,omitempty" yaml:"tags"`
	Description   string            `json:"description,omitempty" yaml:"description"`
	HostKeyPolicy string            `json:"host_key_policy,omitempty" yaml:"host_key_policy"`
	HostKey       string            `json:"host_key,omitempty" yaml:"host_key"`
	SSHOptions    map[string]string `json:"ssh_options,omitempty" yaml:"ssh_options"`
}

// ParseImport reads servers from content in format yaml, json (a list, or an object with "servers") or
// ssh_config (OpenSSH client config: Host, HostName, User, Port, ProxyJump, IdentityFile).
func ParseImport(format, content string) ([]ImportEntry, error) {
	if len(content) > 4<<20 {
		return nil, errs.Invalidf("content", "content is larger than 4 MiB")
	}
	switch format {
	case "ssh_config":
		return parseSSHConfig(content)
	case "json", "yaml":
		var list []ImportEntry
		var wrapped struct {
			Servers []ImportEntry `json:"servers" yaml:"servers"`
		}
		var err error
		if format == "json" {
			if err = json.Unmarshal([]byte(content), &list); err != nil {
				err = json.Unmarshal([]byte(content), &wrapped)
				list = wrapped.Servers
			}
		} else {
			if err = unmarshalYAML(content, &list); err != nil {
				err = unmarshalYAML(content, &wrapped)
				list = wrapped.Servers
			}
		}
		if err != nil {
			return nil, errs.Invalidf("content", "content is not a %s list of servers (or an object with \"servers\"): %v", format, firstLine(err.Error()))
		}
		return list, nil
	}
	return nil, errs.Invalidf("format", "format %q is not one of yaml, json, ssh_config", format)
}

// unmarshalYAML decodes untrusted YAML. The decoder panics on some malformed input (found by
// FuzzParseImport), so a panic becomes an error here.
func unmarshalYAML(content string, v any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed YAML")
		}
	}()
	return yaml.Unmarshal([]byte(content), v)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

type sshBlock struct {
	patterns []string
	opts     map[string]string // lower-cased keyword → first value
}

// parseSSHConfig turns each concrete Host alias into an entry, taking for each keyword the first value
// from the blocks that match it, in file order, as ssh(1) does. Wildcard-only blocks only supply defaults.
func parseSSHConfig(content string) ([]ImportEntry, error) {
	var blocks []*sshBlock
	var cur *sshBlock
	global := &sshBlock{patterns: []string{"*"}, opts: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(content))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, val, ok := strings.Cut(text, " ")
		if k, v, eq := strings.Cut(text, "="); eq && (!ok || len(k) < len(key)) {
			key, val, ok = k, v, true
		}
		if !ok {
			key, val, _ = strings.Cut(text, "\t")
		}
		key, val = strings.ToLower(strings.TrimSpace(key)), strings.Trim(strings.TrimSpace(val), `"`)
		if val == "" {
			return nil, errs.Invalidf("content", "ssh_config line %d: %q has no value", line, key)
		}
		switch key {
		case "host":
			cur = &sshBlock{patterns: strings.Fields(val), opts: map[string]string{}}
			blocks = append(blocks, cur)
		case "match":
			return nil, errs.Invalidf("content", "ssh_config line %d: Match blocks are not supported; use Host blocks", line)
		default:
			b := cur
			if b == nil {
				b = global
			}
			if _, seen := b.opts[key]; !seen {
				b.opts[key] = val
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, errs.Invalidf("content", "read ssh_config: %v", err)
	}
	blocks = append([]*sshBlock{global}, blocks...)
	var out []ImportEntry
	seen := map[string]bool{}
	for _, b := range blocks[1:] {
		for _, alias := range b.patterns {
			if strings.ContainsAny(alias, "*?!") || seen[alias] {
				continue
			}
			seen[alias] = true
			opt := func(k string) string {
				for _, bb := range blocks {
					if matches(bb.patterns, alias) {
						if v, ok := bb.opts[k]; ok {
							return v
						}
					}
				}
				return ""
			}
			e := ImportEntry{Name: alias, Host: opt("hostname"), SSHUser: opt("user"), IdentityFile: opt("identityfile")}
			if e.Host == "" {
				e.Host = alias
			}
			if p := opt("port"); p != "" {
				n, err := strconv.Atoi(p)
				if err != nil {
					return nil, errs.Invalidf("content", "ssh_config Host %s: Port %q is not a number", alias, p)
				}
				e.Port = n
			}
			if j := opt("proxyjump"); j != "" && !strings.EqualFold(j, "none") {
				// A ProxyJump list means jump through each in turn; the last is the nearest to the target.
				hops := strings.Split(j, ",")
				last := strings.TrimSpace(hops[len(hops)-1])
				if len(hops) > 1 || strings.ContainsAny(last, "@:") {
					return nil, errs.Invalidf("content", "ssh_config Host %s: ProxyJump %q must name one Host alias of this file (chain them through their own ProxyJump)", alias, j)
				}
				e.JumpServer = last
			}
			out = append(out, e)
		}
	}
	return out, nil
}

func matches(patterns []string, alias string) bool {
	ok := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		if m, _ := path.Match(strings.TrimPrefix(p, "!"), alias); m {
			if neg {
				return false
			}
			ok = true
		}
	}
	return ok
}

// ImportRequest is a bulk import.
type ImportRequest struct {
	Format, Content string
	// CredentialID is used for entries that name none.
	CredentialID string
	// Environment is used for entries that name none.
	Environment string
	// Identities maps an ssh_config IdentityFile path to the credential uploaded for it (by the CLI).
	Identities map[string]string
	DryRun     bool
}

// ImportResult reports what an import did, entry by entry.
type ImportResult struct {
	Created []string      `json:"created"`
	Updated []string      `json:"updated"`
	Errors  []ImportError `json:"errors"`
	DryRun  bool          `json:"dry_run"`
}

// ImportError is why one entry was not imported.
type ImportError struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

// Import creates or updates (matched by name) the servers in req, jump hosts before the servers behind
// them. Entries that fail are reported and do not stop the others.
func (s *Service) Import(ctx context.Context, req ImportRequest) (*ImportResult, error) {
	entries, err := ParseImport(req.Format, req.Content)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, errs.Invalidf("content", "no servers found in the %s content", req.Format)
	}
	creds, err := s.store.CredentialList(ctx)
	if err != nil {
		return nil, err
	}
	credByName := map[string]string{}
	for _, c := range creds {
		credByName[c.Name] = c.ID
	}
	res := &ImportResult{Created: []string{}, Updated: []string{}, Errors: []ImportError{}, DryRun: req.DryRun}
	done := map[string]bool{}
	byName := map[string]*ImportEntry{}
	for i := range entries {
		byName[entries[i].Name] = &entries[i]
	}
	var visit func(e *ImportEntry, depth int) error
	visit = func(e *ImportEntry, depth int) error {
		if done[e.Name] {
			return nil
		}
		if depth > s.cfg.MaxJumpDepth+1 {
			return fmt.Errorf("jump chain through %s is too deep or has a cycle", e.Name)
		}
		if j, ok := byName[e.JumpServer]; ok && e.JumpServer != "" {
			if err := visit(j, depth+1); err != nil {
				return err
			}
		}
		done[e.Name] = true
		created, err := s.importOne(ctx, e, req, credByName)
		switch {
		case err != nil:
			res.Errors = append(res.Errors, ImportError{Name: e.Name, Message: err.Error()})
		case created:
			res.Created = append(res.Created, e.Name)
		default:
			res.Updated = append(res.Updated, e.Name)
		}
		return nil
	}
	for i := range entries {
		if err := visit(&entries[i], 0); err != nil {
			res.Errors = append(res.Errors, ImportError{Name: entries[i].Name, Message: err.Error()})
		}
	}
	return res, nil
}

func (s *Service) importOne(ctx context.Context, e *ImportEntry, req ImportRequest, credByName map[string]string) (created bool, err error) {
	all, err := s.store.ServerList(ctx)
	if err != nil {
		return false, err
	}
	idx := slices.IndexFunc(all, func(x Server) bool { return x.Name == e.Name })
	srv := &Server{}
	if idx >= 0 {
		srv = &all[idx]
	}
	srv.Name, srv.Host = e.Name, e.Host
	fill := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	if e.Port != 0 {
		srv.Port = e.Port
	}
	fill(&srv.Environment, e.Environment)
	fill(&srv.Environment, req.Environment)
	fill(&srv.Role, e.Role)
	fill(&srv.SSHUser, e.SSHUser)
	fill(&srv.NetworkType, e.NetworkType)
	fill(&srv.ClusterID, e.ClusterID)
	fill(&srv.Description, e.Description)
	fill(&srv.HostKeyPolicy, e.HostKeyPolicy)
	fill(&srv.HostKey, e.HostKey)
	if e.Tags != nil {
		srv.Tags = e.Tags
	}
	if e.SSHOptions != nil {
		srv.SSHOptions = e.SSHOptions
	}
	switch {
	case e.CredentialID != "":
		srv.CredentialID = e.CredentialID
	case e.Credential != "":
		id, ok := credByName[e.Credential]
		if !ok {
			return false, fmt.Errorf("credential %q does not exist", e.Credential)
		}
		srv.CredentialID = id
	case e.IdentityFile != "" && req.Identities[e.IdentityFile] != "":
		srv.CredentialID = req.Identities[e.IdentityFile]
	case srv.CredentialID == "":
		srv.CredentialID = req.CredentialID
	}
	if e.JumpServer != "" {
		j := slices.IndexFunc(all, func(x Server) bool { return x.Name == e.JumpServer })
		if j < 0 {
			if req.DryRun {
				srv.JumpServerID = ""
			} else {
				return false, fmt.Errorf("jump host %q is neither in the import nor in the inventory", e.JumpServer)
			}
		} else {
			srv.JumpServerID = all[j].ID
		}
	}
	if req.DryRun {
		c := *srv
		if err := c.Validate(); err != nil {
			return false, err
		}
		return idx < 0, nil
	}
	if idx >= 0 {
		return false, s.UpdateServer(ctx, srv)
	}
	return true, s.CreateServer(ctx, srv)
}
