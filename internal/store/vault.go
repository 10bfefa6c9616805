package store

import (
	"context"
	"errors"

	"github.com/it0/it0/internal/vault"
)

var _ vault.KeyStore = (*DB)(nil)

// The vault's data keys live in the shared schema; they are platform-wide (see migrations/shared).

const dataKeyCols = `id, master_key_id, nonce, ciphertext, created_at`

func scanDataKey(row interface{ Scan(...any) error }) (vault.SealedKey, error) {
	var k vault.SealedKey
	err := row.Scan(&k.ID, &k.MasterKeyID, &k.Nonce, &k.Ciphertext, &k.CreatedAt)
	if isNoRows(err) {
		return k, vault.ErrDataKeyNotFound
	}
	return k, err
}

// DataKeyActive returns the newest data key.
func (db *DB) DataKeyActive(ctx context.Context) (vault.SealedKey, error) {
	return scanDataKey(db.sharedScope().queryRow(ctx, `SELECT `+dataKeyCols+` FROM ~vault_data_keys ORDER BY created_at DESC, id DESC LIMIT 1`))
}

// DataKeyGet returns data key id.
func (db *DB) DataKeyGet(ctx context.Context, id string) (vault.SealedKey, error) {
	return scanDataKey(db.sharedScope().queryRow(ctx, `SELECT `+dataKeyCols+` FROM ~vault_data_keys WHERE id = ?`, id))
}

// DataKeyCreate stores a new data key.
func (db *DB) DataKeyCreate(ctx context.Context, k vault.SealedKey) error {
	_, err := db.sharedScope().exec(ctx, `INSERT INTO ~vault_data_keys (`+dataKeyCols+`) VALUES (?,?,?,?,?)`,
		k.ID, k.MasterKeyID, k.Nonce, k.Ciphertext, k.CreatedAt)
	return err
}

// DataKeyList returns every data key.
func (db *DB) DataKeyList(ctx context.Context) ([]vault.SealedKey, error) {
	rows, err := db.sharedScope().query(ctx, `SELECT `+dataKeyCols+` FROM ~vault_data_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []vault.SealedKey
	for rows.Next() {
		k, err := scanDataKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// DataKeyUpdate re-seals data key k.ID.
func (db *DB) DataKeyUpdate(ctx context.Context, k vault.SealedKey) error {
	res, err := db.sharedScope().exec(ctx, `UPDATE ~vault_data_keys SET master_key_id = ?, nonce = ?, ciphertext = ? WHERE id = ?`,
		k.MasterKeyID, k.Nonce, k.Ciphertext, k.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errors.Join(vault.ErrDataKeyNotFound)
	}
	return nil
}
