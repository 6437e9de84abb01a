package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/internal/verify"
	"github.com/tenantwal/tenantwal/internal/workload"
	"github.com/tenantwal/tenantwal/schemas"
)

// testSampleRestore runs verify's sample restore while the workload and the
// pipeline run: a pool tenant with a hostile id and a bridge tenant restored
// at a fresh snapshot's LSN equal the source. Then it points the sample at
// another database with the same tables and other rows, as if the archive
// had lost changes: every differing table must be reported.
func testSampleRestore(t *testing.T, dsn string, store objstore.Store) {
	ctx := t.Context()
	for _, tenant := range []schemas.TenantID{"umbrella corp/eu.west", "hooli"} {
		rep, err := verify.Sample(ctx, store, verify.SampleOptions{DSN: dsn, Publication: "tenantwal",
			Route: route.Config{Model: route.Mixed}, Tenant: tenant, Wait: time.Minute, TempDir: t.TempDir()})
		if err != nil {
			t.Fatalf("sample restore of %q: %v", tenant, err)
		}
		if !rep.OK() || len(rep.Tables) == 0 {
			t.Fatalf("sample restore of %q at %s: %d tables, problems %v", tenant, rep.LSN, len(rep.Tables), rep.Problems)
		}
		for _, tb := range rep.Tables {
			if tb.Source.Rows == 0 {
				t.Errorf("sample restore of %q: table %s compared with no source rows", tenant, tb.Name)
			}
		}
		t.Logf("sample restore of %q at %s: %d tables equal the source", tenant, rep.LSN, len(rep.Tables))
	}
	var scratch int
	if err := pgxQueryRow(t, dsn, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenantwal_verify_%'", &scratch); scratch != 0 || err != nil {
		t.Errorf("%d scratch schemas left behind (%v)", scratch, err)
	}

	other := pgtest.NewDB(t)
	conn, err := pgx.Connect(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := workload.Setup(ctx, conn, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE PUBLICATION tenantwal FOR ALL TABLES"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO tenant_hooli.projects (title) VALUES ('not in the archive')`); err != nil {
		t.Fatal(err)
	}
	rep, err := verify.Sample(ctx, store, verify.SampleOptions{DSN: other, Publication: "tenantwal",
		Route: route.Config{Model: route.Mixed}, Tenant: "hooli", Wait: time.Minute, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Fatalf("sample restore against another database: no problem reported (%d tables)", len(rep.Tables))
	}
	for _, p := range rep.Problems {
		if !strings.Contains(p.Reason, "the source had") {
			t.Errorf("problem %q does not name both sides", p)
		}
	}
	t.Logf("sample restore against another database: %d problems, e.g. %s", len(rep.Problems), rep.Problems[0])
}

func pgxQueryRow(t *testing.T, dsn, sql string, dst ...any) error {
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	return conn.QueryRow(t.Context(), sql).Scan(dst...)
}
