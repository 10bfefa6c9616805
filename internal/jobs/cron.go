package jobs

import (
	"strings"
	"time"
	_ "time/tzdata" // zone data in the binary: containers often ship without /usr/share/zoneinfo

	"github.com/robfig/cron/v3"

	"github.com/it0/it0/internal/errs"
)

// cronParser accepts the standard five fields (minute hour day-of-month month day-of-week) and the
// descriptors @yearly, @monthly, @weekly, @daily, @hourly and @every <duration>.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// NextCron returns the first time strictly after after at which the cron expression fires, reading the
// expression's fields as wall-clock time in the IANA zone tz ("" means UTC). The result is in UTC.
//
// Daylight saving follows robfig/cron: a time that does not exist on the day clocks go forward (02:30 in
// America/New_York in March) fires at the first instant after the gap, 03:00; a time that happens twice when
// clocks go back fires once, at its first occurrence.
//
// Errors are errs.Invalid, naming the field: "cron_expression" for an expression that does not parse, that
// carries its own TZ= prefix, or that never fires; "timezone" for an unknown zone or "Local".
func NextCron(expr, tz string, after time.Time) (time.Time, error) {
	loc, err := cronZone(tz)
	if err != nil {
		return time.Time{}, err
	}
	expr = strings.TrimSpace(expr)
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return time.Time{}, errs.Invalidf("cron_expression", "cron expression %q: give the time zone separately, not as a TZ= prefix", expr)
	}
	sched, err := cronParser.Parse(expr)
	if err != nil {
		return time.Time{}, errs.Invalidf("cron_expression", "cron expression %q: %v", expr, err).
			WithHint(`use five fields "minute hour day-of-month month day-of-week", e.g. "0 8 * * *", or @daily`)
	}
	if spec, ok := sched.(*cron.SpecSchedule); ok {
		spec.Location = loc
	}
	next := sched.Next(after.In(loc))
	if next.IsZero() {
		return time.Time{}, errs.Invalidf("cron_expression", "cron expression %q never fires", expr)
	}
	return next.UTC(), nil
}

func cronZone(tz string) (*time.Location, error) {
	if tz == "" || tz == "UTC" {
		return time.UTC, nil
	}
	if tz == "Local" {
		return nil, errs.Invalidf("timezone", `time zone "Local" depends on the server; name an IANA zone such as "Asia/Shanghai"`)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, errs.Invalidf("timezone", "unknown time zone %q", tz).WithHint(`use an IANA name such as "Asia/Shanghai" or "America/New_York"`)
	}
	return loc, nil
}
