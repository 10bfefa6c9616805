package app

import "github.com/it0/it0/internal/ops"

// notifier is what tells people about standing-order runs: the comm module.
func (a *App) notifier() ops.Notifier {
	if a.Comm == nil {
		return nil
	}
	return commNotifier{a.Comm}
}
