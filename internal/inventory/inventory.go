// Package inventory owns servers, clusters and credentials, and runs commands on servers: through the guard,
// over SSH (directly or through chains of jump hosts), one at a time or fanned out over a selection.
package inventory

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/it0/it0/internal/errs"
)

// Allowed values of enumerated fields.
var (
	Environments   = []string{"dev", "staging", "prod"}
	Roles          = []string{"web", "db", "cache", "worker", "gateway", "other"}
	NetworkTypes   = []string{"public", "private"}
	ClusterTypes   = []string{"bare_metal", "k8s", "docker_swarm"}
	CredTypes      = []string{"ssh_key", "ssh_password", "token", "kubeconfig"}
	HostKeyPolicys = []string{"pin", "tofu"}
	ServerStatuses = []string{"active", "inactive", "maintenance", "unreachable"}
)

// Server is a machine IT0 can reach over SSH.
type Server struct {
	ID                 string            `json:"id"`
	TenantID           string            `json:"tenant_id"`
	Name               string            `json:"name"`
	Host               string            `json:"host"`
	Port               int               `json:"port"`
	Environment        string            `json:"environment"`
	Role               string            `json:"role"`
	ClusterID          string            `json:"cluster_id,omitempty"`
	SSHUser            string            `json:"ssh_user"`
	CredentialID       string            `json:"credential_id,omitempty"`
	NetworkType        string            `json:"network_type"`
	JumpServerID       string            `json:"jump_server_id,omitempty"`
	SSHOptions         map[string]string `json:"ssh_options,omitempty"`
	Tags               []string          `json:"tags"`
	Status             string            `json:"status"`
	Description        string            `json:"description,omitempty"`
	HostKeyPolicy      string            `json:"host_key_policy"`
	HostKey            string            `json:"host_key,omitempty"`
	HostKeyFingerprint string            `json:"host_key_fingerprint,omitempty"`
	CreatedAt          time.Time         `json:"created_at"`
	UpdatedAt          time.Time         `json:"updated_at"`
}

// Cluster groups servers (bare metal, Kubernetes, Docker Swarm). A kubeconfig is kept sealed.
type Cluster struct {
	ID            string    `json:"id"`
	TenantID      string    `json:"tenant_id"`
	Name          string    `json:"name"`
	Type          string    `json:"type"`
	Environment   string    `json:"environment"`
	Description   string    `json:"description,omitempty"`
	HasKubeconfig bool      `json:"has_kubeconfig"`
	Kubeconfig    []byte    `json:"-"` // sealed
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Credential is a secret used to reach servers or clusters. Its value is write-only: only its sealed form
// is stored, and the API shows only what describes it.
type Credential struct {
	ID          string    `json:"id"`
	TenantID    string    `json:"tenant_id"`
	Name        string    `json:"name"`
	Type        string    `json:"type"`
	Username    string    `json:"username,omitempty"`
	KeyType     string    `json:"key_type,omitempty"`
	Bits        int       `json:"bits,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	PublicKey   string    `json:"public_key,omitempty"`
	Encrypted   bool      `json:"encrypted"`
	Sealed      []byte    `json:"-"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// CommandRecord is one command run (or refused) on one server.
type CommandRecord struct {
	ID         string    `json:"id"`
	TenantID   string    `json:"tenant_id"`
	SessionID  string    `json:"session_id,omitempty"`
	ServerID   string    `json:"server_id"`
	ServerName string    `json:"server_name"`
	Command    string    `json:"command"`
	RiskLevel  int       `json:"risk_level"`
	Status     string    `json:"status"`
	ExitCode   *int      `json:"exit_code,omitempty"`
	Stdout     string    `json:"stdout"`
	Stderr     string    `json:"stderr"`
	Truncated  bool      `json:"truncated"`
	DurationMS int64     `json:"duration_ms"`
	ActorType  string    `json:"actor_type"`
	ActorID    string    `json:"actor_id"`
	Reason     string    `json:"reason,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// Selector chooses servers. Fields combine with AND; an empty selector chooses nothing unless All is set.
type Selector struct {
	ServerIDs   []string `json:"server_ids,omitempty"`
	Names       []string `json:"names,omitempty"`
	Environment string   `json:"environment,omitempty"`
	Role        string   `json:"role,omitempty"`
	ClusterID   string   `json:"cluster_id,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	All         bool     `json:"all,omitempty"`
}

// Empty reports whether s chooses nothing.
func (s Selector) Empty() bool {
	return !s.All && len(s.ServerIDs) == 0 && len(s.Names) == 0 && s.Environment == "" && s.Role == "" &&
		s.ClusterID == "" && len(s.Tags) == 0
}

// Match reports whether srv is chosen by s.
func (s Selector) Match(srv *Server) bool {
	if s.Empty() {
		return false
	}
	if len(s.ServerIDs) > 0 && !slices.Contains(s.ServerIDs, srv.ID) {
		return false
	}
	if len(s.Names) > 0 && !slices.Contains(s.Names, srv.Name) {
		return false
	}
	if s.Environment != "" && srv.Environment != s.Environment {
		return false
	}
	if s.Role != "" && srv.Role != s.Role {
		return false
	}
	if s.ClusterID != "" && srv.ClusterID != s.ClusterID {
		return false
	}
	for _, t := range s.Tags {
		if !slices.Contains(srv.Tags, t) {
			return false
		}
	}
	return true
}

// Store is what inventory needs from storage. Every method acts on the tenant in ctx.
type Store interface {
	ServerCreate(ctx context.Context, s *Server, maxServers int) error // errs.QuotaExceeded, errs.Conflict (name)
	ServerGet(ctx context.Context, id string) (*Server, error)         // errs.NotFound
	ServerList(ctx context.Context) ([]Server, error)
	ServerUpdate(ctx context.Context, s *Server) error // errs.NotFound, errs.Conflict (name)
	ServerDelete(ctx context.Context, id string) error // errs.NotFound, errs.Conflict (a jump host in use)
	ServerSetHostKey(ctx context.Context, id, key, fingerprint string) error
	ClusterCreate(ctx context.Context, c *Cluster) error         // errs.Conflict (name)
	ClusterGet(ctx context.Context, id string) (*Cluster, error) // errs.NotFound
	ClusterList(ctx context.Context) ([]Cluster, error)
	ClusterUpdate(ctx context.Context, c *Cluster) error
	ClusterDelete(ctx context.Context, id string) error                // errs.Conflict (servers in it)
	CredentialCreate(ctx context.Context, c *Credential) error         // errs.Conflict (name)
	CredentialGet(ctx context.Context, id string) (*Credential, error) // errs.NotFound
	CredentialList(ctx context.Context) ([]Credential, error)
	CredentialDelete(ctx context.Context, id string) error // errs.Conflict (servers use it)
	CommandRecordCreate(ctx context.Context, r *CommandRecord) error
	CommandRecordList(ctx context.Context, serverID, sessionID string, limit int) ([]CommandRecord, error)
}

var (
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)
	tagPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/=-]{0,63}$`)
	userPattern = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}$`)
	hostPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$`)
)

func oneOf(field, v string, allowed []string) error {
	if !slices.Contains(allowed, v) {
		return errs.Invalidf(field, "%s %q is not one of %s", field, v, strings.Join(allowed, ", "))
	}
	return nil
}

// Validate fills defaults and checks s, returning every problem at once.
func (s *Server) Validate() error {
	var list []error
	if !namePattern.MatchString(s.Name) {
		list = append(list, errs.Invalidf("name", "name %q must be 1 to 100 letters, digits, dots, dashes or underscores", s.Name))
	}
	if net.ParseIP(s.Host) == nil && !hostPattern.MatchString(s.Host) {
		list = append(list, errs.Invalidf("host", "host %q is not an IP address or host name", s.Host))
	}
	if s.Port == 0 {
		s.Port = 22
	}
	if s.Port < 1 || s.Port > 65535 {
		list = append(list, errs.Invalidf("port", "port %d must be from 1 to 65535", s.Port))
	}
	if s.Environment == "" {
		s.Environment = "prod"
	}
	if s.Role == "" {
		s.Role = "other"
	}
	if s.NetworkType == "" {
		s.NetworkType = "private"
	}
	if s.Status == "" {
		s.Status = "active"
	}
	if s.HostKeyPolicy == "" {
		s.HostKeyPolicy = "pin"
	}
	if s.SSHUser == "" {
		s.SSHUser = "root"
	}
	list = append(list, oneOf("environment", s.Environment, Environments), oneOf("role", s.Role, Roles),
		oneOf("network_type", s.NetworkType, NetworkTypes), oneOf("status", s.Status, ServerStatuses),
		oneOf("host_key_policy", s.HostKeyPolicy, HostKeyPolicys))
	if !userPattern.MatchString(s.SSHUser) {
		list = append(list, errs.Invalidf("ssh_user", "ssh_user %q is not a valid login name", s.SSHUser))
	}
	if len(s.Tags) > 50 {
		list = append(list, errs.Invalidf("tags", "at most 50 tags"))
	}
	for _, t := range s.Tags {
		if !tagPattern.MatchString(t) {
			list = append(list, errs.Invalidf("tags", "tag %q must be 1 to 64 letters, digits or ._:/=-", t))
		}
	}
	if s.Tags == nil {
		s.Tags = []string{}
	}
	if len(s.Description) > 2000 {
		list = append(list, errs.Invalidf("description", "description is longer than 2000 characters"))
	}
	if s.JumpServerID != "" && s.JumpServerID == s.ID {
		list = append(list, errs.Invalidf("jump_server_id", "a server cannot be its own jump host"))
	}
	for k, v := range s.SSHOptions {
		if len(k) > 64 || len(v) > 256 {
			list = append(list, errs.Invalidf("ssh_options", "ssh_options entries are limited to 64-character keys and 256-character values"))
			break
		}
	}
	return errs.Join(list...)
}

// Validate fills defaults and checks c.
func (c *Cluster) Validate() error {
	var list []error
	if !namePattern.MatchString(c.Name) {
		list = append(list, errs.Invalidf("name", "name %q must be 1 to 100 letters, digits, dots, dashes or underscores", c.Name))
	}
	if c.Type == "" {
		c.Type = "bare_metal"
	}
	if c.Environment == "" {
		c.Environment = "prod"
	}
	list = append(list, oneOf("type", c.Type, ClusterTypes), oneOf("environment", c.Environment, Environments))
	return errs.Join(list...)
}

// hopID names a server for the SSH executor: tenant and server, so that callbacks from the executor (which
// carry only this id) know whose server they concern.
func hopID(tenantID, serverID string) string { return tenantID + "/" + serverID }

func splitHopID(id string) (tenantID, serverID string, err error) {
	t, s, ok := strings.Cut(id, "/")
	if !ok {
		return "", "", fmt.Errorf("bad hop id %q", id)
	}
	return t, s, nil
}
