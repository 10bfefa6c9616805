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
// Daylight saving follows classic cron. A schedule at fixed hours keeps to the wall clock: a time that
// happens twice when clocks go back (01:30 in America/New_York in November) fires once, at its first
// occurrence, and a time that does not exist when clocks go forward (02:30 in March) still fires that day,
// one hour late (03:30 daylight time). A schedule whose hour field is a wildcard ("*", "*/2", @hourly) or
// @every follows real time instead, so an hourly job fires every real hour through either change.
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
	spec, ok := sched.(*cron.SpecSchedule)
	if !ok || realTimeHours(expr) {
		// @every, and schedules that fire every hour or every few hours: follow real time, as cron does,
		// so an hourly job keeps its pace across a clock change.
		if ok {
			spec.Location = loc
		}
		next := sched.Next(after.In(loc))
		if next.IsZero() {
			return time.Time{}, errs.Invalidf("cron_expression", "cron expression %q never fires", expr)
		}
		return next.UTC(), nil
	}
	// Schedules at fixed hours follow the wall clock: walk the local date and time as if no clock ever
	// changed, then place each candidate in the zone. A repeated hour then yields each time once (the
	// first time; a candidate not after `after` is skipped), and a skipped hour still yields its time,
	// moved forward by the clock change.
	spec.Location = time.UTC
	wall := asUTC(after.In(loc))
	for range 1000 {
		wall = spec.Next(wall)
		if wall.IsZero() {
			return time.Time{}, errs.Invalidf("cron_expression", "cron expression %q never fires", expr)
		}
		t := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), 0, loc)
		if !asUTC(t.In(loc)).Equal(wall) {
			// The wall time falls in a gap, and time.Date placed it before the change: move it past the
			// change by the size of the jump (02:30 becomes 03:30 daylight time).
			_, before := t.In(loc).Zone()
			_, later := t.In(loc).Add(3 * time.Hour).Zone()
			if later > before {
				t = t.Add(time.Duration(later-before) * time.Second)
			}
		}
		if t.After(after) {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errs.Invalidf("cron_expression", "cron expression %q: no run found after %s", expr, after.Format(time.RFC3339))
}

// realTimeHours reports whether the expression's hour field is a wildcard ("*" or "*/n") or it is @hourly
// or @every.
func realTimeHours(expr string) bool {
	if strings.HasPrefix(expr, "@") {
		return expr == "@hourly" || strings.HasPrefix(expr, "@every ")
	}
	f := strings.Fields(expr)
	return len(f) == 5 && strings.HasPrefix(f[1], "*")
}

// asUTC returns the wall-clock reading of t as a UTC time.
func asUTC(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
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
