package cli_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// TestVerifyChecksGaps: verify lists the archive's gaps and a fresh
// baseline still being taken, and fails, naming the record, on gap records
// that are missing a number, overlap, or do not decode.
func TestVerifyChecksGaps(t *testing.T) {
	dir := t.TempDir()
	st, err := objstore.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	store := "file://" + dir
	t0 := time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	base := func(lsn schemas.LSN, at time.Time) schemas.Baseline {
		return schemas.Baseline{Version: 1, SystemID: "7311111111111111111", Timeline: 1, Database: "app", Slot: "tenantwal",
			LSN: lsn, Time: at, Partitions: 16}
	}
	old := base(0x1000000, t0.Add(-time.Hour))
	if err := catalog.WriteBaseline(ctx, st, &old); err != nil {
		t.Fatal(err)
	}
	gap := func(seq uint64, from, to schemas.LSN) *schemas.Gap {
		return &schemas.Gap{Seq: seq, Reason: schemas.GapSlotLost, Detail: "replication slot tenantwal was invalidated (wal_status lost)",
			Detected: t0.Add(5 * time.Minute), FromLSN: from, FromTime: t0, ToLSN: to, ToTime: t0.Add(5 * time.Minute),
			Previous: &old, Next: base(to, t0.Add(5*time.Minute))}
	}
	// problem: verify exits 1 and prints every one of subs.
	problem := func(r result, subs ...string) {
		t.Helper()
		r.want(t, 1, "verify found 1 problem(s)")
		for _, s := range subs {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("verify output lacks %q:\n%s", s, r.stdout)
			}
		}
	}
	if err := catalog.WriteGap(ctx, st, gap(1, 0x16B3000, 0x27B3000)); err != nil {
		t.Fatal(err)
	}

	// The fresh baseline is not archived yet: listed as pending, not a problem.
	tenantwal(t, 30*time.Second, "verify", "--store", store).want(t, 0,
		"1 gap(s) in the archive", "slot_lost", "(0/16B3000)", "(0/27B3000)",
		"pending gap 1: the fresh baseline at LSN 0/27B3000 is not archived yet", "OK:")

	fresh := base(0x27B3000, t0.Add(5*time.Minute))
	if err := catalog.WriteBaseline(ctx, st, &fresh); err != nil {
		t.Fatal(err)
	}
	r := tenantwal(t, 30*time.Second, "verify", "--json", "--store", store)
	r.want(t, 0)
	var rep struct {
		Gaps    []*schemas.Gap `json:"gaps"`
		Pending string         `json:"pending_baseline"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, r.stdout)
	}
	if len(rep.Gaps) != 1 || rep.Gaps[0].ToLSN != 0x27B3000 || rep.Pending != "" {
		t.Fatalf("verify --json after the fresh baseline: %s", r.stdout)
	}

	// A gap overlapping the one before it.
	if err := catalog.WriteGap(ctx, st, gap(2, 0x2000000, 0x3000000)); err != nil {
		t.Fatal(err)
	}
	problem(tenantwal(t, 30*time.Second, "verify", "--store", store),
		"PROBLEM archive: "+schemas.GapKey(2)+": gap 2 starts at 0/2000000, before gap 1 ends at 0/27B3000")

	// A record that does not decode.
	if err := st.Put(ctx, schemas.GapKey(2), bytes.NewReader([]byte(`{"version":1,"seq":2,`))); err != nil {
		t.Fatal(err)
	}
	problem(tenantwal(t, 30*time.Second, "verify", "--store", store),
		"PROBLEM archive: "+schemas.GapPrefix, schemas.GapKey(2), "restores refuse to run")

	// A missing number: record 3 without record 2.
	if err := st.Delete(ctx, schemas.GapKey(2)); err != nil {
		t.Fatal(err)
	}
	if err := catalog.WriteGap(ctx, st, gap(3, 0x3000000, 0x4000000)); err != nil {
		t.Fatal(err)
	}
	problem(tenantwal(t, 30*time.Second, "verify", "--store", store), schemas.GapKey(3), "numbered 3, want 2")
}
