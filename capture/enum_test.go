package capture_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/pgtest"
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
	step := func(name string) {
		cp := e.state(name, tenants)
		cps = append(cps, cp)
		for tenant := range tenants {
			e.waitRestorable(tenant, cp.LSN, cp.Time)
		}
	}
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
	var got string
	if err := e.rpool.QueryRow(t.Context(), labels).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("labels in the restore database: %s, source: %s", got, want)
	}

	// Into a fresh database: the type is created as it was at the last point.
	e.rdsn = pgtest.NewDB(t)
	rpool, err := pgxpool.New(t.Context(), e.rdsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rpool.Close)
	e.rpool = rpool
	e.verifyState(cps[len(cps)-1])
	if err := e.rpool.QueryRow(t.Context(), labels).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("labels in a fresh restore database: %s, source: %s", got, want)
	}
	p.Stop(t)
}
