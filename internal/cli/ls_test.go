package cli_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// TestLsShowsGaps: a gap recorded by capture (slot lost) is listed by ls
// in text and JSON, also before any tenant is archived.
func TestLsShowsGaps(t *testing.T) {
	dir := t.TempDir()
	st, err := objstore.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	g := &schemas.Gap{Version: schemas.GapVersion, Seq: 1, Reason: schemas.GapSlotLost, Detail: "replication slot tenantwal was invalidated (wal_status lost)",
		Detected: t0.Add(5 * time.Minute), FromLSN: 0x16B3000, FromTime: t0, ToLSN: 0x27B3000, ToTime: t0.Add(5 * time.Minute),
		Next: schemas.Baseline{Version: 1, SystemID: "7311111111111111111", Timeline: 1, Database: "app", Slot: "tenantwal", LSN: 0x27B3000, Time: t0.Add(5 * time.Minute), Partitions: 16}}
	if err := catalog.WriteGap(t.Context(), st, g); err != nil {
		t.Fatal(err)
	}
	store := "file://" + dir
	tenantwal(t, 30*time.Second, "ls", "--store", store).want(t, 0,
		"1 gap(s) in the archive", "slot_lost", "2026-11-23T10:15:00Z (0/16B3000)", "(0/27B3000)", "wal_status lost", "no tenants archived")

	// A tenant archived after the gap carries it in JSON.
	e := &schemas.ManifestEntry{Tenant: "acme", Kind: schemas.EntrySnapshot, Created: t0, Writer: "w1",
		First: schemas.Pos{LSN: 0x27B3000}, Last: schemas.Pos{LSN: 0x27B3000}, MinTime: t0.Add(5 * time.Minute), MaxTime: t0.Add(5 * time.Minute),
		CompleteLSN: 0x27B3000, CompleteTime: t0.Add(5 * time.Minute)}
	if err := catalog.Append(t.Context(), st, e, 1); err != nil {
		t.Fatal(err)
	}
	r := tenantwal(t, 30*time.Second, "ls", "--json", "--store", store)
	r.want(t, 0)
	var ls []struct {
		Tenant string         `json:"tenant"`
		Gaps   []*schemas.Gap `json:"gaps"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ls); err != nil {
		t.Fatalf("ls --json: %v\n%s", err, r.stdout)
	}
	if len(ls) != 1 || ls[0].Tenant != "acme" || len(ls[0].Gaps) != 1 || ls[0].Gaps[0].ToLSN != 0x27B3000 {
		t.Fatalf("ls --json: %s", r.stdout)
	}
}
