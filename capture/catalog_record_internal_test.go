package capture

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/schemas"
)

// TestRecordedCatalogMatchesLive reads a table with every kind of catalog
// fact describe records (defaults, a missing value, a collation, identity,
// generated columns, enum and domain types, indexes, constraints, foreign
// keys) once from the live catalog and once from what
// tenantwal.describe_table recorded: the two give the same table version.
func TestRecordedCatalogMatchesLive(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDB(t)
	conn, err := connectSQL(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, sql := range []string{
		`CREATE SCHEMA app`,
		`CREATE TYPE app.mood AS ENUM ('sad', 'ok')`,
		`CREATE DOMAIN app.pos AS numeric(10,2) CHECK (VALUE > 0)`,
		`CREATE TABLE app.parent (id int PRIMARY KEY)`,
		`CREATE TABLE app.t (tenant_id text NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY, name text COLLATE "C" DEFAULT 'x y',
			m app.mood[], p app.pos, at timestamptz DEFAULT '2020-01-02 03:04:05+00', parent int REFERENCES app.parent ON DELETE CASCADE,
			twice bigint GENERATED ALWAYS AS (id * 2) STORED, PRIMARY KEY (tenant_id, id),
			CONSTRAINT name_len CHECK (length(name) < 100), UNIQUE (tenant_id, name))`,
		`CREATE INDEX t_lower ON app.t (lower(name)) INCLUDE (p) WHERE name IS NOT NULL`,
		`INSERT INTO app.t (tenant_id, name) VALUES ('a', 'n')`,
		`ALTER TABLE app.t ADD COLUMN n int DEFAULT 42`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA tenantwal"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, describeTableSQL()); err != nil {
		t.Fatal(err)
	}
	var relid uint32
	var raw []byte
	if err := conn.QueryRow(ctx, `SELECT 'app.t'::regclass::oid, tenantwal.describe_table('app.t'::regclass)`).Scan(&relid, &raw); err != nil {
		t.Fatal(err)
	}
	var rec recordedCatalog
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	describe := func(q querier) (*schemas.TableSchema, map[string]columnFact) {
		t.Helper()
		ts, err := loadTable(ctx, q, relid)
		if err != nil {
			t.Fatal(err)
		}
		facts, err := loadColumnFacts(ctx, q, relid)
		if err != nil {
			t.Fatal(err)
		}
		if ts.Generated, err = loadGenerated(ctx, q, relid); err != nil {
			t.Fatal(err)
		}
		if err := loadIndexesAndConstraints(ctx, q, ts); err != nil {
			t.Fatal(err)
		}
		applyColumnFacts(ts, facts)
		ts.ComputeVersion()
		return ts, facts
	}
	live, liveFacts := describe(conn)
	got, gotFacts := describe(rec)
	if !reflect.DeepEqual(got, live) {
		a, _ := json.MarshalIndent(got, "", " ")
		b, _ := json.MarshalIndent(live, "", " ")
		t.Errorf("recorded catalog describes\n%s\nthe live one\n%s", a, b)
	}
	if !reflect.DeepEqual(gotFacts, liveFacts) {
		t.Errorf("recorded column facts %+v, live %+v", gotFacts, liveFacts)
	}
	if len(live.Indexes) == 0 || len(live.Constraints) < 3 || len(live.Generated) != 1 || len(live.Types) != 2 || live.Columns[len(live.Columns)-1].Missing == nil {
		t.Errorf("the test table lacks facts it should have: %+v", live)
	}
	if _, err := rec.Query(ctx, `SELECT 1`); err == nil {
		t.Error("a query describe does not make was answered")
	}
}
