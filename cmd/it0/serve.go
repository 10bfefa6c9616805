package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/it0/it0/internal/app"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/logging"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/tenant"
)

// loadConfig parses a subcommand's flags (after env defaults) and validates them: only the settings in
// uses, so each subcommand shows and requires only its own.
func loadConfig(name string, args []string, getenv func(string) string, stderr io.Writer, uses app.Settings, extra func(*flag.FlagSet)) (app.Config, *flag.FlagSet, error) {
	var cfg app.Config
	fs := flag.NewFlagSet("it0 "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.RegisterFlagsFor(fs, getenv, uses)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, fs, err
		}
		return cfg, fs, usageError{err.Error()}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fs, fmt.Errorf("configuration: %w", err)
	}
	return cfg, fs, nil
}

func newLogger(cfg app.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	// logging.New stamps each …Context record with the tenant, request and agent session it belongs to.
	if cfg.LogFormat == "text" {
		return logging.New(slog.NewTextHandler(w, opts))
	}
	return logging.New(slog.NewJSONHandler(w, opts))
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var listTargets bool
	cfg, _, err := loadConfig("serve", args, getenv, stderr, app.UsesAll, func(fs *flag.FlagSet) {
		fs.BoolVar(&listTargets, "list-targets", false, "print the modules and their dependencies, then exit")
	})
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	a := app.New(cfg, log, stderr)
	a.Version = version
	if listTargets {
		a.ListTargets(stdout)
		return nil
	}
	generated, err := cfg.FillSecrets()
	if err != nil {
		return err
	}
	if generated {
		log.Warn("generated secrets for embedded mode; set IT0_JWT_SECRET, IT0_AUDIT_KEY and IT0_VAULT_MASTER_KEY in production",
			slog.String("file", cfg.DataDir+"/secrets.json"))
	}
	if w := cfg.AuditKeyWarning(); w != "" {
		log.Warn("audit key next to the data", slog.String("problem", w))
	}
	a = app.New(cfg, log, stderr)
	a.Version = version
	return a.Run(ctx)
}

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig("migrate", args, getenv, stderr, app.UsesStorage, nil)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, store.Config{DataDir: cfg.DataDir, DatabaseURL: cfg.DatabaseURL})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.MigrateAll(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

// runAudit implements `it0 audit verify` and `it0 audit export`.
func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "verify" && args[0] != "export") {
		return usageError{"usage: it0 audit verify [--data-dir DIR] | it0 audit export --tenant ID [--data-dir DIR]"}
	}
	sub := args[0]
	var tenantID string
	cfg, _, err := loadConfig("audit "+sub, args[1:], getenv, stderr, app.UsesStorage|app.UsesAuditKey, func(fs *flag.FlagSet) {
		fs.StringVar(&tenantID, "tenant", "", "tenant id (export: required; verify: only this tenant)")
	})
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := cfg.FillSecrets(); err != nil {
		return err
	}
	db, err := store.Open(ctx, store.Config{DataDir: cfg.DataDir, DatabaseURL: cfg.DatabaseURL})
	if err != nil {
		return err
	}
	defer db.Close()
	log, err := audit.New(db, []byte(cfg.AuditKey), nil)
	if err != nil {
		return err
	}
	if sub == "verify" {
		fmt.Fprintf(stdout, "audit key: %s (fingerprint %s)\n", cfg.AuditKeySource, audit.KeyFingerprint([]byte(cfg.AuditKey)))
		if w := cfg.AuditKeyWarning(); w != "" {
			fmt.Fprintln(stderr, "warning:", w)
		}
	}
	if sub == "export" {
		if tenantID == "" {
			return usageError{"audit export needs --tenant ID (or --tenant _platform)"}
		}
		return log.Export(tenant.WithID(ctx, tenantID), stdout)
	}
	chains := []string{tenant.Platform}
	if tenantID != "" {
		chains = []string{tenantID}
	} else {
		ts, err := db.TenantList(ctx)
		if err != nil {
			return err
		}
		for _, t := range ts {
			chains = append(chains, t.ID)
		}
	}
	var bad []string
	for _, id := range chains {
		res, err := log.Verify(tenant.WithID(ctx, id))
		if err != nil {
			return err
		}
		name := id
		if id == tenant.Platform {
			name = "platform"
		}
		if res.OK {
			anchor := "no anchored head yet"
			if res.AnchoredSeq > 0 {
				anchor = fmt.Sprintf("anchored head seq %d", res.AnchoredSeq)
			}
			fmt.Fprintf(stdout, "ok      %-38s %d entries, %s\n", name, res.Checked, anchor)
			continue
		}
		fmt.Fprintf(stdout, "BROKEN  %-38s first bad row: id %d (seq %d): %s\n", name, res.FirstBadID, res.FirstBad, res.Reason)
		bad = append(bad, fmt.Sprintf("%s at id %d (seq %d)", name, res.FirstBadID, res.FirstBad))
	}
	if len(bad) > 0 {
		return exitWithCode{code: 3, err: fmt.Errorf("audit chain broken: %s", strings.Join(bad, "; "))}
	}
	return nil
}
