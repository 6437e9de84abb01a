package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/internal/bench/vocab"
	"github.com/tenantwal/tenantwal/internal/bus"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// The peak RSS measure (issue #4: "peak RSS of capture and archiver through
// one 1 GB transaction: < 256 MiB each"). `tenantwal capture` and `tenantwal
// archive` run as child processes against a database of their own on the
// bench's server, the bench's embedded NATS server and a file:// store; one
// transaction inserts rssTxnBytes × Size of ~1 KB rows for rssTenants
// tenants; once the archive holds all of it, each child's VmHWM is its
// peak RSS.
const (
	rssTxnBytes = 1_000_000_000 // the transaction's row bytes at Size 1
	rssRowBytes = 1000          // about, as stored in a heap tuple
	rssTenants  = 4
	rssBound    = 256 << 20
	rssDatabase = "bench_rss"
)

// rssDDL is the table of the big transaction: the orders columns plus a
// body of two paragraphs (~750 bytes).
const rssDDL = `CREATE TABLE public.big (
	tenant_id  text NOT NULL,
	id         bigint NOT NULL,` + orderColumnsDDL + `,
	body       text NOT NULL,
	PRIMARY KEY (tenant_id, id)
)`

// rssRun is the state of one peak RSS measure.
type rssRun struct {
	dir      string
	dsn      string
	store    objstore.Store
	children []*child
	rows     int64
}

func (r *runner) peakRSS(ctx context.Context) (err error) {
	exe, how, err := r.executable(ctx)
	if err != nil {
		return err
	}
	s := &rssRun{dir: filepath.Join(r.dir, "rss"), rows: r.scaled(rssTxnBytes/rssRowBytes, 1000)}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	if s.dsn, err = r.createRSSDatabase(ctx); err != nil {
		return err
	}
	if s.store, err = objstore.Open(ctx, "file://"+filepath.Join(s.dir, "archive"), objstore.S3Options{}); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, s.store.Close()) }()
	b, err := bus.Open(ctx, bus.Config{StoreDir: filepath.Join(s.dir, "nats")}, r.log.With("component", "rss/bus"))
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = errors.Join(err, b.Close(cctx))
	}()
	common := []string{"--nats", b.ClientURL(), "--store", "file://" + filepath.Join(s.dir, "archive"), "--log-level", "warn"}
	capt, err := startChild(exe, s.dir, "capture", append([]string{"capture", "--dsn", s.dsn, "--slot", "tw_rss",
		"--model", "pool", "--tenant-column", tenantCol, "--heartbeat", "1s"}, common...)...)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, capt.stop()) }()
	arch, err := startChild(exe, s.dir, "archive", append([]string{"archive", "--spill-dir", s.dir}, common...)...)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, arch.stop()) }()
	s.children = []*child{capt, arch}
	r.printf("tenantwal capture (pid %d) and archive (pid %d) from %s (%s), CLI defaults, NATS %s",
		capt.cmd.Process.Pid, arch.cmd.Process.Pid, exe, how, b.ClientURL())
	return r.measureRSS(ctx, s, capt, arch)
}

// createRSSDatabase creates the database of the big transaction and its
// table, and returns its DSN.
func (r *runner) createRSSDatabase(ctx context.Context) (string, error) {
	admin, err := pgx.Connect(ctx, r.srv.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+rssDatabase); err != nil {
		return "", err
	}
	dsn := r.srv.DSN(rssDatabase)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, rssDDL); err != nil {
		return "", fmt.Errorf("create the big table: %w", err)
	}
	return dsn, nil
}

func (r *runner) measureRSS(ctx context.Context, s *rssRun, capt, arch *child) error {
	if err := poll(ctx, r.waitTimeout(), 100*time.Millisecond, "the baseline of the RSS archive", s.children, func() (bool, error) {
		_, err := catalog.ReadBaseline(ctx, s.store)
		if errors.Is(err, objstore.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}); err != nil {
		return err
	}
	// The many-tenants phase first, from the children's idle state; then
	// the big transaction, from the peak reset to the RSS it left.
	if err := r.manyTenants(ctx, s, capt, arch); err != nil {
		return err
	}
	for _, c := range s.children {
		if err := resetPeak(c.cmd.Process.Pid); err != nil {
			return err
		}
	}
	idleC, err1 := capt.memory()
	idleA, err2 := arch.memory()
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	start := time.Now()
	txn, err := r.bigTransaction(ctx, s)
	if err != nil {
		return err
	}
	committed := time.Now()
	// Archived: every tenant's segment entries after the transaction's start
	// hold its rows, and one of them marks the transaction complete.
	want := rowsPerTenant(s.rows)
	if err := poll(ctx, r.waitTimeout(), 200*time.Millisecond, "the big transaction in the archive", s.children, func() (bool, error) {
		for i, n := range want {
			got, complete, err := archivedSince(ctx, s.store, rssTenant(i), txn.startLSN)
			if err != nil || got < n || !complete {
				return false, err
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	archived := time.Now()
	peakC, err1 := capt.memory()
	peakA, err2 := arch.memory()
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	env := goEnv()
	note := fmt.Sprintf("one transaction of %d rows (~1 KB, %d tenants): %s of table data, %s of WAL; INSERT … SELECT took %s, archived %s after its commit; %s",
		s.rows, rssTenants, mib(txn.tableBytes), mib(txn.walBytes), committed.Sub(start).Round(time.Millisecond),
		archived.Sub(committed).Round(time.Millisecond), env)
	for _, x := range []struct {
		name       string
		idle, peak memory
	}{{MeasureRSSCapture, idleC, peakC}, {MeasureRSSArchiver, idleA, peakA}} {
		m := Measure{Name: x.name, Value: float64(x.peak.HWM) / (1 << 20), Unit: "MiB", Target: "< 256 MiB", Met: x.peak.HWM < rssBound,
			Note: fmt.Sprintf("VmHWM of the child process since the transaction started; RSS %s before it (after the many-tenants phase), %s at the end. %s", mib(x.idle.RSS), mib(x.peak.RSS), note)}
		r.rep.Rows = append(r.rep.Rows, m)
		r.printf("%s: %s (idle %s)", x.name, mib(x.peak.HWM), mib(x.idle.RSS))
	}
	r.printf("%s", note)
	return nil
}

// bigTxn is what bigTransaction wrote.
type bigTxn struct {
	startLSN             schemas.LSN
	walBytes, tableBytes int64
}

// bigTransaction inserts s.rows rows in one transaction. Bodies are two of
// a thousand generated paragraphs (a temporary table, which logical
// decoding skips), so the statement stays cheap.
func (r *runner) bigTransaction(ctx context.Context, s *rssRun) (bigTxn, error) {
	var t bigTxn
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return t, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	para := fmt.Sprintf(`CREATE TEMP TABLE para AS SELECT i, initcap(array_to_string(ARRAY(SELECT %s
FROM generate_series(1, 55 + i %% 10)), ' ')) || '.' AS t FROM generate_series(0, 999) i`, pickRandom(vocab.NoteWords))
	if _, err := conn.Exec(ctx, para); err != nil {
		return t, fmt.Errorf("create paragraphs: %w", err)
	}
	var lsn string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		return t, err
	}
	if t.startLSN, err = schemas.ParseLSN(lsn); err != nil {
		return t, err
	}
	insert := fmt.Sprintf(`INSERT INTO public.big (%s, %s, body)
SELECT 'big' || (g %% %d), %s, p1.t || ' ' || p2.t
FROM generate_series(1, %d) g JOIN para p1 ON p1.i = g %% 1000 JOIN para p2 ON p2.i = (g / 1000 + g * 7) %% 1000`,
		tenantCol, orderColumns, rssTenants, rowSelect(7), s.rows)
	if _, err := conn.Exec(ctx, insert); err != nil {
		return t, fmt.Errorf("the big transaction: %w", err)
	}
	err = conn.QueryRow(ctx, "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::bigint, pg_table_size('public.big')",
		t.startLSN.String()).Scan(&t.walBytes, &t.tableBytes)
	return t, err
}

func rssTenant(i int) schemas.TenantID { return schemas.TenantID(fmt.Sprintf("big%d", i)) }

// rowsPerTenant is how many of ids 1..n go to each tenant (id % rssTenants).
func rowsPerTenant(n int64) []int64 {
	out := make([]int64, rssTenants)
	for k := range out {
		out[k] = n / rssTenants
		if int64(k) >= 1 && int64(k) <= n%rssTenants {
			out[k]++
		}
	}
	return out
}

// archivedSince returns the rows in t's segment entries of changes after
// lsn, and whether an entry marks a transaction after lsn complete.
func archivedSince(ctx context.Context, store objstore.Store, t schemas.TenantID, lsn schemas.LSN) (int64, bool, error) {
	entries, err := catalog.ReadManifest(ctx, store, t)
	if errors.Is(err, catalog.ErrUnknownTenant) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	var rows int64
	complete := false
	for _, e := range entries {
		if e.Kind != schemas.EntrySegment || e.Last.LSN <= lsn {
			continue
		}
		for _, o := range e.Objects {
			rows += o.Rows
		}
		complete = complete || e.CompleteLSN > lsn
	}
	return rows, complete, nil
}

// goEnv names the Go runtime settings the children inherit, if any.
func goEnv() string {
	var set []string
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GODEBUG", "GOMAXPROCS"} {
		if v, ok := os.LookupEnv(k); ok {
			set = append(set, k+"="+v)
		}
	}
	if len(set) == 0 {
		return "Go runtime defaults (no GOGC/GOMEMLIMIT)"
	}
	return "children's environment: " + strings.Join(set, " ")
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
