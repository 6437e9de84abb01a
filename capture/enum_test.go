package capture_test

import (
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// TestEnumLabelAddedMidStream adds enum labels (at the end and before an
// existing one) while capture runs and uses them right away, in a plain
// and an array column. Restores at every point equal the source, both into
// a database where an earlier restore already created the type with fewer
// labels (they are added) and into a fresh one (the type is created with
// the labels of the restore point, in order).
func TestEnumLabelAddedMidStream(t *testing.T) {
	e := newEnv(t, route.Config{Model: route.Pool})
	e.exec(`CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
		CREATE TABLE public.feelings (tenant_id text NOT NULL, id int NOT NULL, m public.mood, ms public.mood[], PRIMARY KEY (tenant_id, id))`)
	e.exec(`INSERT INTO public.feelings VALUES ('a', 1, 'sad', '{ok,happy}'), ('b', 1, 'ok', NULL)`)
	tenants := tenantsOf([]table{{"public", "feelings", "tenant_id"}}, "a", "b")
	labels := `SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = 'public.mood'::regtype`

	p := e.start()
	e.waitBaseline()
	var cps []stateCP
	// Each step is archived before the next DDL, so capture has seen the
	// table's version before the label is added (else its catalog read at
	// the first change would already list it).
	step := func(name string) { e.step(&cps, name, tenants) }
	e.exec(`UPDATE public.feelings SET ms = '{sad}' WHERE tenant_id = 'b'`)
	step("before")

	e.exec(`ALTER TYPE public.mood ADD VALUE 'ecstatic' AFTER 'happy'`)
	e.exec(`INSERT INTO public.feelings VALUES ('a', 2, 'ecstatic', '{sad,ecstatic}')`)
	step("label added at the end")

	e.exec(`ALTER TYPE public.mood ADD VALUE 'meh' BEFORE 'ok'`)
	e.exec(`UPDATE public.feelings SET m = 'meh' WHERE tenant_id = 'b' AND id = 1`)
	e.exec(`UPDATE public.feelings SET ms = '{meh,NULL,ecstatic}' WHERE tenant_id = 'a' AND id = 1`)
	step("label added before another")

	// In order, into one database: the first restore creates the type with
	// three labels, the later ones add the new labels.
	for _, cp := range cps {
		e.verifyState(cp)
	}
	want := e.query(labels)[0]
	e.checkRestoredLabels(labels, want, "the restore database")

	// Into a fresh database: the type is created as it was at the last point.
	e.useFreshRestoreDB()
	e.verifyState(cps[len(cps)-1])
	e.checkRestoredLabels(labels, want, "a fresh restore database")
	p.Stop(t)
}

// TestEnumLabelRenamedMidStream renames enum labels (ALTER TYPE … RENAME
// VALUE) while capture runs. Rows archived before a rename hold the old
// label (in the snapshot and in a change segment); after it an update of
// another column, a new row and a second rename (to a label arrays must
// quote) follow, in plain, array (multi-dimensional too) and domain
// columns. Restores at every point equal the source at that point: in
// order into one database (the type an earlier restore created is renamed
// as the source's was), into a fresh database each, and again at the
// first point into the database whose type is already renamed. A restore
// into the source database itself uses the source type's labels and adds
// none.
func TestEnumLabelRenamedMidStream(t *testing.T) {
	e := newEnv(t, route.Config{Model: route.Pool})
	e.exec(`CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
		CREATE DOMAIN public.dmood AS public.mood;
		CREATE TABLE public.feelings (tenant_id text NOT NULL, id int NOT NULL, m public.mood, ms public.mood[], d public.dmood, note text,
			PRIMARY KEY (tenant_id, id));
		CREATE TABLE public.quiet (tenant_id text NOT NULL, id int NOT NULL, m public.mood, PRIMARY KEY (tenant_id, id))`)
	e.exec(`INSERT INTO public.feelings VALUES ('a', 1, 'sad', '{sad,ok}', 'sad', 'snapshot'),
		('b', 1, 'ok', '{{sad,NULL},{happy,sad}}', NULL, 'snapshot');
		INSERT INTO public.quiet VALUES ('a', 1, 'sad'), ('b', 1, 'ok')`)
	// No row of public.quiet uses a renamed label after the renames:
	// capture gives it a new version when it notices them in feelings
	// (it knows the table from its change before the first rename).
	tenants := tenantsOf([]table{{"public", "feelings", "tenant_id"}, {"public", "quiet", "tenant_id"}}, "a", "b")
	labels := `SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = 'public.mood'::regtype`

	p := e.start()
	e.waitBaseline()
	var cps []stateCP
	step := func(name string) { e.step(&cps, name, tenants) }
	e.exec(`INSERT INTO public.feelings VALUES ('a', 2, 'sad', '{"sad",happy,NULL}', 'happy', 'change');
		INSERT INTO public.quiet VALUES ('b', 2, 'sad')`)
	step("before the rename")

	e.exec(`ALTER TYPE public.mood RENAME VALUE 'sad' TO 'unhappy'`)
	e.exec(`UPDATE public.feelings SET note = 'updated' WHERE tenant_id = 'a' AND id = 1`)
	step("renamed, another column updated")

	e.exec(`INSERT INTO public.feelings VALUES ('a', 3, 'unhappy', '{unhappy,ok}', 'unhappy', 'new label')`)
	step("a row with the new label")

	e.exec(`ALTER TYPE public.mood RENAME VALUE 'ok' TO 'so, so'`)
	e.exec(`UPDATE public.feelings SET note = 'updated' WHERE tenant_id = 'b'`)
	step("renamed to a label with a comma and a space")

	// public.quiet has a version with the new labels, marked for both
	// tenants.
	for tenant := range tenants {
		ten, err := catalog.LoadTenant(t.Context(), e.store, schemas.TenantID(tenant))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, en := range ten.Entries {
			for _, ts := range en.Tables {
				found = found || ts.Name == "quiet" && len(ts.Types) == 1 && slices.Contains(ts.Types[0].Labels, "so, so")
			}
		}
		if !found {
			t.Errorf("tenant %q: no version of public.quiet lists the renamed labels", tenant)
		}
	}

	// In order, into one database: the first restore creates the type,
	// the later ones rename its labels.
	for _, cp := range cps {
		e.verifyState(cp)
	}
	want := e.query(labels)[0]
	e.checkRestoredLabels(labels, want, "the restore database")
	// The first point again, into that database: the old label is added
	// to the copy, the rows hold it.
	e.verifyState(cps[0])

	// Into a fresh database each: the type is created as it was at the point.
	for _, cp := range cps {
		e.useFreshRestoreDB()
		e.verifyState(cp)
	}
	p.Stop(t)

	// Into the source database: the type is the source's own, so rows of
	// the first point hold its current label and no label is added.
	e.rdsn, e.rpool = e.dsn, e.pool
	restored, err := e.restore("a", replayer.Target{LSN: cps[0].LSN})
	if err != nil {
		t.Fatal(err)
	}
	rows := e.query(`SELECT concat_ws(' ', id, m, ms, d) FROM ` + restored["public.feelings"] + ` ORDER BY id`)
	if w := []string{"1 unhappy {unhappy,\"so, so\"} unhappy", "2 unhappy {unhappy,happy,NULL} happy"}; !slices.Equal(rows, w) {
		t.Errorf("restored into the source database: %q, want %q", rows, w)
	}
	if got := e.query(labels)[0]; got != want {
		t.Errorf("labels of the source type after a restore into the source database: %s, want %s", got, want)
	}
}

// useFreshRestoreDB makes restores go to a new database.
func (e *env) useFreshRestoreDB() {
	e.t.Helper()
	e.rdsn = pgtest.NewDB(e.t)
	rpool, err := pgxpool.New(e.t.Context(), e.rdsn)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(rpool.Close)
	e.rpool = rpool
}

// checkRestoredLabels runs the labels query in the restore database and
// compares its answer with the source's.
func (e *env) checkRestoredLabels(labels, want, where string) {
	e.t.Helper()
	var got string
	if err := e.rpool.QueryRow(e.t.Context(), labels).Scan(&got); err != nil {
		e.t.Fatal(err)
	}
	if got != want {
		e.t.Errorf("labels in %s: %s, source: %s", where, got, want)
	}
}
