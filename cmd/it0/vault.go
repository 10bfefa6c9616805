package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/it0/it0/internal/app"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/vault"
)

// runVault implements `it0 vault keygen` and `it0 vault rotate`.
func runVault(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"usage: it0 vault keygen | it0 vault rotate [--data-dir DIR]"}
	}
	switch args[0] {
	case "keygen":
		k, err := vault.GenerateMasterKey()
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, k.Reveal())
		return nil
	case "rotate":
		cfg, _, err := loadConfig("vault rotate", args[1:], getenv, stderr, app.UsesStorage|app.UsesVault, nil)
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := cfg.FillSecrets(); err != nil {
			return err
		}
		vc, err := app.VaultConfig(cfg.VaultMasterKey, cfg.VaultPrevKeys)
		if err != nil {
			return err
		}
		if len(vc.PreviousMasterKeys) == 0 {
			fmt.Fprintln(stderr, "note: IT0_VAULT_PREVIOUS_KEYS is empty; data keys sealed by another master key cannot be opened")
		}
		db, err := store.Open(ctx, store.Config{DataDir: cfg.DataDir, DatabaseURL: cfg.DatabaseURL})
		if err != nil {
			return err
		}
		defer db.Close()
		v, err := vault.New(vc, db)
		if err != nil {
			return err
		}
		n, err := v.Rotate(ctx)
		if err != nil {
			return fmt.Errorf("rotate: %w", err)
		}
		fmt.Fprintf(stdout, "re-sealed %d data keys under master key %s; IT0_VAULT_PREVIOUS_KEYS can now be emptied\n", n, v.MasterKeyID())
		return nil
	}
	return usageError{fmt.Sprintf("unknown vault command %q", args[0])}
}
