package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"time"

	"github.com/it0/it0/internal/privfile"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver (pure Go)
)

// Dialect names the SQL backend behind Config.DB. Its values match store.Dialect.
type Dialect string

// Backends.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Defaults for Config fields left zero.
const (
	DefaultSchema       = "it0_jobs"
	DefaultMaxAttempts  = 5
	DefaultWorkers      = 16
	DefaultPollInterval = time.Second
	DefaultTimeout      = time.Minute
	DefaultRetention    = 7 * 24 * time.Hour
)

// leaseMargin is how long a claim outlives the handler's timeout, so a live worker's job is never
// reclaimed while its handler may still be running.
const leaseMargin = 30 * time.Second

// Config configures a Runner.
type Config struct {
	// DB holds the jobs table. The runner never closes it. On SQLite use OpenDB (or any pool on a file
	// of its own); only one Runner may use a SQLite database at a time.
	DB *sql.DB
	// Dialect is the backend of DB. Required.
	Dialect Dialect
	// Schema is the PostgreSQL schema of the jobs table, created if missing. Default "it0_jobs". Ignored on
	// SQLite, where the table is "jobs" in DB's main database.
	Schema string
	// Now is the clock that decides what is due. Default time.Now.
	Now func() time.Time
	// Logger receives the runner's logs. Default: discarded.
	Logger *slog.Logger
	// Workers bounds how many handlers run at once. Default 16.
	Workers int
	// PollInterval is the longest the Start loop waits before looking for due jobs (it also wakes on
	// Enqueue and at the next known due time). Default 1s.
	PollInterval time.Duration
	// Timeout bounds one handler run; its context is cancelled after it. A claim's lease is Timeout + 30s.
	// Default 1 min.
	Timeout time.Duration
	// MaxAttempts applies to jobs enqueued with MaxAttempts 0. Default 5.
	MaxAttempts int
	// Backoff is the delay before retry number attempt+1, after attempt failed runs. Default
	// DefaultBackoff.
	Backoff func(attempt int) time.Duration
	// Retention is how long finished jobs are kept before the Start loop deletes them. Default 7 days.
	Retention time.Duration
}

var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var list []error
	if c.DB == nil {
		list = append(list, errors.New("jobs config: DB is required"))
	}
	if c.Dialect != SQLite && c.Dialect != Postgres {
		list = append(list, fmt.Errorf("jobs config: dialect %q must be %q or %q", c.Dialect, SQLite, Postgres))
	}
	if c.Schema != "" && !schemaRE.MatchString(c.Schema) {
		list = append(list, fmt.Errorf("jobs config: schema %q must match %s", c.Schema, schemaRE))
	}
	if c.Workers < 0 || c.PollInterval < 0 || c.Timeout < 0 || c.MaxAttempts < 0 || c.Retention < 0 {
		list = append(list, errors.New("jobs config: workers, poll interval, timeout, max attempts and retention must not be negative"))
	}
	return errors.Join(list...)
}

func (c Config) withDefaults() Config {
	if c.Schema == "" {
		c.Schema = DefaultSchema
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.Backoff == nil {
		c.Backoff = DefaultBackoff
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	return c
}

// DefaultBackoff waits 10s after the first failure and doubles each time, capped at one hour:
// 10s, 20s, 40s, 80s, … No jitter: retries are rare, and tests can predict them.
func DefaultBackoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if attempt > 10 {
		return time.Hour
	}
	return min(10*time.Second<<(attempt-1), time.Hour)
}

// OpenDB opens the connection pool the runner should use. With databaseURL empty it is SQLite in
// dataDir/jobs.db: a file of its own with a single connection, so job traffic never waits on (or makes
// wait) the application's pool, and SQLite never sees two writers. Otherwise it is a small pool on the
// PostgreSQL URL; put the table in a schema of its own with Config.Schema.
func OpenDB(ctx context.Context, dataDir, databaseURL string) (*sql.DB, Dialect, error) {
	var (
		db      *sql.DB
		dialect Dialect
		err     error
	)
	if databaseURL != "" {
		dialect = Postgres
		db, err = sql.Open("pgx", databaseURL)
		if err == nil {
			db.SetMaxOpenConns(4)
			db.SetMaxIdleConns(4)
		}
	} else {
		if dataDir == "" {
			return nil, "", errors.New("open jobs db: data dir is empty")
		}
		dialect = SQLite
		db, err = OpenSQLite(filepath.Join(dataDir, "jobs.db"))
	}
	if err != nil {
		return nil, "", fmt.Errorf("open jobs db: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, "", fmt.Errorf("open jobs db: %w", err)
	}
	return db, dialect, nil
}

// OpenSQLite opens the SQLite file at path for a runner: WAL, one connection (which serialises claims and
// completions in the process, so SQLITE_BUSY never happens), synchronous=NORMAL (a power loss may lose the
// last commits, never corrupt the file).
func OpenSQLite(path string) (*sql.DB, error) {
	if err := privfile.SQLite(path); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", "file:"+path+
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	return db, nil
}
