package app

import (
	"context"
	"errors"
	"log/slog"

	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/auth/redislimit"
	"github.com/redis/go-redis/v9"
)

// loginLimits returns where the login limits keep their counts, and a func that closes what it opened: with
// IT0_REDIS_URL, Redis, shared by every replica (so N replicas allow no more guesses than one); without, nil,
// which auth takes as its own memory. It does not wait for Redis: while Redis is unreachable the limits count
// on this replica alone and say so in the log (redislimit.Limits).
func (a *App) loginLimits() (auth.LimitStore, func(context.Context) error, error) {
	if a.cfg.RedisURL == "" {
		return nil, nil, nil
	}
	opt, err := redis.ParseURL(a.cfg.RedisURL)
	if err != nil {
		// The URL may hold a password: name the setting, not its value.
		return nil, nil, errors.New("IT0_REDIS_URL is not a redis:// URL (redis://[:password@]host:6379/0)")
	}
	rdb := redis.NewClient(opt)
	l := redislimit.New(redislimit.Config{Logger: a.log.With(slog.String("component", "login_limits"))}, rdb)
	return l, func(context.Context) error { return rdb.Close() }, nil
}
