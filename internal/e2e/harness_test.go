package e2e_test

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantwal/tenantwal/archiver"
	"github.com/tenantwal/tenantwal/capture"
	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/bus"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/internal/pgcheck"
	"github.com/tenantwal/tenantwal/internal/pipetest"
	"github.com/tenantwal/tenantwal/internal/workload"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("TENANTWAL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// pipeline is a running capture + archiver.
type pipeline struct{ *pipetest.Group }

// startPipeline runs capture and archiver for dsn into store, with short
// intervals, until stop or the test's end.
func startPipeline(t *testing.T, dsn string, store objstore.Store, rc route.Config) *pipeline {
	t.Helper()
	ctx := t.Context()
	b, err := bus.Open(ctx, bus.Config{StoreDir: t.TempDir()}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ccfg := capture.Config{DSN: dsn, Heartbeat: 200 * time.Millisecond, ConfirmInterval: 200 * time.Millisecond, Route: rc}
	if err := capture.Init(ctx, ccfg); err != nil {
		t.Fatal(err)
	}
	c, err := capture.New(ccfg, b, store, capture.WithLogger(testLogger(t).With("component", "capture")))
	if err != nil {
		t.Fatal(err)
	}
	a, err := archiver.New(archiver.Config{FlushInterval: 200 * time.Millisecond, SpillDir: t.TempDir()}, b, store,
		archiver.WithLogger(testLogger(t).With("component", "archiver")))
	if err != nil {
		t.Fatal(err)
	}
	return &pipeline{pipetest.Go(t, b, c.Run, a.Run)}
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("waiting for %s: %v", what, t.Context().Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkpoint is what a tenant looked like at one moment.
type checkpoint struct {
	LSN  schemas.LSN
	Time time.Time
	Sums map[string]map[string]pgcheck.Sum // tenant → "schema.table" → sum
}

// takeCheckpoint stops the workload between transactions (gate) and records
// the tenants' checksums with the current WAL insert position and time:
// every transaction committed so far is at or before both, every later one
// after. (pg_current_wal_lsn is the write position, which lags the commits
// when synchronous_commit is off, as in the test cluster.)
func takeCheckpoint(t *testing.T, pool *pgxpool.Pool, gate *sync.RWMutex, spec workload.Spec, tenants []string) checkpoint {
	t.Helper()
	ctx := t.Context()
	gate.Lock()
	defer gate.Unlock()
	cp := checkpoint{Sums: map[string]map[string]pgcheck.Sum{}}
	var lsn string
	if err := pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text, clock_timestamp()").Scan(&lsn, &cp.Time); err != nil {
		t.Fatal(err)
	}
	l, err := schemas.ParseLSN(lsn)
	if err != nil {
		t.Fatal(err)
	}
	cp.LSN = l
	for _, tenant := range tenants {
		cp.Sums[tenant] = map[string]pgcheck.Sum{}
		for _, tb := range spec.Tables(tenant) {
			s, err := pgcheck.Table(ctx, pool, tb.Schema, tb.Name, tb.TenantColumn, tenant)
			if err != nil {
				t.Fatal(err)
			}
			cp.Sums[tenant][tb.QualifiedName()] = s
		}
	}
	// Let the next transaction's commit time be strictly later.
	time.Sleep(time.Millisecond)
	return cp
}

// restoreAndCompare restores tenant at target into a fresh schema and
// compares every table with want.
func restoreAndCompare(t *testing.T, pool *pgxpool.Pool, store objstore.Store, tenant string, target replayer.Target, want map[string]pgcheck.Sum) {
	t.Helper()
	ctx := t.Context()
	ten, err := catalog.LoadTenant(ctx, store, schemas.TenantID(tenant))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := replayer.PlanRestore(ten, target)
	if err != nil {
		t.Fatalf("plan %q at %s: %v", tenant, target, err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	schema := fmt.Sprintf("r_%s", schemas.TenantID(tenant).Hash()[:10])
	res, err := replayer.Apply(ctx, store, conn.Conn(), plan, replayer.Options{Schema: schema})
	if err != nil {
		t.Fatalf("restore %q at %s: %v", tenant, target, err)
	}
	defer func() {
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Error(err)
		}
	}()
	restored := map[string]string{}
	for _, tr := range res.Tables {
		restored[tr.Name] = tr.Target
	}
	for name, w := range want {
		var got pgcheck.Sum
		if rel, ok := restored[name]; ok {
			if got, err = pgcheck.Relation(ctx, conn, rel, ""); err != nil {
				t.Fatal(err)
			}
		}
		if got != w {
			t.Errorf("tenant %q at %s: table %s: restored %s, source had %s", tenant, target, name, got, w)
		}
		delete(restored, name)
	}
	for name := range restored {
		t.Errorf("tenant %q at %s: restored an unexpected table %s", tenant, target, name)
	}
	// Restored beside the source, a pool table's ids continue after the
	// source sequence's, so rows copied back never collide.
	for _, tr := range res.Tables {
		if tr.Name != "public.invoices" {
			continue
		}
		var next, src int64
		if err := conn.QueryRow(ctx, "SELECT nextval(pg_get_serial_sequence($1, 'id'))", tr.Target).Scan(&next); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "SELECT last_value FROM public.invoices_id_seq").Scan(&src); err != nil {
			t.Fatal(err)
		}
		if next <= src {
			t.Errorf("restored %s: next id %d, the source sequence is at %d", tr.Target, next, src)
		}
	}
}
