package replayer_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

func TestParseTargetTimes(t *testing.T) {
	want := time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	half := want.Add(500 * time.Millisecond)
	micro := want.Add(123456 * time.Microsecond)
	cases := []struct {
		in   string
		want time.Time
	}{
		{"2026-11-23T10:15:00Z", want},
		{"2026-11-23T12:15:00+02:00", want},
		{"2026-11-23T12:15:00.5+02:00", half},
		{"2026-11-23T05:15:00-05:00", want},
		{"2026-11-23 10:15:00Z", want},
		{"2026-11-23 12:15:00+02:00", want},
		{"2026-11-23 10:15:00+00", want}, // psql's timestamptz output
		{"2026-11-23 10:15:00.123456+00", micro},
		{"2026-11-23 15:45:00+05:30", want},
		{"2026-11-23T10:15:00+00", want},
		{"2026-11-23 10:15:00 +00:00", want},
		{"2026-11-23 12:15:00 +02", want},
		{"2026-11-23 10:15:00", want}, // no zone: UTC
		{"2026-11-23T10:15:00", want},
		{"2026-11-23 10:15:00.5", half},
		{"  2026-11-23T10:15:00Z\n", want},
	}
	for _, tc := range cases {
		got, err := replayer.ParseTarget(tc.in, "")
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", tc.in, err)
			continue
		}
		if got.IsLSN() || !got.Time.Equal(tc.want) || got.Time.Location() != time.UTC {
			t.Errorf("ParseTarget(%q) = %v (%v), want %v in UTC", tc.in, got.Time, got.Time.Location(), tc.want)
		}
		if got.LSN != 0 {
			t.Errorf("ParseTarget(%q) set the LSN too", tc.in)
		}
	}
	// A zone-less time is UTC whatever the local zone.
	t.Setenv("TZ", "America/New_York")
	if got, err := replayer.ParseTarget("2026-11-23 10:15:00", ""); err != nil || !got.Time.Equal(want) {
		t.Errorf("zone-less time under TZ=America/New_York: %v %v, want %v", got.Time, err, want)
	}
}

func TestParseTargetLSN(t *testing.T) {
	for in, want := range map[string]schemas.LSN{"16/B374D848": 0x16B374D848, " 0/1 ": 1, "ffffffff/ffffffff": 1<<64 - 1} {
		got, err := replayer.ParseTarget("", in)
		if err != nil || !got.IsLSN() || got.LSN != want {
			t.Errorf("ParseTarget(lsn %q) = %+v, %v; want LSN %s", in, got, err, want)
		}
	}
	if s := (replayer.Target{LSN: 0x16B374D848}).String(); s != "LSN 16/B374D848" {
		t.Errorf("String() = %q", s)
	}
}

func TestParseTargetErrors(t *testing.T) {
	cases := []struct {
		at, lsn string
		want    []string
	}{
		{"", "", []string{"--at", "--lsn"}},
		{"  ", " ", []string{"no restore point"}},
		{"2026-11-23T10:15:00Z", "16/B374D848", []string{"either --at or --lsn, not both"}},
		{"yesterday", "", []string{`--at "yesterday"`, "RFC 3339", "UTC when no zone"}},
		{"2026-11-23", "", []string{`--at "2026-11-23"`}},
		{"2026-13-23 10:15:00", "", []string{"not a time"}},
		{"2026-11-23 25:15:00+00", "", []string{"not a time"}},
		{"1700000000", "", []string{"not a time"}},
		{"0001-01-01 00:00:00", "", []string{"not a restore point"}},
		{"", "16", []string{"--lsn", "X/Y"}},
		{"", "16/ZZ", []string{"--lsn", "16/ZZ"}},
		{"", "100000000/0", []string{"--lsn"}},
		{"", "0/0", []string{"--lsn 0/0"}},
	}
	for _, tc := range cases {
		got, err := replayer.ParseTarget(tc.at, tc.lsn)
		if err == nil {
			t.Errorf("ParseTarget(%q, %q) = %+v, want an error", tc.at, tc.lsn, got)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ParseTarget(%q, %q): error %q does not mention %q", tc.at, tc.lsn, err, w)
			}
		}
	}
}

var schemaNameRE = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

func TestDefaultSchemaName(t *testing.T) {
	tm := time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	cases := []struct {
		id     schemas.TenantID
		target replayer.Target
		want   string
	}{
		{"acme", replayer.Target{Time: tm}, "tw_acme_20261123t101500z"},
		{"acme", replayer.Target{Time: tm.Add(500 * time.Millisecond)}, "tw_acme_20261123t101500_5z"},
		{"acme", replayer.Target{Time: tm.Add(123456 * time.Microsecond)}, "tw_acme_20261123t101500_123456z"},
		{"acme", replayer.Target{Time: tm.Add(1)}, "tw_acme_20261123t101500_000000001z"},
		{"acme", replayer.Target{Time: tm.In(time.FixedZone("x", 3600))}, "tw_acme_20261123t101500z"},
		{"42", replayer.Target{LSN: 0x16B374D848}, "tw_42_lsn_16_b374d848"},
		{"acme", replayer.Target{LSN: 1}, "tw_acme_lsn_0_1"},
	}
	for _, tc := range cases {
		if got := replayer.DefaultSchemaName(tc.id, tc.target); got != tc.want {
			t.Errorf("DefaultSchemaName(%q, %s) = %q, want %q", tc.id, tc.target, got, tc.want)
		}
	}
}

func TestDefaultSchemaNameHostileIDs(t *testing.T) {
	ids := []schemas.TenantID{
		"acme", "ACME", "Acme", "a/b", "a.b", "a b", "a_b", "a-b", "*>", "ünï", "uni", "x y", "x_y",
		"'; DROP SCHEMA public; --", `"quoted"`, "\x00", " ", "..", "%41", "A",
		"1", "01", "a", "tw_a", "lsn", "hash",
		schemas.TenantID(strings.Repeat("a", 40)), schemas.TenantID(strings.Repeat("a", 41)),
		schemas.TenantID(strings.Repeat("a", 256)), schemas.TenantID(strings.Repeat("a", 255) + "b"),
		schemas.TenantID(strings.Repeat("é", 100)), schemas.TenantID(strings.Repeat("x y", 80)),
		"00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002",
	}
	targets := []replayer.Target{
		{Time: time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)},
		{Time: time.Date(2026, 11, 23, 10, 15, 0, 999999999, time.UTC)},
		{LSN: 0xFFFFFFFFFFFFFFFF},
		{LSN: 0x16B374D848},
	}
	for _, target := range targets {
		seen := map[string]schemas.TenantID{}
		for _, id := range ids {
			name := replayer.DefaultSchemaName(id, target)
			if !schemaNameRE.MatchString(name) {
				t.Errorf("DefaultSchemaName(%q, %s) = %q: not 1..63 bytes of [a-z0-9_]", id, target, name)
			}
			if !strings.HasPrefix(name, "tw_") {
				t.Errorf("DefaultSchemaName(%q, %s) = %q: no tw_ prefix", id, target, name)
			}
			if prev, ok := seen[name]; ok {
				t.Errorf("tenants %q and %q both get schema %q", prev, id, name)
			}
			seen[name] = id
		}
	}
	// Deterministic: the same restore gets the same name.
	id := schemas.TenantID("a/b")
	if a, b := replayer.DefaultSchemaName(id, targets[0]), replayer.DefaultSchemaName(id, targets[0]); a != b {
		t.Errorf("not deterministic: %q vs %q", a, b)
	}
	// A readable prefix of the tenant survives.
	if name := replayer.DefaultSchemaName("Acme Corp/EU", targets[0]); !strings.HasPrefix(name, "tw_acme_corp_eu_") {
		t.Errorf("DefaultSchemaName(Acme Corp/EU) = %q, want the sanitized id first", name)
	}
}
