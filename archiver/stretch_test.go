package archiver_test

import (
	"slices"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/archiver"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// TestVersionChangeAndBackInOneFlush: a table changes version and back
// (ADD COLUMN, then DROP COLUMN) between transactions archived in one
// flush. Each stretch is its own object, so the objects of one table never
// interleave and a restore between the two DDLs plans the version then in
// effect, not the newest object's.
func TestVersionChangeAndBackInOneFlush(t *testing.T) {
	store, err := objstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := startArchiver(t, t.TempDir(), store, func(c *archiver.Config) { c.FlushInterval = 2 * time.Second })
	wide := *docs
	wide.Columns = append(slices.Clone(docs.Columns), schemas.Column{Name: "extra", TypeOID: 25, TypeMod: -1, TypeName: "text"})
	wide.ComputeVersion()
	batch := func(lsn schemas.LSN, ts *schemas.TableSchema, vals ...schemas.Value) *schemas.Batch {
		return &schemas.Batch{Kind: schemas.KindChanges, Tenant: "a", CommitLSN: lsn, EndLSN: lsn + 8,
			CommitTime: time.Unix(int64(lsn), 0).UTC(), XID: uint32(lsn), Final: true,
			Tables: []*schemas.TableSchema{ts}, Events: []schemas.Event{{Seq: 1, Op: schemas.OpInsert, New: vals}}}
	}
	r.publish(t, &schemas.Batch{Kind: schemas.KindSnapshotDone, Tenant: "a", CommitLSN: 0x80, EndLSN: 0x81,
		CommitTime: time.Unix(0x80, 0).UTC(), Final: true, Tables: []*schemas.TableSchema{docs}})
	r.publish(t, batch(0x100, docs, text("a"), text("1"), text("v")))
	r.publish(t, batch(0x200, &wide, text("a"), text("2"), text("v"), text("X")))
	r.publish(t, batch(0x300, docs, text("a"), text("3"), text("v")))
	waitComplete(t, store, "a", 0x300)

	ten, err := catalog.LoadTenant(t.Context(), store, "a")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	var ranges []string
	for _, e := range ten.Entries {
		for _, o := range e.Objects {
			keys[o.Key] = true
			ranges = append(ranges, o.First.String()+".."+o.Last.String())
		}
	}
	if len(keys) != 3 {
		t.Fatalf("objects %q (%d keys), want one per stretch: 3", ranges, len(keys))
	}
	assertUnique(t, archivedChanges(t, store, "a"), 3)
	for _, c := range []struct {
		lsn  schemas.LSN
		want *schemas.TableSchema
	}{{0x100, docs}, {0x250, &wide}, {0x300, docs}} {
		p, err := replayer.PlanRestore(ten, replayer.Target{LSN: c.lsn})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Tables) != 1 || p.Tables[0].Schema.Version != c.want.Version {
			t.Errorf("restore at %s plans %d tables, the first with %d columns; want the version with %d columns", c.lsn, len(p.Tables), len(p.Tables[0].Schema.Columns), len(c.want.Columns))
		}
	}
}
