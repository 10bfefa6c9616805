package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/inventory/sshexec"
	"github.com/it0/it0/internal/tenant"
	"github.com/it0/it0/internal/vault"
)

// Vault seals and opens credential values.
type Vault interface {
	Seal(ctx context.Context, plaintext []byte, aad string) (vault.Sealed, error)
	Open(ctx context.Context, s vault.Sealed, aad string) ([]byte, error)
}

// AuditLog records what inventory does.
type AuditLog interface {
	Record(ctx context.Context, r audit.Record) (*audit.Entry, error)
}

// Quotas tells how many servers the tenant in ctx may have.
type Quotas interface {
	MaxServers(ctx context.Context) (int, error)
}

// Classifier is the command guard.
type Classifier interface {
	Classify(ctx context.Context, command string) guard.Verdict
	// ClassifyTargets also weighs the servers the command runs on (blast radius).
	ClassifyTargets(ctx context.Context, command string, targets []guard.Target) guard.Verdict
}

// Runner runs commands over SSH.
type Runner interface {
	FanOut(ctx context.Context, targets []sshexec.Target, cmd sshexec.Command, parallelism int, onResult func(i int, r sshexec.Result, err error))
	Check(ctx context.Context, t sshexec.Target) []sshexec.HopResult
}

// Config tunes the service.
type Config struct {
	// MaxJumpDepth bounds jump chains (jump hosts before the target). Default 4.
	MaxJumpDepth int
	// DefaultTimeout and MaxTimeout bound one command. Defaults 60 s and 1 h.
	DefaultTimeout, MaxTimeout time.Duration
	// DefaultParallelism is the fan-out width. Default 50.
	DefaultParallelism int
	// ExcerptBytes bounds the output kept in command records and audit details. Default 4 KiB.
	ExcerptBytes int
	Now          func() time.Time
	Logger       *slog.Logger
}

// Service is the inventory.
type Service struct {
	cfg    Config
	store  Store
	vault  Vault
	audit  AuditLog
	quotas Quotas
	guard  Classifier
	ssh    Runner
	log    *slog.Logger
}

// New returns a Service. Wire OnHostKeyLearned and OnHostKeyMismatch of the SSH executor to the service's
// methods of the same names.
func New(cfg Config, store Store, v Vault, log AuditLog, q Quotas, g Classifier, r Runner) *Service {
	if cfg.MaxJumpDepth <= 0 {
		cfg.MaxJumpDepth = 4
	}
	if cfg.DefaultTimeout <= 0 {
		cfg.DefaultTimeout = time.Minute
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = time.Hour
	}
	if cfg.DefaultParallelism <= 0 {
		cfg.DefaultParallelism = 50
	}
	if cfg.ExcerptBytes <= 0 {
		cfg.ExcerptBytes = 4096
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Now().UTC() }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, store: store, vault: v, audit: log, quotas: q, guard: g, ssh: r,
		log: cfg.Logger.With(slog.String("component", "inventory"))}
}

func (s *Service) now() time.Time { return s.cfg.Now().Truncate(time.Microsecond) }

// checkRefs makes sure the credential, cluster and jump host a server names exist in this tenant, and that
// the jump chain has no cycle and is not too deep.
func (s *Service) checkRefs(ctx context.Context, srv *Server) error {
	var list []error
	if srv.CredentialID != "" {
		if _, err := s.store.CredentialGet(ctx, srv.CredentialID); err != nil {
			list = append(list, errs.Invalidf("credential_id", "credential %q does not exist", srv.CredentialID))
		}
	}
	if srv.ClusterID != "" {
		if _, err := s.store.ClusterGet(ctx, srv.ClusterID); err != nil {
			list = append(list, errs.Invalidf("cluster_id", "cluster %q does not exist", srv.ClusterID))
		}
	}
	if srv.JumpServerID != "" {
		all, err := s.serverMap(ctx)
		if err != nil {
			return err
		}
		all[srv.ID] = srv
		if _, err := s.chain(all, srv.ID); err != nil {
			list = append(list, err)
		}
	}
	return errs.Join(list...)
}

func (s *Service) serverMap(ctx context.Context) (map[string]*Server, error) {
	list, err := s.store.ServerList(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]*Server, len(list))
	for i := range list {
		m[list[i].ID] = &list[i]
	}
	return m, nil
}

// chain returns the servers from the outermost jump host to id, detecting cycles and over-deep chains.
func (s *Service) chain(all map[string]*Server, id string) ([]*Server, error) {
	var out []*Server
	seen := map[string]bool{}
	for cur := id; cur != ""; {
		srv, ok := all[cur]
		if !ok {
			return nil, errs.Invalidf("jump_server_id", "jump host %q does not exist", cur)
		}
		if seen[cur] {
			names := make([]string, 0, len(out)+1)
			for i := len(out) - 1; i >= 0; i-- {
				names = append(names, out[i].Name)
			}
			return nil, errs.Invalidf("jump_server_id", "jump chain has a cycle: %s → %s", strings.Join(names, " → "), srv.Name)
		}
		seen[cur] = true
		out = append(out, srv)
		if len(out) > s.cfg.MaxJumpDepth+1 {
			return nil, errs.Invalidf("jump_server_id", "jump chain of %s is deeper than %d hops", all[id].Name, s.cfg.MaxJumpDepth)
		}
		cur = srv.JumpServerID
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// CreateServer validates and stores srv in the tenant in ctx, within its max_servers quota.
func (s *Service) CreateServer(ctx context.Context, srv *Server) error {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return err
	}
	srv.ID, srv.TenantID = uuid.NewString(), tid
	if err := srv.Validate(); err != nil {
		return err
	}
	if err := s.normaliseHostKey(srv); err != nil {
		return err
	}
	if err := s.checkRefs(ctx, srv); err != nil {
		return err
	}
	max, err := s.quotas.MaxServers(ctx)
	if err != nil {
		return err
	}
	srv.CreatedAt, srv.UpdatedAt = s.now(), s.now()
	if err := s.store.ServerCreate(ctx, srv, max); err != nil {
		return err
	}
	_, err = s.audit.Record(ctx, audit.Record{Action: "server.created", ResourceType: "server", ResourceID: srv.ID,
		Description: "server " + srv.Name + " (" + srv.Host + ") added", Detail: map[string]any{"environment": srv.Environment, "role": srv.Role}})
	return err
}

func (s *Service) normaliseHostKey(srv *Server) error {
	if srv.HostKey == "" {
		srv.HostKeyFingerprint = ""
		return nil
	}
	key, fp, err := sshexec.ParseHostKey(srv.HostKey)
	if err != nil {
		return errs.Invalidf("host_key", "host_key is not a public key in authorized_keys format (e.g. \"ssh-ed25519 AAAA…\")")
	}
	srv.HostKey, srv.HostKeyFingerprint = key, fp
	return nil
}

// Server returns server id.
func (s *Service) Server(ctx context.Context, id string) (*Server, error) {
	return s.store.ServerGet(ctx, id)
}

// Servers returns the servers sel chooses, or all servers when sel is empty.
func (s *Service) Servers(ctx context.Context, sel Selector) ([]Server, error) {
	list, err := s.store.ServerList(ctx)
	if err != nil || sel.Empty() {
		return list, err
	}
	out := list[:0]
	for i := range list {
		if sel.Match(&list[i]) {
			out = append(out, list[i])
		}
	}
	return out, nil
}

// UpdateServer saves srv (all fields replaced by the caller's merged copy) and audits the change.
func (s *Service) UpdateServer(ctx context.Context, srv *Server) error {
	old, err := s.store.ServerGet(ctx, srv.ID)
	if err != nil {
		return err
	}
	srv.TenantID, srv.CreatedAt = old.TenantID, old.CreatedAt
	if err := srv.Validate(); err != nil {
		return err
	}
	if err := s.normaliseHostKey(srv); err != nil {
		return err
	}
	if err := s.checkRefs(ctx, srv); err != nil {
		return err
	}
	srv.UpdatedAt = s.now()
	if err := s.store.ServerUpdate(ctx, srv); err != nil {
		return err
	}
	detail := map[string]any{}
	if old.HostKey != srv.HostKey {
		detail["host_key_fingerprint"] = map[string]string{"before": old.HostKeyFingerprint, "after": srv.HostKeyFingerprint}
	}
	if old.JumpServerID != srv.JumpServerID {
		detail["jump_server_id"] = map[string]string{"before": old.JumpServerID, "after": srv.JumpServerID}
	}
	if old.CredentialID != srv.CredentialID {
		detail["credential_id"] = map[string]string{"before": old.CredentialID, "after": srv.CredentialID}
	}
	_, err = s.audit.Record(ctx, audit.Record{Action: "server.updated", ResourceType: "server", ResourceID: srv.ID,
		Description: "server " + srv.Name + " updated", Detail: detail})
	return err
}

// DeleteServer removes server id unless it is a jump host of another server.
func (s *Service) DeleteServer(ctx context.Context, id string) error {
	x, err := s.store.ServerGet(ctx, id)
	if err != nil {
		return err
	}
	return s.deleteAudited(ctx, "server", id, x.Name, func() error { return s.store.ServerDelete(ctx, id) })
}

// CreateCluster stores c, sealing its kubeconfig when one is given.
func (s *Service) CreateCluster(ctx context.Context, c *Cluster, kubeconfig string) error {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return err
	}
	c.ID, c.TenantID = uuid.NewString(), tid
	if err := c.Validate(); err != nil {
		return err
	}
	if err := s.sealKubeconfig(ctx, c, kubeconfig); err != nil {
		return err
	}
	c.CreatedAt, c.UpdatedAt = s.now(), s.now()
	if err := s.store.ClusterCreate(ctx, c); err != nil {
		return err
	}
	_, err = s.audit.Record(ctx, audit.Record{Action: "cluster.created", ResourceType: "cluster", ResourceID: c.ID,
		Description: "cluster " + c.Name + " (" + c.Type + ") added"})
	return err
}

func (s *Service) sealKubeconfig(ctx context.Context, c *Cluster, kubeconfig string) error {
	if kubeconfig == "" {
		return nil
	}
	if err := validKubeconfig(kubeconfig); err != nil {
		return err
	}
	sealed, err := s.vault.Seal(ctx, []byte(kubeconfig), c.TenantID+"/cluster/"+c.ID)
	if err != nil {
		return fmt.Errorf("seal kubeconfig: %w", err)
	}
	c.Kubeconfig, c.HasKubeconfig = sealed.Marshal(), true
	return nil
}

func validKubeconfig(k string) error {
	if len(k) > 256<<10 || !strings.Contains(k, "clusters") || !strings.Contains(k, "apiVersion") {
		return errs.Invalidf("kubeconfig", "kubeconfig must be a kubeconfig YAML document (apiVersion, clusters, …) under 256 KiB")
	}
	return nil
}

// Cluster returns cluster id.
func (s *Service) Cluster(ctx context.Context, id string) (*Cluster, error) {
	return s.store.ClusterGet(ctx, id)
}

// Clusters lists clusters.
func (s *Service) Clusters(ctx context.Context) ([]Cluster, error) { return s.store.ClusterList(ctx) }

// UpdateCluster saves c; a non-empty kubeconfig replaces the sealed one.
func (s *Service) UpdateCluster(ctx context.Context, c *Cluster, kubeconfig string) error {
	old, err := s.store.ClusterGet(ctx, c.ID)
	if err != nil {
		return err
	}
	c.TenantID, c.CreatedAt, c.Kubeconfig, c.HasKubeconfig = old.TenantID, old.CreatedAt, old.Kubeconfig, old.HasKubeconfig
	if err := c.Validate(); err != nil {
		return err
	}
	if err := s.sealKubeconfig(ctx, c, kubeconfig); err != nil {
		return err
	}
	c.UpdatedAt = s.now()
	if err := s.store.ClusterUpdate(ctx, c); err != nil {
		return err
	}
	_, err = s.audit.Record(ctx, audit.Record{Action: "cluster.updated", ResourceType: "cluster", ResourceID: c.ID,
		Description: "cluster " + c.Name + " updated", Detail: map[string]any{"kubeconfig_replaced": kubeconfig != ""}})
	return err
}

// DeleteCluster removes cluster id unless servers are in it.
func (s *Service) DeleteCluster(ctx context.Context, id string) error {
	x, err := s.store.ClusterGet(ctx, id)
	if err != nil {
		return err
	}
	return s.deleteAudited(ctx, "cluster", id, x.Name, func() error { return s.store.ClusterDelete(ctx, id) })
}

// CredentialInput is a credential as a client sends it: the secret is write-only.
type CredentialInput struct {
	Name       string
	Type       string
	Username   string
	Secret     vault.Secret
	Passphrase vault.Secret
}

// sealedCredential is what the vault seals: the secret and its passphrase together.
type sealedCredential struct {
	Secret     string `json:"secret"`
	Passphrase string `json:"passphrase,omitempty"`
}

// CreateCredential validates in (parsing and fingerprinting SSH keys) and stores it sealed.
func (s *Service) CreateCredential(ctx context.Context, in CredentialInput) (*Credential, error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	c := &Credential{ID: uuid.NewString(), TenantID: tid, Name: in.Name, Type: in.Type, Username: in.Username}
	var list []error
	if !namePattern.MatchString(c.Name) {
		list = append(list, errs.Invalidf("name", "name %q must be 1 to 100 letters, digits, dots, dashes or underscores", c.Name))
	}
	if err := oneOf("type", c.Type, CredTypes); err != nil {
		list = append(list, err)
	}
	if in.Secret.IsZero() || len(in.Secret) > 512<<10 {
		list = append(list, errs.Invalidf("secret", "secret is required (at most 512 KiB)"))
	}
	if err := errs.Join(list...); err != nil {
		return nil, err
	}
	switch c.Type {
	case "ssh_key":
		info, err := sshexec.InspectPrivateKey(in.Secret, in.Passphrase)
		if err != nil {
			// The parser's message never holds key material, but keep ours generic and useful.
			hint := "paste the whole PEM, including the BEGIN and END lines"
			if errors.Is(err, sshexec.ErrPrivateKey) && strings.Contains(err.Error(), "passphrase") {
				hint = "the key is encrypted: send its passphrase"
			}
			return nil, errs.Invalidf("secret", "secret is not a usable SSH private key (rsa, ecdsa or ed25519)").WithHint(hint)
		}
		c.KeyType, c.Bits, c.Fingerprint, c.PublicKey, c.Encrypted = info.Type, info.Bits, info.Fingerprint, info.PublicKey, info.Encrypted
	case "kubeconfig":
		if err := validKubeconfig(in.Secret.Reveal()); err != nil {
			return nil, err
		}
	}
	payload, _ := json.Marshal(sealedCredential{Secret: in.Secret.Reveal(), Passphrase: in.Passphrase.Reveal()})
	sealed, err := s.vault.Seal(ctx, payload, credAAD(tid, c.ID))
	clear(payload)
	if err != nil {
		return nil, fmt.Errorf("seal credential: %w", err)
	}
	c.Sealed = sealed.Marshal()
	c.CreatedAt, c.UpdatedAt = s.now(), s.now()
	if err := s.store.CredentialCreate(ctx, c); err != nil {
		return nil, err
	}
	_, err = s.audit.Record(ctx, audit.Record{Action: "credential.created", ResourceType: "credential", ResourceID: c.ID,
		Description: "credential " + c.Name + " (" + c.Type + ") added", Detail: map[string]any{"fingerprint": c.Fingerprint}})
	return c, err
}

// credAAD binds a sealed credential to its tenant and id, so a sealed value copied to another row or
// tenant does not open.
func credAAD(tenantID, id string) string { return tenantID + "/credential/" + id }

// openCredential unseals credential c.
func (s *Service) openCredential(ctx context.Context, c *Credential) (sealedCredential, error) {
	sl, err := vault.UnmarshalSealed(c.Sealed)
	if err != nil {
		return sealedCredential{}, err
	}
	b, err := s.vault.Open(ctx, sl, credAAD(c.TenantID, c.ID))
	if err != nil {
		return sealedCredential{}, fmt.Errorf("open credential %s: %w", c.Name, err)
	}
	var sc sealedCredential
	err = json.Unmarshal(b, &sc)
	clear(b)
	return sc, err
}

// Credential returns credential id (never its value).
func (s *Service) Credential(ctx context.Context, id string) (*Credential, error) {
	return s.store.CredentialGet(ctx, id)
}

// Credentials lists credentials (never their values).
func (s *Service) Credentials(ctx context.Context) ([]Credential, error) {
	return s.store.CredentialList(ctx)
}

// DeleteCredential removes credential id unless servers use it.
func (s *Service) DeleteCredential(ctx context.Context, id string) error {
	x, err := s.store.CredentialGet(ctx, id)
	if err != nil {
		return err
	}
	return s.deleteAudited(ctx, "credential", id, x.Name, func() error { return s.store.CredentialDelete(ctx, id) })
}

// deleteAudited runs del and audits the removal of the kind named name.
func (s *Service) deleteAudited(ctx context.Context, kind, id, name string, del func() error) error {
	if err := del(); err != nil {
		return err
	}
	_, err := s.audit.Record(ctx, audit.Record{Action: kind + ".deleted", ResourceType: kind, ResourceID: id,
		Description: kind + " " + name + " removed"})
	return err
}

// CommandRecords lists recent commands, newest first, optionally for one server and one agent session.
func (s *Service) CommandRecords(ctx context.Context, serverID, sessionID string, limit int) ([]CommandRecord, error) {
	return s.store.CommandRecordList(ctx, serverID, sessionID, limit)
}

// OnHostKeyLearned stores a key accepted on first use. The SSH executor calls it with a hop id.
func (s *Service) OnHostKeyLearned(hopID, key string) {
	tid, sid, err := splitHopID(hopID)
	if err != nil {
		return
	}
	ctx := tenant.WithID(context.Background(), tid)
	k, fp, err := sshexec.ParseHostKey(key)
	if err == nil {
		err = s.store.ServerSetHostKey(ctx, sid, k, fp)
	}
	if err == nil {
		_, err = s.audit.Record(ctx, audit.Record{Action: "server.host_key_pinned", ResourceType: "server", ResourceID: sid,
			Description: "host key trusted on first use", Detail: map[string]string{"fingerprint": fp}})
	}
	if err != nil {
		s.log.Error("store learned host key", slog.String("server_id", sid), slog.String("error", err.Error()))
	}
}

// OnHostKeyMismatch audits a refused connection to a server whose host key changed.
func (s *Service) OnHostKeyMismatch(hopID, want, got string) {
	tid, sid, err := splitHopID(hopID)
	if err != nil {
		return
	}
	ctx := tenant.WithID(context.Background(), tid)
	_, wfp, _ := sshexec.ParseHostKey(want)
	_, gfp, _ := sshexec.ParseHostKey(got)
	if _, err := s.audit.Record(ctx, audit.Record{Action: "server.host_key_mismatch", ResourceType: "server", ResourceID: sid,
		Description: "connection refused: the server presented a different host key",
		Detail:      map[string]string{"expected_fingerprint": wfp, "presented_fingerprint": gfp}}); err != nil {
		s.log.Error("audit host key mismatch", slog.String("server_id", sid), slog.String("error", err.Error()))
	}
}
