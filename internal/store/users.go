package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/tenant"
)

const userCols = `id, tenant_id, email, name, password_hash, role, platform_admin, status, locale, created_at, updated_at, last_login_at,
	tokens_valid_after`

func scanUser(row interface{ Scan(...any) error }) (*auth.User, error) {
	var u auth.User
	err := row.Scan(&u.ID, &u.TenantID, &u.Email, &u.Name, &u.PasswordHash, &u.Role, &u.PlatformAdmin, &u.Status,
		&u.Locale, &u.CreatedAt, &u.UpdatedAt, &u.LastLoginAt, &u.TokensValidAfter)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// forUpdate locks the selected rows until the transaction ends on PostgreSQL; SQLite's BEGIN IMMEDIATE
// already serialises writers.
func (s scope) forUpdate() string {
	if s.pg {
		return " FOR UPDATE"
	}
	return ""
}

// UserCreate inserts u into the tenant in ctx, refusing when the tenant's max_users quota is reached.
func (db *DB) UserCreate(ctx context.Context, u *auth.User) error {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return err
	}
	if u.TenantID != tid {
		return errs.New(errs.Forbidden, "user belongs to another tenant")
	}
	s := db.sharedScope()
	return s.inTx(ctx, func(tx scopeTx) error {
		var max int
		if err := tx.queryRow(ctx, `SELECT max_users FROM ~tenants WHERE id = ?`+s.forUpdate(), tid).Scan(&max); err != nil {
			return notFound(err, "tenant")
		}
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM ~users WHERE tenant_id = ?`, tid).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return errs.New(errs.QuotaExceeded, "quota max_users reached (%d of %d)", n, max).
				WithHint("remove a user or move the tenant to a larger plan")
		}
		_, err := tx.exec(ctx, `INSERT INTO ~users (`+userCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			u.ID, u.TenantID, strings.ToLower(u.Email), u.Name, u.PasswordHash, u.Role, u.PlatformAdmin, u.Status,
			u.Locale, u.CreatedAt, u.UpdatedAt, u.LastLoginAt, u.TokensValidAfter)
		if isUniqueViolation(err) {
			return errs.New(errs.Conflict, "a user with email %q already exists", u.Email)
		}
		return err
	})
}

// UserGet returns user id of the tenant in ctx.
func (db *DB) UserGet(ctx context.Context, id string) (*auth.User, error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	u, err := scanUser(db.sharedScope().queryRow(ctx, `SELECT `+userCols+` FROM ~users WHERE id = ? AND tenant_id = ?`, id, tid))
	return u, notFound(err, "user")
}

// UserList returns the users of the tenant in ctx.
func (db *DB) UserList(ctx context.Context) ([]auth.User, error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := db.sharedScope().query(ctx, `SELECT `+userCols+` FROM ~users WHERE tenant_id = ? ORDER BY created_at, id`, tid)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []auth.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *u)
	}
	return out, rows.Err()
}

// UserUpdate saves u's name, role, status, locale, password hash and tokens-valid-after stamp, in the tenant
// in ctx. Returns errs.Conflict when the change would leave the tenant without an active admin.
func (db *DB) UserUpdate(ctx context.Context, u *auth.User) error {
	return db.userChange(ctx, func(tx scopeTx, tid string) error {
		res, err := tx.exec(ctx, `UPDATE ~users SET name=?, role=?, status=?, locale=?, password_hash=?, updated_at=?,
			tokens_valid_after=? WHERE id=? AND tenant_id=?`, u.Name, u.Role, u.Status, u.Locale, u.PasswordHash, u.UpdatedAt,
			u.TokensValidAfter, u.ID, tid)
		if err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		return mustAffect(res, "user")
	})
}

// UserDelete removes user id of the tenant in ctx with its API keys. Returns errs.NotFound, or errs.Conflict
// when it is the tenant's last active admin.
func (db *DB) UserDelete(ctx context.Context, id string) error {
	return db.userChange(ctx, func(tx scopeTx, tid string) error {
		if _, err := tx.exec(ctx, `DELETE FROM ~api_keys WHERE user_id = ? AND tenant_id = ?`, id, tid); err != nil {
			return fmt.Errorf("delete user's api keys: %w", err)
		}
		res, err := tx.exec(ctx, `DELETE FROM ~users WHERE id = ? AND tenant_id = ?`, id, tid)
		if err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
		return mustAffect(res, "user")
	})
}

// errLastAdmin is what a change that would leave a tenant without an active admin gets.
var errLastAdmin = errs.New(errs.Conflict, "this is the tenant's last active admin").
	WithHint("make another user admin first")

// userChange runs change in a transaction that holds the tenant's row, then refuses the result (rolling it
// back) when no active admin is left. Holding the tenant row serialises two admins demoting each other.
func (db *DB) userChange(ctx context.Context, change func(tx scopeTx, tid string) error) error {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return err
	}
	s := db.sharedScope()
	return s.inTx(ctx, func(tx scopeTx) error {
		var one int
		if err := tx.queryRow(ctx, `SELECT 1 FROM ~tenants WHERE id = ?`+s.forUpdate(), tid).Scan(&one); err != nil {
			return notFound(err, "tenant")
		}
		admins := func() (int, error) {
			var n int
			err := tx.queryRow(ctx, `SELECT COUNT(*) FROM ~users WHERE tenant_id = ? AND role = ? AND status = 'active'`,
				tid, auth.RoleAdmin).Scan(&n)
			if err != nil {
				return 0, fmt.Errorf("count admins: %w", err)
			}
			return n, nil
		}
		before, err := admins()
		if err != nil {
			return err
		}
		if err := change(tx, tid); err != nil {
			return err
		}
		after, err := admins()
		if err != nil {
			return err
		}
		if after == 0 && before > 0 {
			return errLastAdmin
		}
		return nil
	})
}

// UserByEmail finds a user by email across tenants. It is the one user lookup without a tenant in the
// context, because signing in is how a caller gets one.
func (db *DB) UserByEmail(ctx context.Context, email string) (*auth.User, error) {
	u, err := scanUser(db.sharedScope().queryRow(ctx, `SELECT `+userCols+` FROM ~users WHERE email = ?`, strings.ToLower(email)))
	return u, notFound(err, "user")
}

// UserTouchLogin records a successful sign-in.
func (db *DB) UserTouchLogin(ctx context.Context, id string, at time.Time) error {
	_, err := db.sharedScope().exec(ctx, `UPDATE ~users SET last_login_at = ? WHERE id = ?`, at, id)
	return err
}

// UserCount returns how many users exist across all tenants (zero means a fresh install).
func (db *DB) UserCount(ctx context.Context) (int, error) {
	var n int
	err := db.sharedScope().queryRow(ctx, `SELECT COUNT(*) FROM ~users`).Scan(&n)
	return n, err
}

const apiKeyCols = `id, tenant_id, user_id, name, prefix, hash, role, created_at, last_used_at, expires_at, revoked_at`

func scanAPIKey(row interface{ Scan(...any) error }) (*auth.APIKey, error) {
	var k auth.APIKey
	err := row.Scan(&k.ID, &k.TenantID, &k.UserID, &k.Name, &k.Prefix, &k.Hash, &k.Role, &k.CreatedAt, &k.LastUsedAt,
		&k.ExpiresAt, &k.RevokedAt)
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// APIKeyCreate stores k (its hash only) in the tenant in ctx.
func (db *DB) APIKeyCreate(ctx context.Context, k *auth.APIKey) error {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return err
	}
	if k.TenantID != tid {
		return errs.New(errs.Forbidden, "API key belongs to another tenant")
	}
	_, err = db.sharedScope().exec(ctx, `INSERT INTO ~api_keys (`+apiKeyCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		k.ID, k.TenantID, k.UserID, k.Name, k.Prefix, k.Hash, k.Role, k.CreatedAt, k.LastUsedAt, k.ExpiresAt, k.RevokedAt)
	if err != nil {
		return fmt.Errorf("insert api key: %w", err)
	}
	return nil
}

// APIKeyByHash finds a key by its hash, across tenants: the key is how the caller names its tenant.
func (db *DB) APIKeyByHash(ctx context.Context, hash []byte) (*auth.APIKey, error) {
	k, err := scanAPIKey(db.sharedScope().queryRow(ctx, `SELECT `+apiKeyCols+` FROM ~api_keys WHERE hash = ?`, hash))
	return k, notFound(err, "API key")
}

// APIKeyList returns the keys of the tenant in ctx; userID, when set, narrows to one user's keys.
func (db *DB) APIKeyList(ctx context.Context, userID string) ([]auth.APIKey, error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := db.sharedScope().query(ctx, `SELECT `+apiKeyCols+` FROM ~api_keys WHERE tenant_id = ? AND (? = '' OR user_id = ?)
		ORDER BY created_at, id`, tid, userID, userID)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	var out []auth.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *k)
	}
	return out, rows.Err()
}

// APIKeyGet returns key id of the tenant in ctx.
func (db *DB) APIKeyGet(ctx context.Context, id string) (*auth.APIKey, error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	k, err := scanAPIKey(db.sharedScope().queryRow(ctx, `SELECT `+apiKeyCols+` FROM ~api_keys WHERE id = ? AND tenant_id = ?`, id, tid))
	return k, notFound(err, "API key")
}

// APIKeyRevoke marks key id of the tenant in ctx revoked. Revoking twice is a conflict.
func (db *DB) APIKeyRevoke(ctx context.Context, id string, at time.Time) error {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return err
	}
	res, err := db.sharedScope().exec(ctx, `UPDATE ~api_keys SET revoked_at = ? WHERE id = ? AND tenant_id = ? AND revoked_at IS NULL`, at, id, tid)
	if err != nil {
		return fmt.Errorf("revoke api key: %w", err)
	}
	if err := mustAffect(res, "API key"); err != nil {
		if _, gerr := db.APIKeyGet(ctx, id); gerr == nil {
			return errs.New(errs.Conflict, "API key %s is already revoked", id)
		}
		return err
	}
	return nil
}

// APIKeyTouch records that key id was used.
func (db *DB) APIKeyTouch(ctx context.Context, id string, at time.Time) error {
	_, err := db.sharedScope().exec(ctx, `UPDATE ~api_keys SET last_used_at = ? WHERE id = ?`, at, id)
	return err
}

// APIKeyRevokeForUser revokes every unrevoked key of user userID in the tenant in ctx and says how many.
func (db *DB) APIKeyRevokeForUser(ctx context.Context, userID string, at time.Time) (int, error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return 0, err
	}
	res, err := db.sharedScope().exec(ctx, `UPDATE ~api_keys SET revoked_at = ? WHERE user_id = ? AND tenant_id = ? AND revoked_at IS NULL`,
		at, userID, tid)
	if err != nil {
		return 0, fmt.Errorf("revoke user's api keys: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
