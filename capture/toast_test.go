package capture_test

import (
	"fmt"
	"testing"

	"github.com/tenantwal/tenantwal/capture/route"
)

// bigValue is an SQL expression for an incompressible text of about 12.8 kB
// that differs per row (seeded by the integer expression seed).
func bigValue(seed string) string {
	return fmt.Sprintf(`(SELECT string_agg(md5(%s || '-' || g || random()::text), '') FROM generate_series(1, 400) g)`, seed)
}

// TestUnchangedToastRestoredExactly updates other columns of rows whose
// large text is stored out of line, under each replica identity: pgoutput
// sends the text as "unchanged" in the new row, and every restore must hold
// the original bytes.
func TestUnchangedToastRestoredExactly(t *testing.T) {
	for _, tc := range []struct {
		name, ddl string
	}{
		{"full with pk", `CREATE TABLE public.docs (tenant_id text NOT NULL, id int PRIMARY KEY, n int, big text);
			ALTER TABLE public.docs REPLICA IDENTITY FULL`},
		{"full without pk", `CREATE TABLE public.docs (tenant_id text NOT NULL, id int, n int, big text);
			ALTER TABLE public.docs REPLICA IDENTITY FULL`},
		{"default", `CREATE TABLE public.docs (tenant_id text NOT NULL, id int, n int, big text, PRIMARY KEY (tenant_id, id))`},
	} {
		t.Run(tc.name, func(t *testing.T) { testUnchangedToast(t, tc.ddl) })
	}
}

func testUnchangedToast(t *testing.T, ddl string) {
	docs := table{"public", "docs", "tenant_id"}
	e := newEnv(t, route.Config{Model: route.Pool})
	e.exec(ddl)
	e.exec(`ALTER TABLE public.docs ALTER COLUMN big SET STORAGE EXTERNAL`)
	// Tenant a has ids 1..3, b has 12 and 13.
	e.exec(`INSERT INTO public.docs SELECT t, CASE t WHEN 'a' THEN i ELSE i + 10 END, 0, ` + bigValue("i") +
		` FROM unnest(ARRAY['a', 'b']) t, generate_series(1, 3) i WHERE t = 'a' OR i > 1`)
	var external int
	if err := e.pool.QueryRow(t.Context(), `SELECT count(*) FROM public.docs WHERE pg_column_size(big) > 12000`).Scan(&external); err != nil || external != 5 {
		t.Fatalf("want 5 uncompressed values of 12.8 kB, got %d (%v)", external, err)
	}
	tenants := map[string][]table{"a": {docs}, "b": {docs}}

	p := e.start()
	e.waitBaseline()
	var cps []checkpoint
	// The prior version is in the snapshot.
	e.exec(`UPDATE public.docs SET n = n + 1 WHERE tenant_id = 'a'`)
	cps = append(cps, e.checkpoint(tenants))
	// The prior version is in a segment: an insert, then updates in later
	// transactions, and two updates in one transaction.
	e.exec(`INSERT INTO public.docs SELECT 'b', 20 + i, 0, ` + bigValue("i") + ` FROM generate_series(1, 2) i`)
	cps = append(cps, e.checkpoint(tenants))
	e.exec(`UPDATE public.docs SET n = 7 WHERE tenant_id = 'b'`)
	cps = append(cps, e.checkpoint(tenants))
	e.exec(`BEGIN; UPDATE public.docs SET n = 8 WHERE id = 21; UPDATE public.docs SET n = 9 WHERE id = 21; COMMIT`)
	cps = append(cps, e.checkpoint(tenants))
	// A key change keeps the large value.
	e.exec(`UPDATE public.docs SET id = id + 100 WHERE tenant_id = 'a' AND id = 2`)
	e.exec(`UPDATE public.docs SET n = 10 WHERE id = 102`)
	cps = append(cps, e.checkpoint(tenants))
	// Changing the large value itself, then another column again.
	e.exec(`UPDATE public.docs SET big = ` + bigValue("1000") + ` WHERE id = 1`)
	e.exec(`UPDATE public.docs SET n = 11 WHERE id = 1`)
	cps = append(cps, e.checkpoint(tenants))

	for _, cp := range cps {
		e.verify(cp)
	}
	p.Stop(t)
}

// TestUnchangedToastTenantMove moves a row with an out-of-line value to
// another tenant. Under REPLICA IDENTITY FULL the old row carries the
// value. Under the default identity pgoutput sends only the key of the old
// row and "unchanged" for the value in the new one: the new tenant's archive
// has no earlier version of the row to take it from.
func TestUnchangedToastTenantMove(t *testing.T) {
	for _, tc := range []struct {
		name, ddl string
	}{
		{"full", `CREATE TABLE public.docs (tenant_id text NOT NULL, id int PRIMARY KEY, n int, big text);
			ALTER TABLE public.docs REPLICA IDENTITY FULL`},
		{"default", `CREATE TABLE public.docs (tenant_id text NOT NULL, id int, n int, big text, PRIMARY KEY (tenant_id, id))`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs := table{"public", "docs", "tenant_id"}
			e := newEnv(t, route.Config{Model: route.Pool})
			e.exec(tc.ddl)
			e.exec(`ALTER TABLE public.docs ALTER COLUMN big SET STORAGE EXTERNAL`)
			e.exec(`INSERT INTO public.docs SELECT 'a', i, 0, ` + bigValue("i") + ` FROM generate_series(1, 3) i`)
			e.exec(`INSERT INTO public.docs VALUES ('b', 9, 0, 'small')`)
			tenants := map[string][]table{"a": {docs}, "b": {docs}}
			p := e.start()
			e.waitBaseline()
			e.exec(`UPDATE public.docs SET tenant_id = 'b' WHERE tenant_id = 'a' AND id = 1`)
			e.exec(`INSERT INTO public.docs SELECT 'a', 4, 0, ` + bigValue("4"))
			e.exec(`UPDATE public.docs SET tenant_id = 'b', n = 5 WHERE tenant_id = 'a' AND id = 4`)
			e.verify(e.checkpoint(tenants))
			p.Stop(t)
		})
	}
}
