package capture_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tenantwal/tenantwal/archiver"
	"github.com/tenantwal/tenantwal/capture"
	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/bus"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/internal/pgcheck"
	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/internal/pipetest"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func testLogger() *slog.Logger {
	if os.Getenv("TENANTWAL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// env is one source database with its slot, publication, JetStream store
// directory and object store. Pipelines started from it one after the
// other share all four, like a restarted deployment.
type env struct {
	t    *testing.T
	dsn  string
	pool *pgxpool.Pool
	// restores go to another database: a side-by-side restore into the
	// source would itself be captured (FOR ALL TABLES).
	rdsn   string
	rpool  *pgxpool.Pool
	store  objstore.Store
	busDir string
	cfg    capture.Config
	// flushBytes is the archiver's FlushBytes (0: its default).
	flushBytes int
}

func newEnv(t *testing.T, rc route.Config) *env {
	t.Helper()
	dsn := pgtest.NewDB(t)
	return newEnvFor(t, dsn, dsn, rc)
}

// newEnvFor is an env on the source database dsn, which capture reaches as
// captureDSN; restores go to a new database of the shared cluster.
func newEnvFor(t *testing.T, dsn, captureDSN string, rc route.Config) *env {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	rdsn := pgtest.NewDB(t)
	rpool, err := pgxpool.New(t.Context(), rdsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rpool.Close)
	store, err := objstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, dsn: dsn, pool: pool, rdsn: rdsn, rpool: rpool, store: store, busDir: t.TempDir(), cfg: capture.Config{
		DSN:             captureDSN,
		Slot:            pgtest.RandomName("s_"),
		Publication:     pgtest.RandomName("p_"),
		Route:           rc,
		Heartbeat:       100 * time.Millisecond,
		StatusInterval:  100 * time.Millisecond,
		MarkerInterval:  100 * time.Millisecond,
		ConfirmInterval: 100 * time.Millisecond,
	}}
}

// exec runs SQL on the source, failing the test on error.
func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.pool.Exec(e.t.Context(), sql, args...); err != nil {
		e.t.Fatalf("exec %q: %v", sql, err)
	}
}

// pipeline is a running capture + archiver.
type pipeline struct {
	*pipetest.Group
	registry *prometheus.Registry
}

// start runs Init, then capture and archiver, until stop or the test's end.
func (e *env) start() *pipeline {
	e.t.Helper()
	t := e.t
	ctx := t.Context()
	b, err := bus.Open(ctx, bus.Config{StoreDir: e.busDir}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := capture.Init(ctx, e.cfg); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c, err := capture.New(e.cfg, b, e.store, capture.WithLogger(testLogger().With("component", "capture")),
		capture.WithMetrics(capture.NewMetrics(reg)))
	if err != nil {
		t.Fatal(err)
	}
	a, err := archiver.New(archiver.Config{FlushInterval: 100 * time.Millisecond, FlushBytes: e.flushBytes, SpillDir: t.TempDir()}, b, e.store,
		archiver.WithLogger(testLogger().With("component", "archiver")), archiver.WithMetrics(archiver.NewMetrics(reg)))
	if err != nil {
		t.Fatal(err)
	}
	return &pipeline{Group: pipetest.Go(t, b, c.Run, a.Run), registry: reg}
}

// metric returns the value of the gauge or counter named name.
func (p *pipeline) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := p.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
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
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitBaseline waits for the initial snapshot to be archived.
func (e *env) waitBaseline() *schemas.Baseline {
	e.t.Helper()
	var base *schemas.Baseline
	waitFor(e.t, 20*time.Second, "the initial snapshot", func() bool {
		var err error
		base, err = catalog.ReadBaseline(e.t.Context(), e.store)
		return err == nil
	})
	return base
}

// table is a table of one tenant: pool (TenantColumn set) or bridge.
type table struct {
	Schema, Name, TenantColumn string
}

func (tb table) qualified() string { return tb.Schema + "." + tb.Name }

// checkpoint is what some tenants looked like at one LSN.
type checkpoint struct {
	LSN  schemas.LSN
	Sums map[string]map[string]pgcheck.Sum // tenant → "schema.table" → sum
}

// checkpoint records the tenants' checksums and the WAL insert position;
// the caller must not write concurrently.
func (e *env) checkpoint(tenants map[string][]table) checkpoint {
	e.t.Helper()
	ctx := e.t.Context()
	cp := checkpoint{Sums: map[string]map[string]pgcheck.Sum{}}
	var lsn string
	if err := e.pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		e.t.Fatal(err)
	}
	l, err := schemas.ParseLSN(lsn)
	if err != nil {
		e.t.Fatal(err)
	}
	cp.LSN = l
	for tenant, tables := range tenants {
		cp.Sums[tenant] = map[string]pgcheck.Sum{}
		for _, tb := range tables {
			s, err := pgcheck.Table(ctx, e.pool, tb.Schema, tb.Name, tb.TenantColumn, tenant)
			if err != nil {
				e.t.Fatal(err)
			}
			cp.Sums[tenant][tb.qualified()] = s
		}
	}
	return cp
}

// waitArchived waits until tenant can be restored at lsn.
func (e *env) waitArchived(tenant string, lsn schemas.LSN) {
	e.t.Helper()
	waitFor(e.t, 20*time.Second, fmt.Sprintf("tenant %q archived up to %s", tenant, lsn), func() bool {
		ten, err := catalog.LoadTenant(e.t.Context(), e.store, schemas.TenantID(tenant))
		return err == nil && ten.Range.ToLSN >= lsn
	})
}

// verify waits for every tenant of cp to be archived past it, then restores
// each at cp's LSN and compares.
func (e *env) verify(cp checkpoint) {
	e.t.Helper()
	for tenant, want := range cp.Sums {
		e.waitArchived(tenant, cp.LSN)
		e.restoreAndCompare(tenant, replayer.Target{LSN: cp.LSN}, want)
	}
}

// restore restores tenant at target into a fresh schema and returns the
// restored tables ("schema.table" → quoted target relation) in e.rdsn; the
// schema is dropped at the test's end.
func (e *env) restore(tenant string, target replayer.Target) (map[string]string, error) {
	e.t.Helper()
	_, restored, err := e.restoreLogged(tenant, target, nil)
	return restored, err
}

// restoreLogged is restore with the replayer logging to log (nil: none);
// it also returns the restored schema.
func (e *env) restoreLogged(tenant string, target replayer.Target, log *slog.Logger) (string, map[string]string, error) {
	e.t.Helper()
	ctx := e.t.Context()
	ten, err := catalog.LoadTenant(ctx, e.store, schemas.TenantID(tenant))
	if err != nil {
		return "", nil, err
	}
	plan, err := replayer.PlanRestore(ten, target)
	if err != nil {
		return "", nil, fmt.Errorf("plan %q at %s: %w", tenant, target, err)
	}
	conn, err := pgx.Connect(ctx, e.rdsn)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	schema := pgtest.RandomName("r_")
	res, err := replayer.Apply(ctx, e.store, conn, plan, replayer.Options{Schema: schema, Logger: log})
	if err != nil {
		return "", nil, fmt.Errorf("restore %q at %s: %w", tenant, target, err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = e.rpool.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	restored := map[string]string{}
	for _, tr := range res.Tables {
		restored[tr.Name] = tr.Target
	}
	return schema, restored, nil
}

// restoreAndCompare restores tenant at target and compares every table
// with want. A table the tenant never had rows in may be absent.
func (e *env) restoreAndCompare(tenant string, target replayer.Target, want map[string]pgcheck.Sum) {
	e.t.Helper()
	restored, err := e.restore(tenant, target)
	if err != nil {
		e.t.Error(err)
		return
	}
	for name, w := range want {
		var got pgcheck.Sum
		if rel, ok := restored[name]; ok {
			if got, err = pgcheck.Relation(e.t.Context(), e.rpool, rel, ""); err != nil {
				e.t.Fatal(err)
			}
		}
		if got != w {
			e.t.Errorf("tenant %q at %s: table %s: restored %s, source had %s", tenant, target, name, got, w)
		}
		delete(restored, name)
	}
	for name := range restored {
		e.t.Errorf("tenant %q at %s: restored an unexpected table %s", tenant, target, name)
	}
}

// query returns the first column of every row of sql as text.
func (e *env) query(sql string, args ...any) []string {
	e.t.Helper()
	rows, err := e.pool.Query(e.t.Context(), sql, args...)
	if err != nil {
		e.t.Fatalf("query %q: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		e.t.Fatalf("query %q: %v", sql, err)
	}
	return out
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
