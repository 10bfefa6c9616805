package app

import "github.com/it0/it0/internal/ops"

// notifier is what tells people about standing-order runs: nil until the comm module is wired.
func (a *App) notifier() ops.Notifier { return nil }
