package store

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"testing/fstest"
	"text/template"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrationFiles are written once for both backends; templateData fills in the types that differ.
//
//go:embed migrations
var migrationFiles embed.FS

type templateData struct {
	PG     bool
	TS     string // a timestamp column
	Blob   string // a binary column
	Serial string // an auto-increment primary key
}

func (db *DB) templateData() templateData {
	if db.dialect == Postgres {
		return templateData{PG: true, TS: "TIMESTAMPTZ", Blob: "BYTEA", Serial: "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"}
	}
	return templateData{TS: "TIMESTAMP", Blob: "BLOB", Serial: "INTEGER PRIMARY KEY AUTOINCREMENT"}
}

// migrations renders one set (shared or tenant) for this backend. goose reads an fs.FS; fstest.MapFS is the
// standard library's in-memory one.
func (db *DB) migrations(set string) (fs.FS, error) {
	tmpl, err := template.ParseFS(migrationFiles, "migrations/*.tmpl")
	if err != nil {
		return nil, fmt.Errorf("parse migration templates: %w", err)
	}
	entries, err := fs.ReadDir(migrationFiles, "migrations/"+set)
	if err != nil {
		return nil, err
	}
	out := fstest.MapFS{}
	for _, e := range entries {
		src, err := fs.ReadFile(migrationFiles, path.Join("migrations", set, e.Name()))
		if err != nil {
			return nil, err
		}
		t, err := template.Must(tmpl.Clone()).New(e.Name()).Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("parse migration %s: %w", e.Name(), err)
		}
		var b bytes.Buffer
		if err := t.Execute(&b, db.templateData()); err != nil {
			return nil, fmt.Errorf("render migration %s: %w", e.Name(), err)
		}
		out[e.Name()] = &fstest.MapFile{Data: b.Bytes()}
	}
	return out, nil
}

func (db *DB) migrate(ctx context.Context, conn *sql.DB, set string) error {
	fsys, err := db.migrations(set)
	if err != nil {
		return err
	}
	dialect := goose.DialectSQLite3
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if db.dialect == Postgres {
		dialect = goose.DialectPostgres
		// Replicas may start together: a session advisory lock makes one of them migrate at a time.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, conn, fsys, opts...)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", set, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", set, err)
	}
	return nil
}

// schemaConn opens a short-lived PostgreSQL pool whose search_path is schema, creating the schema first, so
// that migrations (and goose's version table) land in it.
func (db *DB) schemaConn(ctx context.Context, schema string) (*sql.DB, error) {
	if _, err := db.shared.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS "`+schema+`"`); err != nil {
		return nil, fmt.Errorf("create schema %s: %w", schema, err)
	}
	u, err := url.Parse(db.cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: invalid URL")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	conn, err := sql.Open("pgx", u.String())
	if err != nil {
		return nil, err
	}
	conn.SetMaxOpenConns(2)
	return conn, nil
}

func (db *DB) migrateShared(ctx context.Context) error {
	if db.dialect == SQLite {
		return db.migrate(ctx, db.shared, "shared")
	}
	conn, err := db.schemaConn(ctx, db.sharedSchema())
	if err != nil {
		return err
	}
	defer conn.Close()
	return db.migrate(ctx, conn, "shared")
}

// MigrateTenant creates (if needed) and migrates tenant id's schema or file.
func (db *DB) MigrateTenant(ctx context.Context, id string) error {
	if db.dialect == SQLite {
		conn, err := db.tenantDB(id, true)
		if err != nil {
			return err
		}
		return db.migrate(ctx, conn, "tenant")
	}
	conn, err := db.schemaConn(ctx, db.tenantSchema(id))
	if err != nil {
		return err
	}
	defer conn.Close()
	return db.migrate(ctx, conn, "tenant")
}

// MigrateAll migrates the shared schema and every tenant that is not deleted.
func (db *DB) MigrateAll(ctx context.Context) error {
	if err := db.migrateShared(ctx); err != nil {
		return err
	}
	ids, err := db.tenantIDs(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := db.MigrateTenant(ctx, id); err != nil {
			return fmt.Errorf("tenant %s: %w", id, err)
		}
	}
	return nil
}
