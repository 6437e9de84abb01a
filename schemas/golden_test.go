package schemas_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/schemas"
)

// update rewrites the golden files: go test ./schemas -run Golden -update.
// Only do it on purpose, with a version bump: archives written by older
// builds must stay readable.
var update = flag.Bool("update", false, "rewrite the golden files")

func goldenBatch() *schemas.Batch {
	ts := &schemas.TableSchema{
		RelID: 16401, Schema: "public", Name: "accounts", ReplicaIdentity: 'd',
		Columns: []schemas.Column{
			{Name: "tenant_id", TypeOID: 25, TypeMod: -1, TypeName: "text", Key: true, NotNull: true},
			{Name: "id", TypeOID: 20, TypeMod: -1, TypeName: "bigint", Key: true, NotNull: true, Default: "nextval('accounts_id_seq'::regclass)"},
			{Name: "status", TypeOID: 16390, TypeMod: -1, TypeName: "public.account_status"},
			{Name: "profile", TypeOID: 3802, TypeMod: -1, TypeName: "jsonb"},
		},
		PrimaryKey:   []string{"tenant_id", "id"},
		TenantColumn: "tenant_id",
		Types:        []schemas.TypeDef{{Name: "public.account_status", Kind: 'e', Labels: []string{"trial", "active"}}},
	}
	ts.Version = ts.ComputeVersion()
	text := func(s string) schemas.Value { return schemas.Value{Kind: schemas.ValueText, Data: []byte(s)} }
	return &schemas.Batch{
		Kind: schemas.KindChanges, Tenant: "umbrella corp/eu.west", CommitLSN: 0x16_B374D848, EndLSN: 0x16_B374D880,
		CommitTime: time.Date(2026, 11, 23, 10, 15, 0, 123456000, time.UTC), XID: 748, Chunk: 0, Final: true,
		Tables: []*schemas.TableSchema{ts},
		Events: []schemas.Event{
			{Seq: 0, Op: schemas.OpInsert, New: []schemas.Value{text("umbrella corp/eu.west"), text("1"), text("trial"), text(`{"a": [1, "ü"]}`)}},
			{Seq: 1, Op: schemas.OpUpdate, New: []schemas.Value{text("umbrella corp/eu.west"), text("1"), text("active"), {Kind: schemas.ValueUnchanged}}},
			{Seq: 2, Op: schemas.OpDelete, Old: []schemas.Value{text("umbrella corp/eu.west"), text("1"), {Kind: schemas.ValueNull}, {Kind: schemas.ValueNull}}},
		},
	}
}

// TestGoldenBatchV1 pins the version 1 wire encoding: the golden bytes must
// decode to the same batch, and encoding the batch must give the same bytes.
func TestGoldenBatchV1(t *testing.T) {
	path := filepath.Join("testdata", "batch_v1.hex")
	b := goldenBatch()
	enc, err := b.AppendEncode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(path, []byte(hex.EncodeToString(enc)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	golden, err := hex.DecodeString(string(bytes.TrimSpace(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, golden) {
		t.Errorf("the encoding of the golden batch changed; bump schemas.BatchVersion and keep decoding version 1")
	}
	got, err := schemas.DecodeBatch(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Errorf("golden bytes decode to\n%+v\nwant\n%+v", got, b)
	}
}

// TestGoldenManifestV1 pins the manifest entry JSON that archives hold.
func TestGoldenManifestV1(t *testing.T) {
	path := filepath.Join("testdata", "manifest_v1.json")
	b := goldenBatch()
	e := &schemas.ManifestEntry{
		Version: schemas.ManifestVersion, Tenant: b.Tenant, Seq: 7, Kind: schemas.EntrySegment,
		Created: time.Date(2026, 11, 23, 10, 15, 5, 0, time.UTC), Writer: "host:42",
		First: schemas.Pos{LSN: b.CommitLSN, Seq: 0}, Last: schemas.Pos{LSN: b.CommitLSN, Seq: 2},
		MinTime: b.CommitTime, MaxTime: b.CommitTime, CompleteLSN: b.CommitLSN, CompleteTime: b.CommitTime,
		Objects: []schemas.ObjectRef{{
			Key: schemas.ObjectDir(b.Tenant, "segments", b.CommitLSN) + "public.accounts-" + b.Tables[0].Version + ".parquet", Table: "public.accounts",
			SchemaVersion: b.Tables[0].Version, Rows: 3, Bytes: 2048, SHA256: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
			First: schemas.Pos{LSN: b.CommitLSN, Seq: 0}, Last: schemas.Pos{LSN: b.CommitLSN, Seq: 2}, MinTime: b.CommitTime,
		}},
		Tables: map[string]*schemas.TableSchema{b.Tables[0].Version: b.Tables[0]},
	}
	if *update {
		out, err := json.MarshalIndent(e, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := schemas.DecodeManifestEntry(raw)
	if err != nil {
		t.Fatal(err)
	}
	// The object key carries a random part; compare everything else.
	want := *e
	want.Objects = append([]schemas.ObjectRef(nil), e.Objects...)
	want.Objects[0].Key = got.Objects[0].Key
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("golden manifest decodes to\n%+v\nwant\n%+v", got, &want)
	}
	if tn, err := schemas.TenantFromKey(got.Objects[0].Key); err != nil || tn != b.Tenant {
		t.Errorf("golden object key %s: tenant %q, %v", got.Objects[0].Key, tn, err)
	}
}

// TestGoldenGapV1 pins the version 1 gap record: the golden file must
// decode to the same record.
func TestGoldenGapV1(t *testing.T) {
	path := filepath.Join("testdata", "gap_v1.json")
	prev := &schemas.Baseline{Version: 1, SystemID: "7311111111111111111", Timeline: 1, Database: "app", Slot: "tenantwal",
		LSN: 0x1_6B3000, Time: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), Partitions: 16}
	g := &schemas.Gap{
		Version: schemas.GapVersion, Seq: 1, Reason: schemas.GapSlotLost,
		Detail:   "replication slot tenantwal was invalidated (wal_status lost)",
		Detected: time.Date(2026, 11, 23, 10, 20, 0, 0, time.UTC),
		FromLSN:  0x16_B374D848, FromTime: time.Date(2026, 11, 23, 10, 15, 0, 123456000, time.UTC),
		ToLSN: 0x17_00000027, ToTime: time.Date(2026, 11, 23, 10, 20, 1, 500000000, time.UTC),
		Previous: prev,
		Next: schemas.Baseline{Version: 1, SystemID: "7311111111111111111", Timeline: 1, Database: "app", Slot: "tenantwal",
			LSN: 0x17_00000027, Time: time.Date(2026, 11, 23, 10, 20, 1, 500000000, time.UTC), Partitions: 16},
	}
	if *update {
		out, err := json.MarshalIndent(g, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := schemas.DecodeGap(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, g) {
		t.Errorf("golden gap record decodes to\n%+v\nwant\n%+v", got, g)
	}
	if !got.Contains(g.FromLSN+1, time.Time{}) || got.Contains(g.FromLSN, time.Time{}) || got.Contains(g.ToLSN, time.Time{}) {
		t.Errorf("Contains: the gap's ends are restorable, the points between are not")
	}
}

// goldenTable is a table version with every optional field capture records
// for a restore to recreate the table: collations, generated columns,
// indexes with their definition, constraints of every kind.
func goldenTable() *schemas.TableSchema {
	missing := "42"
	ts := &schemas.TableSchema{
		RelID: 16420, Schema: "tenant_c", Name: "orders", ReplicaIdentity: 'd',
		Columns: []schemas.Column{
			{Name: "id", TypeOID: 20, TypeMod: -1, TypeName: "bigint", Key: true, NotNull: true, Default: "nextval('tenant_c.orders_id_seq'::regclass)", Num: 1},
			{Name: "customer_id", TypeOID: 23, TypeMod: -1, TypeName: "integer", NotNull: true, Num: 2},
			{Name: "code", TypeOID: 25, TypeMod: -1, TypeName: "text", Default: "'INV-'::text || nextval('public.invoice_no'::regclass)", Num: 3, Collation: `"C"`},
			{Name: "qty", TypeOID: 23, TypeMod: -1, TypeName: "integer", Num: 5, Missing: &missing},
		},
		PrimaryKey: []string{"id"},
		Indexes: []schemas.IndexDef{
			{Method: "btree", Columns: []string{"customer_id"}, Name: "orders_customer", Def: "(customer_id DESC) INCLUDE (code)"},
			{Unique: true, Method: "btree", Name: "orders_lower_code", Def: "(lower(code)) WHERE (code IS NOT NULL)"},
		},
		Constraints: []schemas.ConstraintDef{
			{Name: "qty_positive", Type: "c", Def: "CHECK ((qty > 0)) NOT VALID"},
			{Name: "one_code", Type: "u", Def: "UNIQUE NULLS NOT DISTINCT (customer_id, code)"},
			{Name: "orders_customer_fkey", Type: "f", Def: "FOREIGN KEY (customer_id) REFERENCES tenant_c.customers(id) ON DELETE CASCADE DEFERRABLE",
				Columns: []string{"customer_id"}, RefSchema: "tenant_c", RefTable: "customers", RefColumns: []string{"id"}, Actions: " ON DELETE CASCADE DEFERRABLE"},
		},
		Generated:  []schemas.GeneratedColumn{{Name: "double", Num: 4, TypeName: "integer", Expr: "(qty * 2)", NotNull: true}},
		Generation: 16420,
		Types:      []schemas.TypeDef{{Name: "public.mood", Kind: 'e', Labels: []string{"unhappy", "ok"}, LabelOIDs: []uint32{16401, 16403}}},
		DDL:        []string{"ALTER TABLE tenant_c.orders ADD COLUMN qty int DEFAULT 42"},
	}
	ts.ComputeVersion()
	return ts
}

// TestGoldenTableSchemaV1 pins the JSON of a table version with every
// optional field, and its version digest: the golden file must decode to
// the same table and the table must encode to the same bytes.
func TestGoldenTableSchemaV1(t *testing.T) {
	path := filepath.Join("testdata", "table_schema_v1.json")
	ts := goldenTable()
	enc, err := json.MarshalIndent(ts, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	enc = append(enc, '\n')
	if *update {
		if err := os.WriteFile(path, enc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, raw) {
		t.Errorf("the JSON of the golden table schema changed:\n%s\nwant\n%s", enc, raw)
	}
	var got schemas.TableSchema
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, ts) {
		t.Errorf("golden table schema decodes to\n%+v\nwant\n%+v", &got, ts)
	}
	if v := got.Version; got.ComputeVersion() != v {
		t.Errorf("version digest of the golden table schema: %s, the file says %s", got.Version, v)
	}
	noDDL := got
	noDDL.DDL = nil
	if noDDL.ComputeVersion() != got.Version {
		t.Errorf("the DDL text changes the version digest")
	}
}
