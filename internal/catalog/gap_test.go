package catalog_test

import (
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

func TestGapsRoundTripAndBoundTheRange(t *testing.T) {
	ctx := t.Context()
	store, err := objstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if gaps, err := catalog.ReadGaps(ctx, store); err != nil || len(gaps) != 0 {
		t.Fatalf("gaps of an archive without any: %v, %v", gaps, err)
	}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	first := &schemas.Baseline{Version: 1, SystemID: "1", Database: "app", LSN: 100, Time: t0, Partitions: 1}
	g := &schemas.Gap{Seq: 1, Reason: schemas.GapSlotMissing, Detail: "dropped", FromLSN: 500, FromTime: t0.Add(time.Minute),
		ToLSN: 900, ToTime: t0.Add(2 * time.Minute), Previous: first,
		Next: schemas.Baseline{Version: 1, SystemID: "1", Database: "app", LSN: 900, Time: t0.Add(2 * time.Minute), Partitions: 1}}
	if err := catalog.WriteGap(ctx, store, g); err != nil {
		t.Fatal(err)
	}
	gaps, err := catalog.ReadGaps(ctx, store)
	if err != nil || len(gaps) != 1 || gaps[0].ToLSN != 900 || gaps[0].Version != schemas.GapVersion {
		t.Fatalf("read back: %+v, %v", gaps, err)
	}
	bad := *g
	bad.Seq, bad.ToLSN = 2, 400 // ends before it starts
	if err := catalog.WriteGap(ctx, store, &bad); err == nil {
		t.Error("wrote a gap that ends before it starts")
	}
	wm := &schemas.Watermark{Partition: 0, Partitions: 1, CommitLSN: 1000, CommitTime: t0.Add(3 * time.Minute)}
	// While the fresh baseline is not archived, the range stops at the gap.
	r, err := catalog.ComputeRange(nil, first, wm, gaps...)
	if err != nil || r.FromLSN != 100 || r.ToLSN != 500 {
		t.Errorf("range during the fresh baseline: %s, %v; want LSN 100 to 500", r, err)
	}
	// Once it is, the range spans both sides, from the first baseline.
	r, err = catalog.ComputeRange(nil, &g.Next, wm, gaps...)
	if err != nil || r.FromLSN != 100 || r.ToLSN != 1000 {
		t.Errorf("range after the fresh baseline: %s, %v; want LSN 100 to 1000", r, err)
	}
}
