package jobs

import "time"

// CheckCron validates a cron expression in a time zone (standing-order validation uses it).
func CheckCron(expr, tz string) error {
	_, err := NextCron(expr, tz, time.Now())
	return err
}
