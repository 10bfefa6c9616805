package jobs_test

import (
	"errors"
	"testing"
	"time"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/jobs"
)

func TestNextCron(t *testing.T) {
	t.Parallel()
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name, expr, tz, after, want string
	}{
		// Asia/Shanghai has no DST: 08:00 CST is always 00:00 UTC.
		{"ShanghaiBefore", "0 8 * * *", "Asia/Shanghai", "2026-11-25T23:59:00Z", "2026-11-26T00:00:00Z"},
		{"ShanghaiStrictlyAfter", "0 8 * * *", "Asia/Shanghai", "2026-11-26T00:00:00Z", "2026-11-27T00:00:00Z"},
		{"ShanghaiRestartAt0800:30", "0 8 * * *", "Asia/Shanghai", "2026-11-26T00:00:30Z", "2026-11-27T00:00:00Z"},
		{"ShanghaiDailyDigest", "0 20 * * *", "Asia/Shanghai", "2026-11-26T00:00:00Z", "2026-11-26T12:00:00Z"},
		{"ShanghaiWeekdays", "0 9 * * 1-5", "Asia/Shanghai", "2026-11-27T02:00:00Z", "2026-11-30T01:00:00Z"},
		{"EmptyZoneIsUTC", "15 3 * * *", "", "2026-11-26T00:00:00Z", "2026-11-26T03:15:00Z"},
		{"Descriptor", "@daily", "Asia/Shanghai", "2026-11-26T01:00:00Z", "2026-11-26T16:00:00Z"},
		{"Every", "@every 90s", "UTC", "2026-11-26T00:00:00Z", "2026-11-26T00:01:30Z"},
		// America/New_York: EST (UTC-5) until 2026-03-08 02:00, EDT (UTC-4) until 2026-11-01 02:00.
		{"NewYorkWinter", "0 8 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-07T13:00:00Z"},
		{"NewYorkAcrossSpringForward", "0 8 * * *", "America/New_York", "2026-03-07T14:00:00Z", "2026-03-08T12:00:00Z"},
		{"NewYorkSkippedTimeFiresLate", "30 2 * * *", "America/New_York", "2026-03-08T05:00:00Z", "2026-03-08T07:30:00Z"},
		{"NewYorkDayAfterGap", "30 2 * * *", "America/New_York", "2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z"},
		{"NewYorkRepeatedTimeFirstOccurrence", "30 1 * * *", "America/New_York", "2026-11-01T04:00:00Z", "2026-11-01T05:30:00Z"},
		{"NewYorkRepeatedTimeOnce", "30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"},
		{"NewYorkAcrossFallBack", "0 8 * * *", "America/New_York", "2026-10-31T13:00:00Z", "2026-11-01T13:00:00Z"},
		{"NewYorkHourlyKeepsRealHours", "0 * * * *", "America/New_York", "2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := jobs.NextCron(tc.expr, tc.tz, utc(tc.after))
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(utc(tc.want)) || got.Location() != time.UTC {
				t.Fatalf("NextCron(%q, %q, %s) = %s, want %s", tc.expr, tc.tz, tc.after, got, tc.want)
			}
		})
	}
}

func TestNextCronErrors(t *testing.T) {
	t.Parallel()
	after := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, expr, tz, field string
	}{
		{"ErrGarbage", "every morning", "Asia/Shanghai", "cron_expression"},
		{"ErrFourFields", "0 8 * *", "Asia/Shanghai", "cron_expression"},
		{"ErrSixFields", "0 0 8 * * *", "Asia/Shanghai", "cron_expression"},
		{"ErrMinuteRange", "61 8 * * *", "Asia/Shanghai", "cron_expression"},
		{"ErrEmpty", "", "UTC", "cron_expression"},
		{"ErrTZPrefix", "TZ=UTC 0 8 * * *", "Asia/Shanghai", "cron_expression"},
		{"ErrNeverFires", "0 0 30 2 *", "UTC", "cron_expression"},
		{"ErrUnknownZone", "0 8 * * *", "Mars/Olympus_Mons", "timezone"},
		{"ErrZoneLocal", "0 8 * * *", "Local", "timezone"},
		{"ErrZoneOffset", "0 8 * * *", "+08:00", "timezone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := jobs.NextCron(tc.expr, tc.tz, after)
			var e *errs.Error
			if !errors.As(err, &e) || e.Code != errs.Invalid || e.Field != tc.field {
				t.Fatalf("NextCron(%q, %q) = %v, want an invalid %s error", tc.expr, tc.tz, err, tc.field)
			}
			t.Log(err)
		})
	}
}
