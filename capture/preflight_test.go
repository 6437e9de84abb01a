package capture_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tenantwal/tenantwal/capture"
	"github.com/tenantwal/tenantwal/capture/route"
)

// preflightProblems runs Preflight and Init, which must both fail with the
// same problems, and returns them.
func preflightProblems(t *testing.T, e *env) []capture.Problem {
	t.Helper()
	err := capture.Preflight(t.Context(), e.cfg)
	var pre *capture.PreflightError
	if !errors.As(err, &pre) {
		t.Fatalf("Preflight: want a *PreflightError, got %v", err)
	}
	ierr := capture.Init(t.Context(), e.cfg)
	var ipre *capture.PreflightError
	if !errors.As(ierr, &ipre) {
		t.Fatalf("Init: want a *PreflightError, got %v", ierr)
	}
	if !slices.Equal(pre.Problems, ipre.Problems) {
		t.Errorf("Init reported %v, Preflight %v", ipre.Problems, pre.Problems)
	}
	if !strings.Contains(err.Error(), "nothing was created") {
		t.Errorf("error does not say nothing was created: %v", err)
	}
	return pre.Problems
}

// assertNothingCreated checks that no publication and no slot exist.
func assertNothingCreated(t *testing.T, e *env) {
	t.Helper()
	if got := e.query(`SELECT pubname::text FROM pg_publication`); len(got) != 0 {
		t.Errorf("publications created: %v", got)
	}
	if got := e.query(`SELECT slot_name::text FROM pg_replication_slots WHERE database = current_database()`); len(got) != 0 {
		t.Errorf("slots created: %v", got)
	}
}

// problemFor returns the problem naming table, failing if there is not
// exactly one.
func problemFor(t *testing.T, probs []capture.Problem, table string) capture.Problem {
	t.Helper()
	var found []capture.Problem
	for _, p := range probs {
		if strings.Contains(p.What, table+" ") || strings.Contains(p.What, table+":") {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one problem for %s, got %d in %+v", table, len(found), probs)
	}
	return found[0]
}

func TestPreflightReportsEveryProblemWithItsFix(t *testing.T) {
	e := newEnv(t, route.Config{Model: route.Pool})
	e.exec(`CREATE TABLE public.ok (tenant_id text NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id))`)
	// The tenant column is not in the primary key: a DELETE carries only id.
	e.exec(`CREATE TABLE public.items (id int PRIMARY KEY, tenant_id text NOT NULL, name text)`)
	// The tenant column is not in the replica identity index.
	e.exec(`CREATE TABLE public.notes (id int NOT NULL, tenant_id text NOT NULL, body text);
		CREATE UNIQUE INDEX notes_id ON public.notes (id);
		ALTER TABLE public.notes REPLICA IDENTITY USING INDEX notes_id`)
	// No primary key, default identity: UPDATE and DELETE would fail.
	e.exec(`CREATE TABLE public.logs (tenant_id text NOT NULL, msg text)`)
	// Not a tenant table (excluded), but FOR ALL TABLES still publishes
	// it: the customer's UPDATE and DELETE on it would fail.
	e.exec(`CREATE TABLE public.countries (code text, name text)`)
	// REPLICA IDENTITY NOTHING.
	e.exec(`CREATE TABLE public.events (tenant_id text NOT NULL, id int PRIMARY KEY); ALTER TABLE public.events REPLICA IDENTITY NOTHING`)
	// Fine: full identity, with or without the tenant column.
	e.exec(`CREATE TABLE public.full_pool (tenant_id text NOT NULL, v text); ALTER TABLE public.full_pool REPLICA IDENTITY FULL`)
	e.exec(`CREATE TABLE public.full_shared (code text, v text); ALTER TABLE public.full_shared REPLICA IDENTITY FULL`)

	probs := preflightProblems(t, e)
	assertNothingCreated(t, e)

	p := problemFor(t, probs, `"public"."items"`)
	for _, want := range []string{`ALTER TABLE "public"."items" REPLICA IDENTITY FULL`, `("tenant_id", "id")`, `REPLICA IDENTITY USING INDEX`} {
		if !strings.Contains(p.Fix, want) {
			t.Errorf("items: fix %q does not contain %q", p.Fix, want)
		}
	}
	if !strings.Contains(p.What, `"tenant_id"`) {
		t.Errorf("items: %q does not name the tenant column", p.What)
	}
	p = problemFor(t, probs, `"public"."notes"`)
	for _, want := range []string{`ALTER TABLE "public"."notes" REPLICA IDENTITY FULL`, `("tenant_id", "id")`} {
		if !strings.Contains(p.Fix, want) {
			t.Errorf("notes: fix %q does not contain %q", p.Fix, want)
		}
	}
	p = problemFor(t, probs, `"public"."logs"`)
	if !strings.Contains(p.What, "no primary key") || !strings.Contains(p.Fix, `ALTER TABLE "public"."logs" REPLICA IDENTITY FULL`) {
		t.Errorf("logs: %+v", p)
	}
	p = problemFor(t, probs, `"public"."countries"`)
	if !strings.Contains(p.What, "no primary key") || !strings.Contains(p.Fix, `ALTER TABLE "public"."countries" REPLICA IDENTITY FULL`) {
		t.Errorf("countries: %+v", p)
	}
	p = problemFor(t, probs, `"public"."events"`)
	if !strings.Contains(p.What, "NOTHING") || !strings.Contains(p.Fix, `ALTER TABLE "public"."events" REPLICA IDENTITY FULL`) {
		t.Errorf("events: %+v", p)
	}
	if len(probs) != 5 {
		t.Errorf("want 5 problems, got %d: %+v", len(probs), probs)
	}

	// Each fix works: apply them and Init succeeds, twice.
	e.exec(`CREATE UNIQUE INDEX items_ri ON public.items (tenant_id, id); ALTER TABLE public.items REPLICA IDENTITY USING INDEX items_ri`)
	e.exec(`ALTER TABLE public.notes REPLICA IDENTITY FULL`)
	e.exec(`ALTER TABLE public.logs REPLICA IDENTITY FULL`)
	e.exec(`ALTER TABLE public.countries REPLICA IDENTITY FULL`)
	e.exec(`ALTER TABLE public.events REPLICA IDENTITY DEFAULT`)
	e.exec(`ALTER TABLE public.events DROP CONSTRAINT events_pkey, ADD PRIMARY KEY (tenant_id, id)`)
	if err := capture.Preflight(t.Context(), e.cfg); err != nil {
		t.Fatalf("preflight after the fixes: %v", err)
	}
	for i := range 2 {
		if err := capture.Init(t.Context(), e.cfg); err != nil {
			t.Fatalf("Init run %d: %v", i+1, err)
		}
	}
	if got := e.query(`SELECT pubname::text FROM pg_publication WHERE puballtables AND pubviaroot`); !slices.Equal(got, []string{e.cfg.Publication}) {
		t.Errorf("want one FOR ALL TABLES publication %s, got %v", e.cfg.Publication, got)
	}
	if got := e.query(`SELECT slot_name::text FROM pg_replication_slots WHERE database = current_database()`); len(got) != 0 {
		t.Errorf("Init created slots: %v", got)
	}
}

func TestPreflightSharedAndExcludedTables(t *testing.T) {
	for _, shared := range []string{route.SharedExclude, route.SharedArchive} {
		t.Run(shared, func(t *testing.T) {
			e := newEnv(t, route.Config{Model: route.Pool, Shared: shared})
			e.exec(`CREATE TABLE public.plans (code text, name text); ALTER TABLE public.plans REPLICA IDENTITY FULL`)
			if err := capture.Init(t.Context(), e.cfg); err != nil {
				t.Fatal(err)
			}
			// The same table without an identity is a problem either way:
			// the publication makes its UPDATE and DELETE fail.
			e.exec(`CREATE TABLE public.plans2 (code text, name text)`)
			p := problemFor(t, preflightProblems(t, e), `"public"."plans2"`)
			if !strings.Contains(p.Fix, `ALTER TABLE "public"."plans2" REPLICA IDENTITY FULL`) {
				t.Errorf("plans2: %+v", p)
			}
		})
	}
}

func TestInitForTables(t *testing.T) {
	e := newEnv(t, route.Config{Model: route.Pool})
	e.exec(`CREATE TABLE public.a (tenant_id text NOT NULL, id int, PRIMARY KEY (tenant_id, id))`)
	e.exec(`CREATE TABLE public.b (tenant_id text NOT NULL, id int, PRIMARY KEY (tenant_id, id))`)
	// Not published, so not checked.
	e.exec(`CREATE TABLE public.bad (id int PRIMARY KEY, tenant_id text)`)
	e.cfg.Tables = []string{"public.a", "public.b"}
	for i := range 2 {
		if err := capture.Init(t.Context(), e.cfg); err != nil {
			t.Fatalf("Init run %d: %v", i+1, err)
		}
	}
	if got := e.query(`SELECT pubname::text FROM pg_publication WHERE NOT puballtables`); !slices.Equal(got, []string{e.cfg.Publication}) {
		t.Errorf("want one FOR TABLE publication, got %v", got)
	}
	got := e.query(`SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`, e.cfg.Publication)
	if !slices.Equal(got, []string{"public.a", "public.b"}) {
		t.Errorf("published tables %v", got)
	}

	e.cfg.Tables = []string{"public.missing"}
	e.cfg.Publication = "other"
	if err := capture.Init(t.Context(), e.cfg); err == nil || !strings.Contains(err.Error(), "public.missing") {
		t.Errorf("missing table: %v", err)
	}
}
