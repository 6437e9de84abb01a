package capture_test

import (
	"testing"

	"github.com/tenantwal/tenantwal/capture/route"
)

// TestDDLMidStream changes a pool table's shape while capture runs (ADD
// COLUMN with constant, stable and volatile defaults, RENAME of a column
// and of the table, type changes with and without USING, DROP COLUMN, a
// column dropped and added again under its name, new indexes, DROP and
// re-CREATE of the table, twice with the same shape), creates a new table
// and a new bridge tenant schema. It runs without the DDL event trigger:
// every checkpoint is taken after the table's next change (capture learns
// a table's new shape from it) and restores, by LSN and by time, to that
// moment's columns, primary key, indexes on plain columns and rows.
// TestDDLRecordedByEventTrigger covers DDL with no change after it.
func TestDDLMidStream(t *testing.T) {
	e := newEnv(t, route.Config{Model: route.Mixed})
	e.cfg.NoDDLTrigger = true
	e.exec(`CREATE TABLE public.items (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id))`)
	e.exec(`INSERT INTO public.items SELECT t, i, t || i FROM unnest(ARRAY['a', 'b']) t, generate_series(1, 10) i`)
	items, goods, later, bridge := table{"public", "items", "tenant_id"}, table{"public", "goods", "tenant_id"}, table{"public", "later", "tenant_id"}, table{"tenant_x", "t", ""}
	tenants := map[string][]table{"a": {items, goods, later}, "b": {items, goods, later}, "x": {bridge}}

	p := e.start()
	e.waitBaseline()
	var cps []stateCP
	// Capture reads the catalog when it decodes a table's new shape, which
	// races with later DDL (see relation in processor.go): every step waits
	// until it is archived before the next DDL.
	step := func(name string) { e.step(&cps, name, tenants, "a", "b") }
	step("snapshot")

	// Fast defaults: old rows read them without any WAL.
	e.exec(`ALTER TABLE public.items ADD COLUMN n int NOT NULL DEFAULT 42, ADD COLUMN s text DEFAULT 'x y', ADD COLUMN at timestamptz DEFAULT now(),
		ADD COLUMN bx box DEFAULT '((0,0),(1,1))'`) // a type whose arrays use ';' as delimiter
	e.exec(`INSERT INTO public.items (tenant_id, id, v) VALUES ('a', 11, 'new')`)
	step("add column with defaults")

	// Volatile defaults rewrite the table: every old row gets its own value.
	e.exec(`ALTER TABLE public.items ADD COLUMN r float8 DEFAULT random(), ADD COLUMN serial_no serial`)
	e.exec(`UPDATE public.items SET v = 'touched' WHERE tenant_id = 'a' AND id = 1`)
	step("add column with volatile defaults")

	e.exec(`CREATE UNIQUE INDEX ON public.items (tenant_id, serial_no); CREATE INDEX ON public.items USING hash (v)`)
	e.exec(`INSERT INTO public.items (tenant_id, id, v) VALUES ('b', 12, 'indexed')`)
	step("indexes created")

	e.exec(`ALTER TABLE public.items RENAME COLUMN v TO label`)
	e.exec(`UPDATE public.items SET label = 'renamed' WHERE tenant_id = 'b' AND id = 2`)
	step("rename column")

	// Type changes rewrite the table too, one of them through USING.
	e.exec(`ALTER TABLE public.items ALTER COLUMN n TYPE bigint, ALTER COLUMN s TYPE varchar(20) USING upper(s) || '!'`)
	e.exec(`INSERT INTO public.items (tenant_id, id, label) VALUES ('b', 11, 'after type change')`)
	step("type change")

	e.exec(`ALTER TABLE public.items DROP COLUMN r`)
	e.exec(`DELETE FROM public.items WHERE tenant_id = 'a' AND id = 2`)
	step("drop column")

	// Same name, new column: old rows read the new default, not the old values.
	e.exec(`ALTER TABLE public.items DROP COLUMN s; ALTER TABLE public.items ADD COLUMN s int DEFAULT 7`)
	e.exec(`UPDATE public.items SET s = 8 WHERE tenant_id = 'a' AND id = 3`)
	step("drop and add a column of the same name")

	// Renamed and back: one table, its rows under the name of the moment.
	e.exec(`ALTER TABLE public.items RENAME TO goods`)
	e.exec(`UPDATE public.goods SET label = 'in goods' WHERE tenant_id = 'b' AND id = 3`)
	step("rename table")
	e.exec(`ALTER TABLE public.goods RENAME TO items`)
	e.exec(`INSERT INTO public.items (tenant_id, id, label) VALUES ('a', 20, 'back in items')`)
	step("rename table back")

	// Dropped and created again, first with the snapshot's shape, then
	// with the same shape once more: only the new table's rows remain.
	e.exec(`DROP TABLE public.items; CREATE TABLE public.items (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id))`)
	e.exec(`INSERT INTO public.items VALUES ('a', 1, 'second table')`)
	step("drop and create")
	e.exec(`DROP TABLE public.items; CREATE TABLE public.items (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id))`)
	e.exec(`INSERT INTO public.items VALUES ('b', 5, 'third table')`)
	step("drop and create the same shape")

	// A new pool table and a new bridge tenant.
	e.exec(`CREATE TABLE public.later (tenant_id text NOT NULL, id bigint PRIMARY KEY, payload jsonb)`)
	e.exec(`INSERT INTO public.later VALUES ('a', 1, '{"k": 1}'), ('b', 2, '[]')`)
	e.exec(`CREATE SCHEMA tenant_x; CREATE TABLE tenant_x.t (id int PRIMARY KEY, note text)`)
	e.exec(`INSERT INTO tenant_x.t VALUES (1, 'x1'), (2, 'x2')`)
	step("new table and tenant schema")
	e.exec(`ALTER TABLE tenant_x.t ADD COLUMN extra numeric(6,2) DEFAULT 1.5`)
	e.exec(`INSERT INTO tenant_x.t VALUES (3, 'x3', 2)`)
	step("bridge add column")

	for _, cp := range cps {
		e.verifyState(cp)
	}
	p.Stop(t)
}
