package replayer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tenantwal/tenantwal/schemas"
)

// Target is a restore point: exactly one of LSN and Time is set.
//
// By LSN L, a restore applies every change whose transaction committed at or
// before L. By time T it applies every change whose transaction's commit time
// is at or before T (PostgreSQL's recovery_target_time with
// recovery_target_inclusive = on). A transaction's changes share one commit
// LSN and one commit time, so a transaction is never split.
type Target struct {
	LSN  schemas.LSN
	Time time.Time
}

// IsLSN reports whether t is an LSN target.
func (t Target) IsLSN() bool { return t.Time.IsZero() }

// validate checks that exactly one of LSN and Time is set.
func (t Target) validate() error {
	switch {
	case t.LSN == 0 && t.Time.IsZero():
		return errors.New("no restore point: give a time (--at) or an LSN (--lsn)")
	case t.LSN != 0 && !t.Time.IsZero():
		return errors.New("restore point has both an LSN and a time: give one of them")
	}
	return nil
}

// String prints the target as "LSN 16/B374D848" or as an RFC 3339 UTC time.
func (t Target) String() string {
	if t.IsLSN() {
		return "LSN " + t.LSN.String()
	}
	return t.Time.UTC().Format(time.RFC3339Nano)
}

// timeLayouts are the forms ParseTarget accepts for --at, tried in order.
// Go parses a fractional second after the seconds field even when the layout
// does not show one. "Z07" also accepts PostgreSQL's "+00" offsets, so a
// timestamptz pasted from psql works.
var timeLayouts = []string{
	time.RFC3339,
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05Z07",
	"2006-01-02T15:04:05Z07",
	"2006-01-02 15:04:05 Z07:00",
	"2006-01-02 15:04:05 Z07",
}

// zonelessLayouts are read as UTC.
var zonelessLayouts = []string{
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
}

// ParseTarget builds a Target from the CLI flags: at is a time (RFC 3339, or
// "2006-01-02 15:04:05[.frac][Z07:00]"; a time without a zone is UTC), lsn
// is "X/Y" as pg_current_wal_lsn() prints it. Exactly one must be non-empty.
func ParseTarget(at, lsn string) (Target, error) {
	at, lsn = strings.TrimSpace(at), strings.TrimSpace(lsn)
	switch {
	case at == "" && lsn == "":
		return Target{}, errors.New("no restore point: give --at TIME (e.g. 2026-11-23T10:15:00Z) or --lsn X/Y (e.g. 16/B374D848)")
	case at != "" && lsn != "":
		return Target{}, errors.New("give either --at or --lsn, not both")
	case lsn != "":
		l, err := schemas.ParseLSN(lsn)
		if err != nil {
			return Target{}, fmt.Errorf("--lsn: %w", err)
		}
		if l == 0 {
			return Target{}, errors.New("--lsn 0/0 is not a restore point")
		}
		return Target{LSN: l}, nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, at); err == nil {
			return timeTarget(at, t)
		}
	}
	for _, layout := range zonelessLayouts {
		if t, err := time.ParseInLocation(layout, at, time.UTC); err == nil {
			return timeTarget(at, t)
		}
	}
	return Target{}, fmt.Errorf("--at %q: not a time; use RFC 3339 (2026-11-23T10:15:00Z, 2026-11-23T12:15:00.5+02:00) or \"2026-11-23 10:15:00[.frac][+00]\" (UTC when no zone is given)", at)
}

// timeTarget returns a time target for t, refusing the zero time, which
// Target reads as "no time".
func timeTarget(at string, t time.Time) (Target, error) {
	if t.IsZero() {
		return Target{}, fmt.Errorf("--at %q is not a restore point", at)
	}
	return Target{Time: t.UTC()}, nil
}
