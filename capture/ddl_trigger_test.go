package capture_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/pipetest"
	"github.com/tenantwal/tenantwal/schemas"
)

// TestDDLRecordedByEventTrigger runs DDL that no change of the table
// follows (ADD COLUMN, CREATE INDEX, an enum's RENAME VALUE, RENAME of the
// table, DROP INDEX, DROP TABLE, DROP SCHEMA … CASCADE of a bridge tenant): only the event trigger Init
// installs tells the archive. Restores to each moment, by LSN and by time,
// give that moment's tables, columns, indexes and rows: a renamed table
// under its new name with all its rows, a dropped one absent, a new table
// under a renamed table's old name apart from it. The archive records each
// command's text with the version it made (a drop makes none), and only
// the tag of a command sent with other statements in one query string.
// DDL run while capture is down is archived when it restarts, each with
// the columns and indexes its command saw, though capture decodes it later.
func TestDDLRecordedByEventTrigger(t *testing.T) {
	e := newEnv(t, route.Config{Model: route.Mixed})
	e.exec(`CREATE TABLE public.items (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id))`)
	e.exec(`INSERT INTO public.items SELECT t, i, t || i FROM unnest(ARRAY['a', 'b']) t, generate_series(1, 5) i`)
	e.exec(`CREATE SCHEMA tenant_x; CREATE TABLE tenant_x.t (id int PRIMARY KEY, note text); INSERT INTO tenant_x.t VALUES (1, 'x1'), (2, 'x2')`)
	e.exec(`CREATE TYPE public.mood AS ENUM ('sad', 'ok');
		CREATE TABLE public.moods (tenant_id text NOT NULL, id int NOT NULL, m public.mood, ms public.mood[], PRIMARY KEY (tenant_id, id));
		INSERT INTO public.moods VALUES ('a', 1, 'sad', '{sad,ok}'), ('b', 1, 'ok', '{sad}')`)
	items, goods := table{"public", "items", "tenant_id"}, table{"public", "goods", "tenant_id"}
	xt, xu := table{"tenant_x", "t", ""}, table{"tenant_x", "u", ""}
	extra := table{"public", "extra", "tenant_id"}
	moods := table{"public", "moods", "tenant_id"}
	tenants := map[string][]table{"a": {items, goods, extra, moods}, "b": {items, goods, extra, moods}, "x": {xt, xu}}

	p := e.start()
	if got := e.query(`SELECT count(*) FROM pg_event_trigger WHERE evtname IN ('tenantwal_ddl_end', 'tenantwal_sql_drop') AND evtenabled = 'O'`)[0]; got != "2" {
		t.Fatalf("Init installed %s of the 2 DDL event triggers", got)
	}
	e.waitBaseline()
	var cps []stateCP
	step := func(name string) { e.step(&cps, name, tenants) }
	step("snapshot")

	e.exec(`ALTER TABLE public.items ADD COLUMN n int NOT NULL DEFAULT 7`)
	step("add column, no change after it")
	e.exec(`CREATE INDEX items_v ON public.items (v)`)
	step("create index")
	e.exec(`ALTER TYPE public.mood RENAME VALUE 'sad' TO 'unhappy'`)
	step("enum label renamed")
	e.exec(`ALTER TABLE public.items RENAME TO goods`)
	step("rename table")
	e.exec(`DROP INDEX public.items_v`)
	step("drop index")
	e.exec(`ALTER TABLE public.goods RENAME COLUMN v TO label`)
	e.exec(`UPDATE public.goods SET label = 'after rename' WHERE tenant_id = 'a' AND id = 1`)
	step("rename column, then a change")
	e.exec(`CREATE TABLE public.items (tenant_id text NOT NULL, id int, w int, PRIMARY KEY (tenant_id, id))`)
	e.exec(`INSERT INTO public.items VALUES ('a', 1, 1)`)
	step("a new table under the renamed one's old name")
	e.exec(`DROP TABLE public.goods`)
	step("drop table")
	e.exec(`ALTER TABLE tenant_x.t ADD COLUMN extra int DEFAULT 3`)
	e.exec(`CREATE TABLE tenant_x.u (id int PRIMARY KEY)`)
	e.exec(`INSERT INTO tenant_x.u VALUES (1)`)
	step("bridge tenant: add column, new table")
	e.exec(`DROP SCHEMA tenant_x CASCADE`)
	step("bridge tenant schema dropped")
	e.exec(`ALTER TABLE public.items ADD COLUMN z int; UPDATE public.items SET z = 1 WHERE tenant_id = 'a'`)
	step("DDL with DML in one query string")
	// The swap migrations, each in one transaction: a table dropped and
	// created again under its name, with rows; a new table built beside
	// the old one and renamed into its place.
	e.exec(`BEGIN; DROP TABLE public.moods;
		CREATE TABLE public.moods (tenant_id text NOT NULL, id int, note text, PRIMARY KEY (tenant_id, id));
		INSERT INTO public.moods VALUES ('a', 1, 'again'), ('b', 2, 'again'); COMMIT`)
	step("dropped and created again in one transaction")
	e.exec(`BEGIN; CREATE TABLE public.items_new (tenant_id text NOT NULL, id int, w bigint, PRIMARY KEY (tenant_id, id));
		INSERT INTO public.items_new VALUES ('a', 5, 5), ('b', 6, 6);
		DROP TABLE public.items; ALTER TABLE public.items_new RENAME TO items; COMMIT`)
	step("swapped in by rename in one transaction")

	// DDL while capture is down: replayed from the slot by a capture that
	// has not seen the tables since it started.
	e.exec(`CREATE TABLE public.extra (tenant_id text NOT NULL, id int, PRIMARY KEY (tenant_id, id))`)
	e.exec(`INSERT INTO public.extra VALUES ('a', 1), ('b', 1)`)
	step("another table")
	p.Stop(t)
	e.exec(`DROP TABLE public.extra`)
	e.exec(`ALTER TABLE public.items ADD COLUMN while_down text DEFAULT 'd'`)
	// A row change after it: decoded once the index below exists, its
	// version must still have the catalog the command left.
	e.exec(`INSERT INTO public.items (tenant_id, id) VALUES ('a', 77)`)
	cps = append(cps, e.state("DDL while capture was down", tenants))
	// Decoded after this too: the shape above is the one its command saw.
	e.exec(`ALTER TABLE public.items ADD COLUMN later int, ALTER COLUMN w TYPE bigint`)
	e.exec(`CREATE INDEX items_w ON public.items (w)`)
	cps = append(cps, e.state("more DDL while capture was down", tenants))
	p = e.start()
	step("capture back")

	for _, cp := range cps {
		e.verifyState(cp)
	}

	ten, err := catalog.LoadTenant(t.Context(), e.store, "a")
	if err != nil {
		t.Fatal(err)
	}
	var ddl []string
	for _, en := range ten.Entries {
		for _, ts := range en.Tables {
			for _, d := range ts.DDL {
				if !slices.Contains(ddl, d) {
					ddl = append(ddl, d)
				}
			}
		}
	}
	for _, want := range []string{
		`ALTER TABLE public.items ADD COLUMN n int NOT NULL DEFAULT 7`,
		`CREATE INDEX items_v ON public.items (v)`,
		`ALTER TABLE public.items RENAME TO goods`,
		`CREATE TABLE public.items (tenant_id text NOT NULL, id int, w int, PRIMARY KEY (tenant_id, id))`,
		`ALTER TABLE (text not recorded: the query string held 2 statements)`,
	} {
		if !slices.Contains(ddl, want) {
			t.Errorf("tenant a's archive lacks the DDL %q; it has:\n%s", want, strings.Join(ddl, "\n"))
		}
	}
	for _, d := range ddl {
		if strings.Contains(d, "tenant_x") || strings.Contains(d, "UPDATE") {
			t.Errorf("tenant a's archive records another tenant's or a DML statement: %q", d)
		}
	}
	if ten.Range.ToLSN < cps[len(cps)-1].LSN {
		t.Errorf("tenant a archived up to %s, want at least %s", ten.Range.ToLSN, cps[len(cps)-1].LSN)
	}
	// The drop of public.moods has the command's place in its
	// transaction: before the rows written to the table created again.
	var moodsChanges []string
	for _, en := range ten.Entries {
		for _, o := range en.Objects {
			if o.Table == "public.moods" && en.Kind == "segment" {
				moodsChanges = append(moodsChanges, pipetest.ObjectChanges(t, e.store, o.Key)...)
			}
		}
	}
	// "lsn#seq op": the drop's transaction, and its inserts' seqs.
	var dropLSN string
	dropSeq, inserts := -1, []int{}
	for _, c := range moodsChanges {
		if at, ok := strings.CutSuffix(c, " X"); ok {
			l, seq, _ := strings.Cut(at, "#")
			dropLSN, dropSeq = l, atoi(t, seq)
		}
	}
	for _, c := range moodsChanges {
		if at, ok := strings.CutSuffix(c, " I"); ok && strings.HasPrefix(at, dropLSN+"#") {
			inserts = append(inserts, atoi(t, strings.TrimPrefix(at, dropLSN+"#")))
		}
	}
	if dropSeq < 0 || len(inserts) == 0 || slices.Min(inserts) < dropSeq {
		t.Errorf("tenant a's public.moods changes %q: want the drop (X) before the inserts (I) of its transaction", moodsChanges)
	}
	p.Stop(t)
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDropOfUnpublishedTableMarksNothing: with a publication that lists
// its tables (--tables), dropping a table it does not list writes no drop
// marker to the tenants' archives (there would be one per pool tenant).
func TestDropOfUnpublishedTableMarksNothing(t *testing.T) {
	e := newEnv(t, route.Config{Model: route.Pool})
	e.cfg.Tables = []string{"public.items"}
	e.exec(`CREATE TABLE public.items (tenant_id text NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
		CREATE TABLE public.scratch (tenant_id text NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
		INSERT INTO public.items VALUES ('a', 1), ('b', 1); INSERT INTO public.scratch VALUES ('a', 1)`)
	p := e.start()
	e.waitBaseline()
	e.exec(`DROP TABLE public.scratch`)
	e.exec(`INSERT INTO public.items VALUES ('a', 2), ('b', 2)`)
	lsn := e.checkpoint(nil).LSN
	for _, tenant := range []string{"a", "b"} {
		e.waitArchived(tenant, lsn)
		ten, err := catalog.LoadTenant(t.Context(), e.store, schemas.TenantID(tenant))
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range ten.Entries {
			for _, o := range en.Objects {
				if o.Table != "public.items" {
					t.Errorf("tenant %q: entry %d holds %s of %s, a table the publication does not list", tenant, en.Seq, o.Key, o.Table)
				}
			}
		}
	}
	p.Stop(t)
}
