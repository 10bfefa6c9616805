package app

import (
	"context"

	"github.com/it0/it0/internal/ops"
)

// notifier is what tells people about standing-order runs: the comm module.
func (a *App) notifier() ops.Notifier {
	if a.opts.Notifier != nil {
		return a.opts.Notifier
	}
	if a.Comm == nil {
		return nil
	}
	return commNotifier{a.Comm}
}

// personName names user id in reports: their name, else their email, else the id.
func (a *App) personName(ctx context.Context, id string) string {
	u, err := a.Auth.User(ctx, id)
	switch {
	case err != nil:
		return id
	case u.Name != "":
		return u.Name
	}
	return u.Email
}
