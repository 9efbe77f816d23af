package azure

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file holds a small six-field NCRONTAB parser - the schedule format of the
// Functions timer trigger: {second} {minute} {hour} {day} {month} {day-of-week} - used to
// check the caller's default schedule. Each field is a comma-separated list of "*",
// "*/n", "a", "a-b", "a-b/n" or "a/n"; months may be JAN-DEC and days of week SUN-SAT
// (0 = Sunday). Five-field expressions, which the host also accepts, are rejected:
// the deployment always writes six fields so the seconds are explicit.

var errCron = errors.New("invalid NCRONTAB expression")

type cronField struct {
	name     string
	min, max int
	names    []string // names[i] stands for min+i
}

var cronFields = [6]cronField{
	{name: "second", min: 0, max: 59},
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}},
	{name: "day-of-week", min: 0, max: 6, names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}},
}

// cronSchedule holds, per field, the set of values that match.
type cronSchedule [6]uint64

func parseNCRONTAB(expr string) (cronSchedule, error) {
	var s cronSchedule
	fields := strings.Fields(expr)
	switch {
	case len(fields) == 5:
		return s, fmt.Errorf("%w: %q has 5 fields; Azure Functions schedules here are six-field ({second} {minute} {hour} {day} {month} {day-of-week}): prepend the second, e.g. \"0 %s\"", errCron, expr, strings.Join(fields, " "))
	case len(fields) != 6:
		return s, fmt.Errorf("%w: %q has %d fields, want 6 ({second} {minute} {hour} {day} {month} {day-of-week})", errCron, expr, len(fields))
	}
	for i, f := range fields {
		bits, err := parseCronField(f, cronFields[i])
		if err != nil {
			return s, fmt.Errorf("%w: %q: %s field %q: %v", errCron, expr, cronFields[i].name, f, err)
		}
		s[i] = bits
	}
	return s, nil
}

func parseCronField(f string, spec cronField) (uint64, error) {
	var bits uint64
	for _, item := range strings.Split(f, ",") {
		if item == "" {
			return 0, errors.New("empty list item")
		}
		rng, stepStr, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 || stepStr != strconv.Itoa(n) {
				return 0, fmt.Errorf("step %q is not a positive number", stepStr)
			}
			if n > spec.max-spec.min+1 {
				return 0, fmt.Errorf("step %d exceeds the field's range %d-%d", n, spec.min, spec.max)
			}
			step = n
		}
		lo, hi := spec.min, spec.max
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = cronValue(a, spec); err != nil {
				return 0, err
			}
			if hi, err = cronValue(b, spec); err != nil {
				return 0, err
			}
			if lo > hi {
				return 0, fmt.Errorf("range %q runs backwards", rng)
			}
		default:
			v, err := cronValue(rng, spec)
			if err != nil {
				return 0, err
			}
			lo = v
			if !hasStep {
				hi = v // "a" alone; "a/n" runs from a to the field's maximum
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

func cronValue(s string, spec cronField) (int, error) {
	for i, n := range spec.names {
		if strings.EqualFold(s, n) {
			return spec.min + i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || s != strconv.Itoa(v) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v < spec.min || v > spec.max {
		return 0, fmt.Errorf("%d is outside %d-%d", v, spec.min, spec.max)
	}
	return v, nil
}

// matches reports whether the schedule fires at t (UTC, second resolution). Like
// NCrontab, day and day-of-week must both match.
func (s cronSchedule) matches(t time.Time) bool {
	t = t.UTC()
	vals := [6]int{t.Second(), t.Minute(), t.Hour(), t.Day(), int(t.Month()), int(t.Weekday())}
	for i, v := range vals {
		if s[i]&(1<<uint(v)) == 0 {
			return false
		}
	}
	return true
}

// next returns the first firing time strictly after t, searching up to 366 days ahead.
// It walks days first, so a schedule that never fires costs 366 steps, not 31 million.
func (s cronSchedule) next(t time.Time) (time.Time, bool) {
	t = t.UTC().Truncate(time.Second).Add(time.Second)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	for i := 0; i <= 366; i++ {
		d := day.AddDate(0, 0, i)
		if s[3]&(1<<uint(d.Day())) == 0 || s[4]&(1<<uint(d.Month())) == 0 || s[5]&(1<<uint(d.Weekday())) == 0 {
			continue
		}
		for h := 0; h < 24; h++ {
			if s[2]&(1<<uint(h)) == 0 {
				continue
			}
			for m := 0; m < 60; m++ {
				if s[1]&(1<<uint(m)) == 0 {
					continue
				}
				for sec := 0; sec < 60; sec++ {
					if s[0]&(1<<uint(sec)) == 0 {
						continue
					}
					if c := d.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second); !c.Before(t) {
						return c, true
					}
				}
			}
		}
	}
	return time.Time{}, false
}

func TestParseNCRONTAB(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		expr    string
		ok      bool
		fires   []string // RFC 3339 instants that must match
		silent  []string // instants that must not
		errLike string
	}{
		{expr: "0 */5 * * * *", ok: true, fires: []string{"2026-11-23T12:00:00Z", "2026-11-23T12:55:00Z"}, silent: []string{"2026-11-23T12:01:00Z", "2026-11-23T12:05:01Z"}},
		{expr: "*/30 * * * * *", ok: true, fires: []string{"2026-01-01T00:00:30Z"}, silent: []string{"2026-01-01T00:00:15Z"}},
		{expr: "0 0 9-17 * * MON-FRI", ok: true, fires: []string{"2026-11-23T09:00:00Z"}, silent: []string{"2026-11-22T09:00:00Z", "2026-11-23T18:00:00Z"}},
		{expr: "0 30 9 1,15 JAN,jul *", ok: true, fires: []string{"2026-07-15T09:30:00Z"}, silent: []string{"2026-08-15T09:30:00Z"}},
		{expr: "0 0 0-23/6 * * 0", ok: true, fires: []string{"2026-11-22T18:00:00Z"}, silent: []string{"2026-11-22T19:00:00Z"}},
		{expr: "5/20 * * * * *", ok: true, fires: []string{"2026-01-01T00:00:45Z"}, silent: []string{"2026-01-01T00:00:50Z"}},
		{expr: "  0   */5 * * *   *  ", ok: true},
		{expr: "*/5 * * * *", errLike: "5 fields"},
		{expr: "0 0 * * * * *", errLike: "7 fields"},
		{expr: "", errLike: "0 fields"},
		{expr: "60 * * * * *", errLike: "second field"},
		{expr: "0 60 * * * *", errLike: "minute field"},
		{expr: "0 0 24 * * *", errLike: "hour field"},
		{expr: "0 0 0 0 * *", errLike: "day field"},
		{expr: "0 0 0 32 * *", errLike: "day field"},
		{expr: "0 0 0 * 13 *", errLike: "month field"},
		{expr: "0 0 0 * * 7", errLike: "day-of-week field"},
		{expr: "0 0 0 * FOO *", errLike: "month field"},
		{expr: "*/0 * * * * *", errLike: "step"},
		{expr: "*/-1 * * * * *", errLike: "step"},
		{expr: "*/61 * * * * *", errLike: "step"},
		{expr: "0 10-5 * * * *", errLike: "backwards"},
		{expr: "0 1,,2 * * * *", errLike: "empty"},
		{expr: "0 +5 * * * *", errLike: "not a number"},
		{expr: "0 05x * * * *", errLike: "not a number"},
		{expr: "%CALLER_SCHEDULE% * * * * *", errLike: "second field"},
		{expr: "00:05:00", errLike: "1 fields"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			s, err := parseNCRONTAB(tt.expr)
			if !tt.ok {
				if err == nil {
					t.Fatalf("parseNCRONTAB(%q) succeeded, want an error mentioning %q", tt.expr, tt.errLike)
				}
				if !errors.Is(err, errCron) || !strings.Contains(err.Error(), tt.errLike) {
					t.Fatalf("error %q does not mention %q", err, tt.errLike)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseNCRONTAB(%q): %v", tt.expr, err)
			}
			for _, f := range tt.fires {
				if !s.matches(at(f)) {
					t.Errorf("%q does not fire at %s", tt.expr, f)
				}
			}
			for _, f := range tt.silent {
				if s.matches(at(f)) {
					t.Errorf("%q fires at %s", tt.expr, f)
				}
			}
		})
	}
}

func TestNCRONTABNext(t *testing.T) {
	s, err := parseNCRONTAB("0 */5 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 11, 23, 12, 3, 7, 0, time.UTC)
	got, ok := s.next(from)
	if want := time.Date(2026, 11, 23, 12, 5, 0, 0, time.UTC); !ok || !got.Equal(want) {
		t.Errorf("next(%v) = %v, %v; want %v", from, got, ok, want)
	}
	// 30 February never comes.
	never, err := parseNCRONTAB("0 0 0 30 FEB *")
	if err != nil {
		t.Fatal(err)
	}
	if at, ok := never.next(from); ok {
		t.Errorf("0 0 0 30 FEB * fires at %v", at)
	}
	// next agrees with matches, second by second, over a few hours.
	for _, expr := range []string{"0 */5 * * * *", "*/7 3-9/2 * * * MON-FRI", "30 59 23 * * *"} {
		s, err := parseNCRONTAB(expr)
		if err != nil {
			t.Fatal(err)
		}
		want := time.Time{}
		for c := from.Add(time.Second); c.Before(from.Add(26 * time.Hour)); c = c.Add(time.Second) {
			if s.matches(c) {
				want = c
				break
			}
		}
		if got, ok := s.next(from); !ok || !got.Equal(want) {
			t.Errorf("%q: next(%v) = %v, %v; brute force says %v", expr, from, got, ok, want)
		}
	}
}

func FuzzParseNCRONTAB(f *testing.F) {
	for _, s := range []string{"0 */5 * * * *", "*/5 * * * *", "0 0 9-17 * * MON-FRI", "5/20 1,2,3 * 1-31/2 JAN-DEC/3 SUN", "0 0 0 * * 7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		s, err := parseNCRONTAB(expr)
		if err != nil {
			if !errors.Is(err, errCron) {
				t.Fatalf("error %v does not wrap errCron", err)
			}
			return
		}
		if len(strings.Fields(expr)) != 6 {
			t.Fatalf("accepted %q with %d fields", expr, len(strings.Fields(expr)))
		}
		for i, bits := range s {
			spec := cronFields[i]
			if bits == 0 {
				t.Fatalf("%q: %s field matches nothing", expr, spec.name)
			}
			if out := bits &^ (((uint64(1) << uint(spec.max+1)) - 1) &^ ((uint64(1) << uint(spec.min)) - 1)); out != 0 {
				t.Fatalf("%q: %s field has values outside %d-%d: %b", expr, spec.name, spec.min, spec.max, out)
			}
		}
	})
}

func BenchmarkParseNCRONTAB(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseNCRONTAB("0 */5 9-17 * JAN-JUN MON-FRI"); err != nil {
			b.Fatal(err)
		}
	}
}
