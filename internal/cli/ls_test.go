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

// TestLsShowsSchemaHistory: `ls --tenant T --schemas` lists every table
// version of the tenant's archive in the order they first appear, with
// their columns and the DDL recorded for them, in text and JSON; without
// --tenant it names the missing flag.
func TestLsShowsSchemaHistory(t *testing.T) {
	dir := t.TempDir()
	st, err := objstore.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	v1 := &schemas.TableSchema{Schema: "public", Name: "items", Generation: 16390, Columns: []schemas.Column{
		{Name: "tenant_id", TypeOID: 25, TypeName: "text", Key: true}, {Name: "id", TypeOID: 23, TypeName: "integer", Key: true}}}
	v1.ComputeVersion()
	v2 := &schemas.TableSchema{Schema: "public", Name: "goods", Generation: 16390, Columns: v1.Columns, DDL: []string{"ALTER TABLE public.items RENAME TO goods"}}
	v2.ComputeVersion()
	entry := func(kind string, lsn schemas.LSN, ts *schemas.TableSchema) *schemas.ManifestEntry {
		at := t0.Add(time.Duration(lsn>>12) * time.Second)
		return &schemas.ManifestEntry{Tenant: "acme", Kind: kind, Created: at, Writer: "w1",
			First: schemas.Pos{LSN: lsn}, Last: schemas.Pos{LSN: lsn, Seq: 1}, MinTime: at, MaxTime: at, CompleteLSN: lsn, CompleteTime: at,
			Objects: []schemas.ObjectRef{{Key: schemas.ObjectDir("acme", kind, lsn) + "public." + ts.Name + "-" + ts.Version + ".parquet",
				Table: ts.QualifiedName(), SchemaVersion: ts.Version, Rows: 1, Bytes: 100, First: schemas.Pos{LSN: lsn}, Last: schemas.Pos{LSN: lsn, Seq: 1}, MinTime: at}},
			Tables: map[string]*schemas.TableSchema{ts.Version: ts}}
	}
	for i, e := range []*schemas.ManifestEntry{entry(schemas.EntrySnapshot, 0x1000, v1), entry(schemas.EntrySegment, 0x3000, v2)} {
		if err := catalog.Append(t.Context(), st, e, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	store := "file://" + dir
	tenantwal(t, 30*time.Second, "ls", "--store", store, "--schemas").want(t, 1, "--schemas", "--tenant")
	tenantwal(t, 30*time.Second, "ls", "--store", store, "--tenant", "acme", "--schemas").want(t, 0,
		"TABLE", "public.items  "+v1.Version+"  2026-11-23T10:15:01Z (0/1000)  tenant_id text, id integer  -",
		"public.goods  "+v2.Version+"  2026-11-23T10:15:03Z (0/3000)  tenant_id text, id integer  ALTER TABLE public.items RENAME TO goods")
	r := tenantwal(t, 30*time.Second, "ls", "--store", store, "--tenant", "acme", "--schemas", "--json")
	r.want(t, 0)
	var ls struct {
		Schemas []struct {
			Table, Version, FirstLSN string
			DDL                      []string
		} `json:"schemas"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ls); err != nil {
		t.Fatalf("ls --json: %v\n%s", err, r.stdout)
	}
	if len(ls.Schemas) != 2 || ls.Schemas[0].Table != "public.items" || ls.Schemas[1].Table != "public.goods" ||
		len(ls.Schemas[1].DDL) != 1 || ls.Schemas[0].Version != v1.Version {
		t.Fatalf("ls --schemas --json: %s", r.stdout)
	}
}
