package bench

import (
	"context"
	"fmt"
	"io"
	"iter"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/internal/pgcheck"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// The many-tenants measure (issue #3 item 16: "10,000 tenants in the pool
// model: capture and archiver memory stay under a documented bound"). Before
// the big transaction, the same `tenantwal capture` and `tenantwal archive`
// children get transactions of manyTxnRows rows, each row for another of
// Options.PoolTenants tenants of the pool table, until every tenant has
// manyRowsPerTenant × Size rows (at least one). Their high-water marks are
// reset first (/proc/PID/clear_refs), so the peak is this phase's own.
const (
	manyTxnRows       = 1000
	manyRowsPerTenant = 10
	manyIDBase        = 1_000_000_000_000 // above the big transaction's ids
)

func manyTenant(i int) schemas.TenantID { return schemas.TenantID(fmt.Sprintf("m%05d", i)) }

func (r *runner) manyTenants(ctx context.Context, s *rssRun, capt, arch *child) error {
	tenants := r.opts.PoolTenants
	perTenant := r.scaled(manyRowsPerTenant, 1)
	rows := int64(tenants) * perTenant
	for _, c := range s.children {
		if err := resetPeak(c.cmd.Process.Pid); err != nil {
			return err
		}
	}
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Row g goes to tenant g % tenants: a transaction of manyTxnRows
	// consecutive rows touches that many tenants.
	insert := fmt.Sprintf(`INSERT INTO public.big (%s, %s, body)
SELECT 'm' || lpad((g %% %d)::text, 5, '0'), %s, ''
FROM generate_series($1::bigint, $2::bigint) g`, tenantCol, orderColumns, tenants, rowSelect(11))
	start := time.Now()
	for lo := int64(0); lo < rows; lo += manyTxnRows {
		hi := min(rows, lo+manyTxnRows) - 1
		if _, err := conn.Exec(ctx, insert, manyIDBase+lo, manyIDBase+hi); err != nil {
			return fmt.Errorf("many tenants: insert rows %d-%d: %w", lo, hi, err)
		}
	}
	var endStr string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&endStr); err != nil {
		return err
	}
	end, err := schemas.ParseLSN(endStr)
	if err != nil {
		return err
	}
	committed := time.Now()
	// Durable: every partition's watermark is past the last commit.
	if err := poll(ctx, r.waitTimeout(), 200*time.Millisecond, fmt.Sprintf("%d tenants' rows in the archive", tenants), s.children, func() (bool, error) {
		wms, err := catalog.ReadWatermarks(ctx, s.store)
		if err != nil {
			return false, err
		}
		base, err := catalog.ReadBaseline(ctx, s.store)
		if err != nil {
			return false, err
		}
		for p := range base.Partitions {
			if w := wms[p]; w == nil || w.EndLSN < end {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	archived := time.Now()
	peakC, err := capt.memory()
	if err != nil {
		return err
	}
	peakA, err := arch.memory()
	if err != nil {
		return err
	}
	// Every tenant has all its rows, each in objects of its own.
	var objects int64
	for i := range tenants {
		entries, err := catalog.ReadManifest(ctx, s.store, manyTenant(i))
		if err != nil {
			return fmt.Errorf("many tenants: %w", err)
		}
		var got int64
		for _, e := range entries {
			for _, o := range e.Objects {
				got += o.Rows
				objects++
			}
		}
		if got != perTenant {
			return fmt.Errorf("many tenants: tenant %s has %d rows in the archive, want %d", manyTenant(i), got, perTenant)
		}
	}
	restored, err := restoreOneOfMany(ctx, s, conn, manyTenant(tenants/2))
	if err != nil {
		return err
	}
	note := fmt.Sprintf("%d pool tenants: %d transactions of up to %d rows, each row another tenant's (%d rows per tenant); inserted in %s, durable %s after the last commit; %d objects; %s; %s",
		tenants, (rows+manyTxnRows-1)/manyTxnRows, manyTxnRows, perTenant, committed.Sub(start).Round(time.Millisecond),
		archived.Sub(committed).Round(time.Millisecond), objects, restored, goEnv())
	for _, x := range []struct {
		name string
		peak memory
	}{{MeasureRSSCaptureTenants, peakC}, {MeasureRSSArchiverTenants, peakA}} {
		r.rep.Rows = append(r.rep.Rows, Measure{Name: x.name, Value: float64(x.peak.HWM) / (1 << 20), Unit: "MiB",
			Target: "< 256 MiB", Met: x.peak.HWM < rssBound,
			Note: fmt.Sprintf("VmHWM of the child process since this phase started; RSS %s at the end. %s", mib(x.peak.RSS), note)})
		r.printf("%s: %s (%d tenants)", x.name, mib(x.peak.HWM), tenants)
	}
	r.printf("%s", note)
	return nil
}

// resetPeak resets the peak RSS (VmHWM) of process pid to its current RSS
// (proc(5), clear_refs "5", Linux 4.0+).
func resetPeak(pid int) error {
	if err := os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("reset the peak RSS of pid %d: %w (needs Linux 4.0+ /proc)", pid, err)
	}
	return nil
}

// tracingStore records the keys and prefixes a restore reads.
type tracingStore struct {
	objstore.Store
	mu    sync.Mutex
	reads []string
}

func (t *tracingStore) record(k string) {
	t.mu.Lock()
	t.reads = append(t.reads, k)
	t.mu.Unlock()
}

func (t *tracingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	t.record(key)
	return t.Store.Get(ctx, key)
}

func (t *tracingStore) Stat(ctx context.Context, key string) (objstore.Info, error) {
	t.record(key)
	return t.Store.Stat(ctx, key)
}

func (t *tracingStore) List(ctx context.Context, prefix string) iter.Seq2[objstore.Info, error] {
	t.record(prefix)
	return t.Store.List(ctx, prefix)
}

// restoreOneOfMany restores tenant id side by side at the end of its range
// and checks that it equals the source and that every tenant object read
// was its own (the archive-wide records under "_sys/" aside).
func restoreOneOfMany(ctx context.Context, s *rssRun, conn *pgx.Conn, id schemas.TenantID) (string, error) {
	ts := &tracingStore{Store: s.store}
	start := time.Now()
	t, err := catalog.LoadTenant(ctx, ts, id)
	if err != nil {
		return "", err
	}
	plan, err := replayer.PlanRestore(t, replayer.Target{LSN: t.Range.ToLSN})
	if err != nil {
		return "", err
	}
	res, err := replayer.Apply(ctx, ts, conn, plan, replayer.Options{Schema: "bench_one_of_many", TempDir: s.dir})
	if err != nil {
		return "", err
	}
	took := time.Since(start)
	own := schemas.TenantPrefix(id)
	tenantReads := 0
	for _, k := range ts.reads {
		switch {
		case strings.HasPrefix(k, own):
			tenantReads++
		case strings.HasPrefix(k, "_sys/"):
		default:
			return "", fmt.Errorf("many tenants: restoring tenant %s read %q, outside its prefix %s", id, k, own)
		}
	}
	if len(res.Tables) != 1 {
		return "", fmt.Errorf("many tenants: restoring tenant %s gave %d tables, want 1", id, len(res.Tables))
	}
	want, err := pgcheck.Table(ctx, conn, "public", "big", tenantCol, string(id))
	if err != nil {
		return "", err
	}
	got, err := pgcheck.Relation(ctx, conn, res.Tables[0].Target, "")
	if err != nil {
		return "", err
	}
	if got != want {
		return "", fmt.Errorf("many tenants: tenant %s restored %s, the source has %s", id, got, want)
	}
	return fmt.Sprintf("restoring tenant %s took %s and read %d keys, all its own (plus the archive's _sys/ records); restored rows equal the source (%s)",
		id, took.Round(time.Millisecond), tenantReads, got), nil
}
