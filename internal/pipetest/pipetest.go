// Package pipetest runs the tenantwal pipeline as real processes for fault
// tests: a source database from internal/pgtest, a separate nats-server
// (internal/natstest), a file:// archive, and `tenantwal capture` and
// `tenantwal archive` as child processes of the test that can be killed
// with SIGKILL (or armed with a failpoint, see internal/failpoint) and
// started again. The oracle is internal/pgcheck: a checkpoint records each
// tenant's per-table checksums with the WAL insert LSN and the time, and
// Verify restores every tenant at both and compares. Use it only from
// _test.go files of packages whose TestMain calls pgtest.Main.
package pipetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantwal/tenantwal/archiver/segment"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/natstest"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/internal/pgcheck"
	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/internal/s3test"
	"github.com/tenantwal/tenantwal/internal/workload"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// Options shape an Env. The zero value is ready to use.
type Options struct {
	// Partitions of the stream; default 4.
	Partitions int
	// DedupWindow is the JetStream duplicate window; default 2m.
	DedupWindow time.Duration
	// NATSArgs are extra nats-server arguments.
	NATSArgs []string
	// S3, when set, holds the archive in a fresh bucket of this server
	// instead of a file:// directory.
	S3 *s3test.Server
}

// Env is one source database with its restore database, a nats-server
// process, a file:// archive and the flags tenantwal children share.
type Env struct {
	T     *testing.T
	DSN   string
	Pool  *pgxpool.Pool
	RDSN  string // restores go here: the source publishes FOR ALL TABLES
	RPool *pgxpool.Pool
	// StoreDir is the file:// archive's directory ("" with Options.S3).
	StoreDir string
	// StoreArgs are the tenantwal flags that select the archive.
	StoreArgs []string
	Store     objstore.Store
	NATS      *natstest.Proc
	Exe       string
	Slot      string
	Pub       string
	Dir       string // logs and spill files
	opts      Options
}

// New prepares an Env; nothing of tenantwal runs yet.
func New(t *testing.T, opts Options) *Env {
	t.Helper()
	if opts.Partitions == 0 {
		opts.Partitions = 4
	}
	if opts.DedupWindow == 0 {
		opts.DedupWindow = 2 * time.Minute
	}
	e := &Env{T: t, Exe: Binary(t), Slot: pgtest.RandomName("s_"), Pub: pgtest.RandomName("p_"), Dir: t.TempDir(), opts: opts}
	e.DSN, e.Pool = newDB(t)
	e.RDSN, e.RPool = newDB(t)
	if opts.S3 != nil {
		bucket := opts.S3.Bucket(t)
		so := objstore.S3Options{Endpoint: opts.S3.Endpoint(), Region: s3test.Region, PathStyle: true,
			AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey}
		url := "s3://" + bucket + "/archive"
		e.StoreArgs = []string{"--store", url, "--s3-endpoint", so.Endpoint, "--s3-region", so.Region, "--s3-path-style",
			"--s3-access-key", so.AccessKey, "--s3-secret-key", so.SecretKey}
		var err error
		if e.Store, err = objstore.Open(t.Context(), url, so); err != nil {
			t.Fatal(err)
		}
	} else {
		e.StoreDir = t.TempDir()
		e.StoreArgs = []string{"--store", "file://" + e.StoreDir}
		var err error
		if e.Store, err = objstore.NewFile(e.StoreDir); err != nil {
			t.Fatal(err)
		}
	}
	e.NATS = natstest.StartProcessWith(t, natstest.ProcOpts{Args: opts.NATSArgs})
	return e
}

func newDB(t *testing.T) (string, *pgxpool.Pool) {
	dsn := pgtest.NewDB(t)
	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return dsn, pool
}

// Setup creates spec's schema in the source.
func (e *Env) Setup(spec workload.Spec) {
	e.T.Helper()
	conn, err := pgx.Connect(e.T.Context(), e.DSN)
	if err != nil {
		e.T.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(e.T.Context()))
	if err := workload.Setup(e.T.Context(), conn, spec); err != nil {
		e.T.Fatal(err)
	}
}

// Exec runs SQL on the source.
func (e *Env) Exec(sql string, args ...any) {
	e.T.Helper()
	if _, err := e.Pool.Exec(e.T.Context(), sql, args...); err != nil {
		e.T.Fatalf("exec %q: %v", sql, err)
	}
}

func (e *Env) storeArgs() []string { return e.StoreArgs }

func (e *Env) busArgs() []string {
	return []string{"--nats", e.NATS.URL(), "--partitions", strconv.Itoa(e.opts.Partitions),
		"--dedup-window", e.opts.DedupWindow.String()}
}

// Capture starts `tenantwal capture` (mixed routing, heartbeat every
// 200ms) with extra environment (e.g. failpoint.Env+"=…") and arguments.
func (e *Env) Capture(env []string, args ...string) *Proc {
	e.T.Helper()
	a := append([]string{"capture", "--dsn", e.DSN, "--slot", e.Slot, "--publication", e.Pub, "--model", "mixed",
		"--heartbeat", "200ms", "--log-level", "info"}, e.storeArgs()...)
	a = append(append(a, e.busArgs()...), args...)
	return start(e.T, e.Exe, filepath.Join(e.Dir, "capture.log"), "capture", env, a...)
}

// Archive starts `tenantwal archive` (flush every 200ms) with extra
// environment and arguments.
func (e *Env) Archive(env []string, args ...string) *Proc {
	e.T.Helper()
	a := append([]string{"archive", "--flush-interval", "200ms", "--spill-dir", e.Dir, "--log-level", "info"}, e.storeArgs()...)
	a = append(append(a, e.busArgs()...), args...)
	return start(e.T, e.Exe, filepath.Join(e.Dir, "archive.log"), "archive", env, a...)
}

// CLI runs a tenantwal subcommand to its end and returns its stdout,
// stderr and exit code.
func (e *Env) CLI(args ...string) (stdout, stderr string, code int) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(e.T.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Exe, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		e.T.Fatalf("tenantwal %v: %v", args, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// WaitFor polls cond every 50ms until it holds, failing the test after
// timeout or as soon as one of procs has exited.
func (e *Env) WaitFor(timeout time.Duration, what string, cond func() bool, procs ...*Proc) {
	e.T.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		for _, p := range procs {
			if err := p.Exited(); err != nil {
				e.T.Fatalf("waiting for %s: %v", what, err)
			}
		}
		if time.Now().After(deadline) {
			e.T.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-e.T.Context().Done():
			e.T.Fatalf("waiting for %s: %v", what, e.T.Context().Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitBaseline waits for the initial snapshot to be archived.
func (e *Env) WaitBaseline(procs ...*Proc) *schemas.Baseline {
	e.T.Helper()
	var base *schemas.Baseline
	e.WaitFor(60*time.Second, "the initial snapshot", func() bool {
		var err error
		base, err = catalog.ReadBaseline(e.T.Context(), e.Store)
		return err == nil
	}, procs...)
	return base
}

// SlotConfirmed returns the slot's confirmed flush LSN.
func (e *Env) SlotConfirmed() schemas.LSN {
	e.T.Helper()
	var s *string
	err := e.Pool.QueryRow(e.T.Context(), `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, e.Slot).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) || s == nil {
		return 0
	}
	if err != nil {
		e.T.Fatal(err)
	}
	l, err := schemas.ParseLSN(*s)
	if err != nil {
		e.T.Fatal(err)
	}
	return l
}

// CurrentLSN is the source's WAL insert position.
func (e *Env) CurrentLSN() schemas.LSN {
	e.T.Helper()
	var s string
	if err := e.Pool.QueryRow(e.T.Context(), "SELECT pg_current_wal_insert_lsn()::text").Scan(&s); err != nil {
		e.T.Fatal(err)
	}
	l, err := schemas.ParseLSN(s)
	if err != nil {
		e.T.Fatal(err)
	}
	return l
}

// Checkpoint is what some tenants looked like at one moment: every
// transaction committed before it is at or before LSN and Time, every
// later one after both.
type Checkpoint struct {
	LSN  schemas.LSN
	Time time.Time
	Sums map[string]map[string]pgcheck.Sum // tenant → "schema.table" → sum
}

// Checkpoint records spec's tenants' checksums with the WAL insert LSN and
// the time. gate, when not nil, is write-locked meanwhile (the workload's
// Gate); otherwise the caller must not write concurrently.
func (e *Env) Checkpoint(spec workload.Spec, gate *sync.RWMutex) Checkpoint {
	e.T.Helper()
	ctx := e.T.Context()
	if gate != nil {
		gate.Lock()
		defer gate.Unlock()
	}
	cp := Checkpoint{Sums: map[string]map[string]pgcheck.Sum{}}
	var lsn string
	if err := e.Pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text, clock_timestamp()").Scan(&lsn, &cp.Time); err != nil {
		e.T.Fatal(err)
	}
	l, err := schemas.ParseLSN(lsn)
	if err != nil {
		e.T.Fatal(err)
	}
	cp.LSN = l
	for _, tenant := range spec.Tenants() {
		cp.Sums[tenant] = map[string]pgcheck.Sum{}
		for _, tb := range spec.Tables(tenant) {
			s, err := pgcheck.Table(ctx, e.Pool, tb.Schema, tb.Name, tb.TenantColumn, tenant)
			if err != nil {
				e.T.Fatal(err)
			}
			cp.Sums[tenant][tb.QualifiedName()] = s
		}
	}
	time.Sleep(time.Millisecond) // the next commit time is strictly later
	return cp
}

// WaitArchived waits until tenant can be restored at lsn.
func (e *Env) WaitArchived(tenant string, lsn schemas.LSN, procs ...*Proc) {
	e.T.Helper()
	e.WaitFor(60*time.Second, fmt.Sprintf("tenant %q archived up to %s", tenant, lsn), func() bool {
		ten, err := catalog.LoadTenant(e.T.Context(), e.Store, schemas.TenantID(tenant))
		return err == nil && ten.Range.ToLSN >= lsn
	}, procs...)
}

// Verify waits until every tenant of cp is archived past it, then restores
// each at cp's LSN and at its time and compares every table with the
// checksums the source had.
func (e *Env) Verify(cp Checkpoint, procs ...*Proc) {
	e.T.Helper()
	for tenant, want := range cp.Sums {
		e.WaitArchived(tenant, cp.LSN, procs...)
		e.RestoreAndCompare(tenant, replayer.Target{LSN: cp.LSN}, want)
		e.RestoreAndCompare(tenant, replayer.Target{Time: cp.Time}, want)
	}
}

// RestoreAndCompare restores tenant at target into a fresh schema of the
// restore database and compares every table with want; a table the tenant
// never had rows in may be absent.
func (e *Env) RestoreAndCompare(tenant string, target replayer.Target, want map[string]pgcheck.Sum) {
	e.T.Helper()
	ctx := e.T.Context()
	ten, err := catalog.LoadTenant(ctx, e.Store, schemas.TenantID(tenant))
	if err != nil {
		e.T.Fatal(err)
	}
	plan, err := replayer.PlanRestore(ten, target)
	if err != nil {
		e.T.Errorf("plan %q at %s: %v", tenant, target, err)
		return
	}
	conn, err := pgx.Connect(ctx, e.RDSN)
	if err != nil {
		e.T.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	schema := pgtest.RandomName("r_")
	res, err := replayer.Apply(ctx, e.Store, conn, plan, replayer.Options{Schema: schema})
	if err != nil {
		e.T.Errorf("restore %q at %s: %v", tenant, target, err)
		return
	}
	defer func() {
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			e.T.Error(err)
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
				e.T.Fatal(err)
			}
		}
		if got != w {
			e.T.Errorf("tenant %q at %s: table %s: restored %s, source had %s", tenant, target, name, got, w)
		}
		delete(restored, name)
	}
	for name := range restored {
		e.T.Errorf("tenant %q at %s: restored an unexpected table %s", tenant, target, name)
	}
}

// CheckNoDuplicates reads every archived row of tenant and fails the test
// if a change (kind, table, position, operation) is stored twice or a
// segment entry does not start after the previous one. It returns the
// number of changes archived.
func (e *Env) CheckNoDuplicates(tenant string) int {
	e.T.Helper()
	return CheckNoDuplicates(e.T, e.Store, tenant)
}

// CheckNoDuplicates is Env.CheckNoDuplicates on any store.
func CheckNoDuplicates(t testing.TB, store objstore.Store, tenant string) int {
	t.Helper()
	entries, err := catalog.ReadManifest(t.Context(), store, schemas.TenantID(tenant))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]uint64{}
	var last schemas.Pos
	for _, en := range entries {
		if en.Kind == schemas.EntrySegment && len(en.Objects) > 0 {
			if !last.Less(en.First) {
				t.Errorf("tenant %q: entry %d starts at %s, not after the previous entry's last change %s", tenant, en.Seq, en.First, last)
			}
			last = en.Last
		}
		for _, o := range en.Objects {
			for _, key := range ObjectChanges(t, store, o.Key) {
				k := en.Kind + " " + o.Table + " " + key
				if prev, dup := seen[k]; dup {
					t.Errorf("tenant %q: %s archived twice (entries %d and %d)", tenant, k, prev, en.Seq)
				}
				seen[k] = en.Seq
			}
		}
	}
	return len(seen)
}

// ObjectChanges returns "lsn#seq op" for every row of the segment object
// at key, failing t on any error.
func ObjectChanges(t testing.TB, store objstore.Store, key string) []string {
	t.Helper()
	rc, err := store.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	f, err := os.CreateTemp(t.TempDir(), "seg-*.parquet")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := io.Copy(f, rc)
	if err != nil {
		t.Fatal(err)
	}
	r, err := segment.NewReader(f, n)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for {
		m, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s#%d %c", m.LSN, m.Seq, m.Op))
	}
}

// Fence commits a transaction holding only a logical message and returns
// the message's LSN: once the slot is confirmed past it, every transaction
// committed before Fence is archived and will not be streamed again.
func (e *Env) Fence() schemas.LSN {
	e.T.Helper()
	var s string
	if err := e.Pool.QueryRow(e.T.Context(), "SELECT pg_logical_emit_message(true, 'pipetest.fence', '')::text").Scan(&s); err != nil {
		e.T.Fatal(err)
	}
	l, err := schemas.ParseLSN(s)
	if err != nil {
		e.T.Fatal(err)
	}
	return l
}

// WaitConfirmed waits until the slot is confirmed past lsn.
func (e *Env) WaitConfirmed(lsn schemas.LSN, procs ...*Proc) {
	e.T.Helper()
	e.WaitFor(60*time.Second, fmt.Sprintf("slot %s confirmed past %s", e.Slot, lsn), func() bool { return e.SlotConfirmed() > lsn }, procs...)
}

// BigTxn commits one transaction of about 5×rows row changes over three
// tables and three tenants of spec BigSpec: inserts into public.accounts
// and public.invoices for two pool tenants and tenant_hooli.projects, then
// updates and deletes of some of them.
func (e *Env) BigTxn(rows int) {
	e.T.Helper()
	tx, err := e.Pool.Begin(e.T.Context())
	if err != nil {
		e.T.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(e.T.Context()))
	for _, sql := range []string{
		`INSERT INTO public.accounts (tenant_id, name, plan_id, balance, tags, profile)
		 SELECT t, 'big ' || g, 1 + g % 3, g * 1.5, ARRAY['bulk', g::text], jsonb_build_object('g', g, 'pad', repeat('x', 100))
		 FROM generate_series(1, $1::int) g, unnest(ARRAY['acme', 'umbrella corp/eu.west']) t`,
		`INSERT INTO public.invoices (tenant_id, account_id, amount, lines, note)
		 SELECT tenant_id, id, balance, '[{"sku": "bulk", "qty": 1}]', repeat('n', 80) FROM public.accounts WHERE name LIKE 'big %' AND $1::int > 0`,
		`INSERT INTO tenant_hooli.projects (title, budget, labels, meta)
		 SELECT 'big ' || g, g, ARRAY['bulk'], jsonb_build_object('pad', repeat('y', 100)) FROM generate_series(1, $1::int) g`,
		`UPDATE public.accounts SET balance = balance + 1, tags = array_append(tags, 'touched') WHERE name LIKE 'big %' AND id % 3 = 0 AND $1::int > 0`,
		`DELETE FROM public.invoices WHERE note LIKE 'nnn%' AND id % 5 = 0 AND $1::int > 0`,
	} {
		if _, err := tx.Exec(e.T.Context(), sql, rows); err != nil {
			e.T.Fatalf("big transaction: %v", err)
		}
	}
	if err := tx.Commit(e.T.Context()); err != nil {
		e.T.Fatal(err)
	}
}

// Spec is the workload the fault tests use: three pool tenants (one with
// spaces, a slash and a dot in its id) and one bridge tenant; BigTxn
// writes to acme, "umbrella corp/eu.west" and hooli.
var Spec = workload.Spec{Pool: []string{"acme", "umbrella corp/eu.west", "42"}, Bridge: []string{"hooli"}}

// Orphans lists the objects under tenants/ that no manifest entry names
// (snapshots and segments only).
func (e *Env) Orphans() []string {
	e.T.Helper()
	ctx := e.T.Context()
	named := map[string]bool{}
	tenants, err := catalog.ListTenants(ctx, e.Store)
	if err != nil {
		e.T.Fatal(err)
	}
	for _, t := range tenants {
		entries, err := catalog.ReadManifest(ctx, e.Store, t)
		if err != nil {
			e.T.Fatal(err)
		}
		for _, en := range entries {
			for _, o := range en.Objects {
				named[o.Key] = true
			}
		}
	}
	var out []string
	for info, err := range e.Store.List(ctx, "tenants/") {
		if err != nil {
			e.T.Fatal(err)
		}
		if (strings.Contains(info.Key, "/segments/") || strings.Contains(info.Key, "/snapshots/")) && !named[info.Key] {
			out = append(out, info.Key)
		}
	}
	return out
}
