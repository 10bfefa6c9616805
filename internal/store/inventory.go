package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/inventory"
)

var _ inventory.Store = (*DB)(nil)

const serverCols = `id, tenant_id, name, host, port, environment, role, cluster_id, ssh_user, credential_id, network_type,
	jump_server_id, ssh_options, tags, status, description, host_key_policy, host_key, host_key_fingerprint, created_at, updated_at`

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func serverArgs(s *inventory.Server) []any {
	opts, _ := json.Marshal(s.SSHOptions)
	tags, _ := json.Marshal(s.Tags)
	return []any{s.ID, s.TenantID, s.Name, s.Host, s.Port, s.Environment, s.Role, nullable(s.ClusterID), s.SSHUser,
		nullable(s.CredentialID), s.NetworkType, nullable(s.JumpServerID), string(opts), string(tags), s.Status, s.Description,
		s.HostKeyPolicy, s.HostKey, s.HostKeyFingerprint, s.CreatedAt, s.UpdatedAt}
}

func scanServer(row interface{ Scan(...any) error }) (*inventory.Server, error) {
	var s inventory.Server
	var cluster, cred, jump sql.NullString
	var opts, tags string
	err := row.Scan(&s.ID, &s.TenantID, &s.Name, &s.Host, &s.Port, &s.Environment, &s.Role, &cluster, &s.SSHUser, &cred,
		&s.NetworkType, &jump, &opts, &tags, &s.Status, &s.Description, &s.HostKeyPolicy, &s.HostKey, &s.HostKeyFingerprint,
		&s.CreatedAt, &s.UpdatedAt)
	if err != nil {
		return nil, err
	}
	s.ClusterID, s.CredentialID, s.JumpServerID = cluster.String, cred.String, jump.String
	if err := json.Unmarshal([]byte(opts), &s.SSHOptions); err != nil {
		return nil, fmt.Errorf("server %s ssh_options: %w", s.ID, err)
	}
	if err := json.Unmarshal([]byte(tags), &s.Tags); err != nil {
		return nil, fmt.Errorf("server %s tags: %w", s.ID, err)
	}
	return &s, nil
}

func nameConflict(what, name string) error {
	return errs.New(errs.Conflict, "a %s named %q already exists", what, name).WithHint("choose another name")
}

// ServerCreate inserts s into the tenant in ctx unless the tenant already has maxServers servers.
func (db *DB) ServerCreate(ctx context.Context, s *inventory.Server, maxServers int) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	if s.TenantID != sc.tenantID {
		return errs.New(errs.Forbidden, "server belongs to another tenant")
	}
	return sc.inTx(ctx, func(tx scopeTx) error {
		if sc.pg {
			// Serialise creations per tenant so two concurrent ones cannot both pass the quota check.
			if _, err := tx.exec(ctx, `SELECT pg_advisory_xact_lock(hashtext(?))`, "servers/"+sc.tenantID); err != nil {
				return err
			}
		}
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM ~servers WHERE tenant_id = ?`, sc.tenantID).Scan(&n); err != nil {
			return err
		}
		if n >= maxServers {
			return errs.New(errs.QuotaExceeded, "quota max_servers reached (%d of %d)", n, maxServers).
				WithHint("remove a server or move the tenant to a larger plan")
		}
		_, err := tx.exec(ctx, `INSERT INTO ~servers (`+serverCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, serverArgs(s)...)
		if isUniqueViolation(err) {
			return nameConflict("server", s.Name)
		}
		return err
	})
}

// ServerGet returns server id of the tenant in ctx.
func (db *DB) ServerGet(ctx context.Context, id string) (*inventory.Server, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	s, err := scanServer(sc.queryRow(ctx, `SELECT `+serverCols+` FROM ~servers WHERE id = ? AND tenant_id = ?`, id, sc.tenantID))
	return s, notFound(err, "server")
}

// ServerList returns every server of the tenant in ctx, by name.
func (db *DB) ServerList(ctx context.Context) ([]inventory.Server, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT `+serverCols+` FROM ~servers WHERE tenant_id = ? ORDER BY name`, sc.tenantID)
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	defer rows.Close()
	var out []inventory.Server
	for rows.Next() {
		s, err := scanServer(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *s)
	}
	return out, rows.Err()
}

// ServerUpdate replaces server s.ID's fields.
func (db *DB) ServerUpdate(ctx context.Context, s *inventory.Server) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	a := serverArgs(s)
	res, err := sc.exec(ctx, `UPDATE ~servers SET name=?, host=?, port=?, environment=?, role=?, cluster_id=?, ssh_user=?,
		credential_id=?, network_type=?, jump_server_id=?, ssh_options=?, tags=?, status=?, description=?, host_key_policy=?,
		host_key=?, host_key_fingerprint=?, updated_at=? WHERE id=? AND tenant_id=?`,
		append(a[2:19], a[20], s.ID, sc.tenantID)...)
	if isUniqueViolation(err) {
		return nameConflict("server", s.Name)
	}
	if err != nil {
		return fmt.Errorf("update server: %w", err)
	}
	return mustAffect(res, "server")
}

// inUse returns the names of servers whose column equals id.
func (t scopeTx) inUse(ctx context.Context, column, id string) ([]string, error) {
	rows, err := t.query(ctx, `SELECT name FROM ~servers WHERE tenant_id = ? AND `+column+` = ? ORDER BY name`, t.s.tenantID, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

// deleteUnlessUsed deletes row id of table unless servers reference it through column.
func (db *DB) deleteUnlessUsed(ctx context.Context, table, what, column, id string) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	return sc.inTx(ctx, func(tx scopeTx) error {
		users, err := tx.inUse(ctx, column, id)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return errs.New(errs.Conflict, "%s is in use by %d server(s): %s", what, len(users), strings.Join(users, ", ")).
				WithHint("change or remove those servers first")
		}
		res, err := tx.exec(ctx, `DELETE FROM ~`+table+` WHERE id = ? AND tenant_id = ?`, id, sc.tenantID)
		if err != nil {
			return err
		}
		return mustAffect(res, what)
	})
}

// ServerDelete removes server id unless it is another server's jump host.
func (db *DB) ServerDelete(ctx context.Context, id string) error {
	return db.deleteUnlessUsed(ctx, "servers", "jump host", "jump_server_id", id)
}

// ServerSetHostKey pins a host key learned on first use.
func (db *DB) ServerSetHostKey(ctx context.Context, id, key, fingerprint string) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	res, err := sc.exec(ctx, `UPDATE ~servers SET host_key = ?, host_key_fingerprint = ?, updated_at = ? WHERE id = ? AND tenant_id = ?`,
		key, fingerprint, db.Now(), id, sc.tenantID)
	if err != nil {
		return err
	}
	return mustAffect(res, "server")
}

const clusterCols = `id, tenant_id, name, type, environment, description, kubeconfig, created_at, updated_at`

func scanCluster(row interface{ Scan(...any) error }) (*inventory.Cluster, error) {
	var c inventory.Cluster
	if err := row.Scan(&c.ID, &c.TenantID, &c.Name, &c.Type, &c.Environment, &c.Description, &c.Kubeconfig, &c.CreatedAt, &c.UpdatedAt); err != nil {
		return nil, err
	}
	c.HasKubeconfig = len(c.Kubeconfig) > 0
	return &c, nil
}

// ClusterCreate inserts c.
func (db *DB) ClusterCreate(ctx context.Context, c *inventory.Cluster) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	_, err = sc.exec(ctx, `INSERT INTO ~clusters (`+clusterCols+`) VALUES (?,?,?,?,?,?,?,?,?)`,
		c.ID, sc.tenantID, c.Name, c.Type, c.Environment, c.Description, c.Kubeconfig, c.CreatedAt, c.UpdatedAt)
	if isUniqueViolation(err) {
		return nameConflict("cluster", c.Name)
	}
	return err
}

// ClusterGet returns cluster id.
func (db *DB) ClusterGet(ctx context.Context, id string) (*inventory.Cluster, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	c, err := scanCluster(sc.queryRow(ctx, `SELECT `+clusterCols+` FROM ~clusters WHERE id = ? AND tenant_id = ?`, id, sc.tenantID))
	return c, notFound(err, "cluster")
}

// ClusterList lists clusters by name.
func (db *DB) ClusterList(ctx context.Context) ([]inventory.Cluster, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT `+clusterCols+` FROM ~clusters WHERE tenant_id = ? ORDER BY name`, sc.tenantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []inventory.Cluster
	for rows.Next() {
		c, err := scanCluster(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	return out, rows.Err()
}

// ClusterUpdate replaces cluster c.ID's fields.
func (db *DB) ClusterUpdate(ctx context.Context, c *inventory.Cluster) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	res, err := sc.exec(ctx, `UPDATE ~clusters SET name=?, type=?, environment=?, description=?, kubeconfig=?, updated_at=?
		WHERE id=? AND tenant_id=?`, c.Name, c.Type, c.Environment, c.Description, c.Kubeconfig, c.UpdatedAt, c.ID, sc.tenantID)
	if isUniqueViolation(err) {
		return nameConflict("cluster", c.Name)
	}
	if err != nil {
		return err
	}
	return mustAffect(res, "cluster")
}

// ClusterDelete removes cluster id unless servers are in it.
func (db *DB) ClusterDelete(ctx context.Context, id string) error {
	return db.deleteUnlessUsed(ctx, "clusters", "cluster", "cluster_id", id)
}

const credentialCols = `id, tenant_id, name, type, username, key_type, bits, fingerprint, public_key, encrypted, sealed, created_at, updated_at`

func scanCredential(row interface{ Scan(...any) error }) (*inventory.Credential, error) {
	var c inventory.Credential
	if err := row.Scan(&c.ID, &c.TenantID, &c.Name, &c.Type, &c.Username, &c.KeyType, &c.Bits, &c.Fingerprint, &c.PublicKey,
		&c.Encrypted, &c.Sealed, &c.CreatedAt, &c.UpdatedAt); err != nil {
		return nil, err
	}
	return &c, nil
}

// CredentialCreate inserts c (its value sealed).
func (db *DB) CredentialCreate(ctx context.Context, c *inventory.Credential) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	_, err = sc.exec(ctx, `INSERT INTO ~credentials (`+credentialCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		c.ID, sc.tenantID, c.Name, c.Type, c.Username, c.KeyType, c.Bits, c.Fingerprint, c.PublicKey, c.Encrypted, c.Sealed,
		c.CreatedAt, c.UpdatedAt)
	if isUniqueViolation(err) {
		return nameConflict("credential", c.Name)
	}
	return err
}

// CredentialGet returns credential id, sealed value included (never leaves the process unsealed).
func (db *DB) CredentialGet(ctx context.Context, id string) (*inventory.Credential, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	c, err := scanCredential(sc.queryRow(ctx, `SELECT `+credentialCols+` FROM ~credentials WHERE id = ? AND tenant_id = ?`, id, sc.tenantID))
	return c, notFound(err, "credential")
}

// CredentialList lists credentials by name.
func (db *DB) CredentialList(ctx context.Context) ([]inventory.Credential, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT `+credentialCols+` FROM ~credentials WHERE tenant_id = ? ORDER BY name`, sc.tenantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []inventory.Credential
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	return out, rows.Err()
}

// CredentialDelete removes credential id unless servers use it.
func (db *DB) CredentialDelete(ctx context.Context, id string) error {
	return db.deleteUnlessUsed(ctx, "credentials", "credential", "credential_id", id)
}

const commandCols = `id, tenant_id, session_id, server_id, server_name, command, risk_level, status, exit_code, stdout, stderr,
	truncated, duration_ms, actor_type, actor_id, reason, created_at`

// CommandRecordCreate inserts r.
func (db *DB) CommandRecordCreate(ctx context.Context, r *inventory.CommandRecord) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	r.TenantID = sc.tenantID
	_, err = sc.exec(ctx, `INSERT INTO ~command_records (`+commandCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		r.ID, r.TenantID, r.SessionID, r.ServerID, r.ServerName, r.Command, r.RiskLevel, r.Status, r.ExitCode, r.Stdout, r.Stderr,
		r.Truncated, r.DurationMS, r.ActorType, r.ActorID, r.Reason, r.CreatedAt)
	return err
}

// CommandRecordList returns recent records, newest first, optionally for one server and one session.
func (db *DB) CommandRecordList(ctx context.Context, serverID, sessionID string, limit int) ([]inventory.CommandRecord, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT `+commandCols+` FROM ~command_records WHERE tenant_id = ? AND (? = '' OR server_id = ?)
		AND (? = '' OR session_id = ?) ORDER BY created_at DESC, id LIMIT ?`, sc.tenantID, serverID, serverID, sessionID, sessionID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []inventory.CommandRecord
	for rows.Next() {
		var r inventory.CommandRecord
		if err := rows.Scan(&r.ID, &r.TenantID, &r.SessionID, &r.ServerID, &r.ServerName, &r.Command, &r.RiskLevel, &r.Status,
			&r.ExitCode, &r.Stdout, &r.Stderr, &r.Truncated, &r.DurationMS, &r.ActorType, &r.ActorID, &r.Reason, &r.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
