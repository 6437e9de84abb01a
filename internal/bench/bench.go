package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/pgserver"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// Workload size at Size 1.
const (
	backlogChanges = 1_000_000 // row changes in the measured backlog
	snapshotRows   = 100_000   // rows of the restored tenant before tenantwal starts
	lagDuration    = 20 * time.Second
)

// Options configures Run. Zero values take the documented defaults.
type Options struct {
	// Size scales the workload; 1 (default) is a backlog of 1M row changes
	// (~200 bytes each) plus a 100k-row tenant snapshot, which runs in
	// well under 10 minutes on 2 cores. 0.01 is a smoke test.
	Size float64
	// Tenants is the number of tenants, half pool (rows in public.orders)
	// and half bridge (a schema each). Default 100.
	Tenants int
	// Dir is the working directory for PostgreSQL, NATS and the archives.
	// Default: a new temporary directory, removed at the end.
	Dir string
	// Keep keeps Dir (the archives, the server) after the run.
	Keep bool
	// BinDir holds the PostgreSQL binaries (postgres, initdb,
	// pg_recvlogical, pg_dump). Default pgserver.FindBinDir().
	BinDir string
	// PoolTenants is the number of pool tenants of the many-tenants memory
	// measure, which precedes the big transaction. Default 10,000.
	PoolTenants int
	// Workers is the number of workload connections. Default 2.
	Workers int
	// LagDuration is how long the steady load of the lag measure runs.
	// Default 20s × Size, at least 3s, at most 20s.
	LagDuration time.Duration
	// FlushInterval is the archiver's flush interval in the end-to-end
	// instance (throughput, lag, restore). Default 500ms: the lag target
	// (p99 < 2 s) is met with it on 2 cores, and not with 1s.
	FlushInterval time.Duration
	// Executable is the tenantwal binary run as child processes for the
	// peak RSS measure. Default: this process when it is tenantwal, else
	// one built with `go build ./cmd/tenantwal` in the module containing the
	// working directory.
	Executable string
	// CPUProfile, if set, is a file receiving a CPU profile of the process
	// while capture alone decodes the backlog.
	CPUProfile string
	// Logger receives the pipeline's logs. Default: discard.
	Logger *slog.Logger
}

// Validate fills defaults and checks the options.
func (o *Options) Validate() error {
	if o.Size == 0 {
		o.Size = 1
	}
	if o.Tenants == 0 {
		o.Tenants = 100
	}
	if o.Workers == 0 {
		o.Workers = 2
	}
	if o.PoolTenants == 0 {
		o.PoolTenants = 10_000
	}
	if o.PoolTenants < 1 || o.PoolTenants > 100_000 {
		return fmt.Errorf("bench: %d pool tenants for the memory measure: want 1 to 100000", o.PoolTenants)
	}
	if o.LagDuration == 0 {
		o.LagDuration = min(lagDuration, max(3*time.Second, time.Duration(o.Size*float64(lagDuration))))
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.Size < 0 || math.IsNaN(o.Size) || math.IsInf(o.Size, 0):
		return fmt.Errorf("bench: size %v: use a positive number (1 is the default run)", o.Size)
	case o.Tenants < 2 || o.Tenants > 10000:
		return fmt.Errorf("bench: tenants %d: use 2 to 10000", o.Tenants)
	case o.Workers < 1:
		return fmt.Errorf("bench: workers %d: use at least 1", o.Workers)
	case o.FlushInterval < 10*time.Millisecond:
		return fmt.Errorf("bench: flush interval %s: use at least 10ms", o.FlushInterval)
	}
	return nil
}

// runner is one benchmark run's state.
type runner struct {
	opts     Options
	progress io.Writer
	log      *slog.Logger
	dir      string
	binDir   string
	srv      *pgserver.Server
	dsn      string
	tenants  []*tenant
	rep      *Report
	capA     *instance // capture alone
	e2e      *instance // capture + archiver
	e2eRun   *running  // e2e while it runs

	changes     int64       // backlog row changes
	endLSN      schemas.LSN // after the backlog
	endTime     time.Time   // after the backlog's last commit
	ceiling     float64     // pg_recvlogical changes/s
	ceilingNote string
	copyData    []byte // the restored tenant's rows at endTime, COPY binary
	copyRows    int64
	dumpSize    int64 // pg_dump -Fc of the restored tenant's schema at the snapshot
	pitrDir     string
	restoreTook time.Duration // tenantwal's restore of the tenant at endTime
	typicalRows int64         // the PITR tenant's rows at endTime
}

// Run runs the benchmark: it starts its own PostgreSQL, embedded NATS and
// file:// stores under opts.Dir, generates the workload, measures tenantwal
// and the PostgreSQL ceilings in the same run, and returns the report. It
// writes one line per step to progress. On error the report holds the rows
// measured so far.
func Run(ctx context.Context, opts Options, progress io.Writer) (rep *Report, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	r := &runner{opts: opts, progress: progress, log: opts.Logger, binDir: opts.BinDir,
		rep: &Report{Size: opts.Size, Tenants: opts.Tenants, CPUs: runtime.NumCPU(), Started: time.Now().UTC()}}
	if r.binDir == "" {
		if r.binDir, err = pgserver.FindBinDir(); err != nil {
			return nil, err
		}
	}
	if err := r.makeDir(); err != nil {
		return nil, err
	}
	defer func() {
		err = errors.Join(err, r.cleanup(ctx))
		r.rep.Duration = time.Since(r.rep.Started)
	}()
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"start PostgreSQL, create the tenants' tables, load the restored tenant's snapshot rows", r.setup},
		{"pg_basebackup for the whole-cluster PITR runbook (untimed)", r.baseBackup},
		{"tenantwal init; take two baselines (capture alone, capture + archiver)", r.baselines},
		{"generate the backlog", r.backlog},
		{"ceiling: pg_recvlogical decodes the backlog", r.recvCeiling},
		{"capture alone decodes, routes and publishes the backlog", r.captureOnly},
		{"capture + archiver make the backlog durable in the store", r.endToEnd},
		{"steady load at half the ceiling: commit → durable lag", r.lag},
		{"restore one tenant at the backlog's end vs COPY FROM", r.restore},
		{"tenant snapshot bytes vs pg_dump -Fc", r.snapshotBytes},
		{"whole-cluster PITR runbook to the same point, for the same tenant", r.pitrCompare},
		{"peak RSS of tenantwal capture and archive (child processes) with many pool tenants, then through one big transaction", r.peakRSS},
	}
	for _, s := range steps {
		fmt.Fprintf(progress, "==> %s\n", s.name)
		start := time.Now()
		if err := s.fn(ctx); err != nil {
			return r.rep, fmt.Errorf("bench: %s: %w", s.name, err)
		}
		fmt.Fprintf(progress, "    done in %s\n", time.Since(start).Round(time.Millisecond))
	}
	return r.rep, nil
}

func (r *runner) makeDir() error {
	r.dir = r.opts.Dir
	var err error
	if r.dir == "" {
		if r.dir, err = os.MkdirTemp("", "tenantwal-bench-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	if abs, err := filepath.Abs(r.dir); err == nil {
		r.dir = abs
	}
	return nil
}

func (r *runner) cleanup(ctx context.Context) error {
	err := r.stopE2E()
	for _, in := range []*instance{r.capA, r.e2e} {
		if in != nil {
			err = errors.Join(err, in.close(ctx))
		}
	}
	if r.srv != nil {
		err = errors.Join(err, r.srv.Stop())
	}
	if r.pitrDir != "" {
		err = errors.Join(err, os.RemoveAll(r.pitrDir))
	}
	if r.opts.Keep {
		fmt.Fprintf(r.progress, "kept the working directory %s\n", r.dir)
		return err
	}
	return errors.Join(err, os.RemoveAll(r.dir))
}

func (r *runner) printf(format string, args ...any) {
	fmt.Fprintf(r.progress, "    "+format+"\n", args...)
}

// scaled is n × Size, at least min.
func (r *runner) scaled(n int64, min int64) int64 { return max(min, int64(float64(n)*r.opts.Size)) }

// waitTimeout bounds every wait for the pipeline.
func (r *runner) waitTimeout() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("TENANTWAL_BENCH_WAIT")); err == nil && d > 0 {
		return d // shorter, when looking into a stall
	}
	return time.Duration(max(1, r.opts.Size) * float64(10*time.Minute))
}

func (r *runner) setup(ctx context.Context) error {
	var err error
	// The server gets its own temporary directory: when we are root it must
	// belong to the postgres user, and so must every directory above it.
	r.srv, err = pgserver.Start(ctx, pgserver.Options{BinDir: r.binDir, Logger: r.log, Settings: serverSettings()})
	if err != nil {
		return err
	}
	admin, err := pgx.Connect(ctx, r.srv.DSN("postgres"))
	if err != nil {
		return err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if _, err := admin.Exec(ctx, "CREATE DATABASE bench"); err != nil {
		return err
	}
	r.dsn = r.srv.DSN("bench")
	conn, err := pgx.Connect(ctx, r.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	r.tenants = tenants(r.opts.Tenants)
	if err := createSchema(ctx, conn, r.tenants); err != nil {
		return err
	}
	whale := r.tenants[0]
	if err := preload(ctx, conn, whale, r.scaled(snapshotRows, 1000)); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		return err
	}
	r.dumpSize, err = dumpSchema(ctx, r.binDir, r.dsn, whale.Schema(), filepath.Join(r.dir, "snapshot.dump"))
	if err != nil {
		return err
	}
	r.printf("PostgreSQL on 127.0.0.1:%d; %d tenants; tenant %s holds %d rows; pg_dump -Fc -n %s: %d bytes",
		r.srv.Port(), len(r.tenants), whale.ID, whale.hi-whale.lo, whale.Schema(), r.dumpSize)
	return nil
}

// serverSettings are the PostgreSQL settings of the bench's servers: no
// durability (the bench measures throughput, not the disk), no checkpoints
// during the run, so the primary's pg_wal holds all WAL since the base
// backup.
func serverSettings() map[string]string {
	return map[string]string{
		"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
		"max_wal_size": "16GB", "checkpoint_timeout": "1h", "shared_buffers": "256MB",
		"wal_sender_timeout": "0",
	}
}

func (r *runner) baselines(ctx context.Context) error {
	var err error
	if r.capA, err = openInstance(ctx, r.dir, "capture", r.dsn, r.log); err != nil {
		return err
	}
	if r.e2e, err = openInstance(ctx, r.dir, "e2e", r.dsn, r.log); err != nil {
		return err
	}
	r.e2e.acfg.FlushInterval = r.opts.FlushInterval
	for _, in := range []*instance{r.capA, r.e2e} {
		if err := in.takeBaseline(ctx, r.waitTimeout()); err != nil {
			return fmt.Errorf("%s: %w", in.name, err)
		}
	}
	conn, err := pgx.Connect(ctx, r.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "SELECT pg_create_logical_replication_slot('bench_recv', 'pgoutput')")
	return err
}

func (r *runner) backlog(ctx context.Context) error {
	g := newGenerator(r.dsn, r.tenants, r.opts.Workers)
	start, cpu := time.Now(), sampleCPU(r.srv.Pid())
	if err := g.run(ctx, r.scaled(backlogChanges, 2*txnRows*batchTxns), 0, 1); err != nil {
		return err
	}
	took := time.Since(start)
	cpuNote := cpu.since(r.srv.Pid())
	r.changes = g.changes.Load()
	r.rep.Changes = r.changes
	conn, err := pgx.Connect(ctx, r.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var lsn string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text, clock_timestamp()").Scan(&lsn, &r.endTime); err != nil {
		return err
	}
	if r.endLSN, err = schemas.ParseLSN(lsn); err != nil {
		return err
	}
	// Let the next commit's time be strictly later than endTime.
	time.Sleep(time.Millisecond)
	whale := r.tenants[0]
	if r.copyData, r.copyRows, err = copyOut(ctx, conn.PgConn(), whale); err != nil {
		return err
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+r.pitrTenant().table()).Scan(&r.typicalRows); err != nil {
		return err
	}
	r.printf("%d changes in %d transactions in %s (%.0f changes/s; %s), end LSN %s; tenant %s now holds %d rows",
		r.changes, g.txns.Load(), took.Round(time.Millisecond), float64(r.changes)/took.Seconds(), cpuNote, r.endLSN, whale.ID, r.copyRows)
	return nil
}

func (r *runner) recvCeiling(ctx context.Context) error {
	cpu := sampleCPU(r.srv.Pid())
	run, err := recvlogical(ctx, r.binDir, r.dsn, "bench_recv", r.e2e.ccfg.Publication, r.endLSN)
	if err != nil {
		return err
	}
	r.ceiling = float64(r.changes) / run.Wall.Seconds()
	r.ceilingNote = fmt.Sprintf("pg_recvlogical decoded the backlog in %s (%s; pg_recvlogical %.2f cores)",
		run.Wall.Round(time.Millisecond), cpu.since(r.srv.Pid()), run.CPU.Seconds()/run.Wall.Seconds())
	r.printf("%.0f changes/s; %s", r.ceiling, r.ceilingNote)
	return nil
}

func (r *runner) captureOnly(ctx context.Context) (err error) {
	if r.opts.CPUProfile != "" {
		f, err := os.Create(r.opts.CPUProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			err = errors.Join(err, f.Close())
		}()
	}
	start, cpu := time.Now(), sampleCPU(r.srv.Pid())
	run, err := r.capA.start(ctx, true, false)
	if err != nil {
		return err
	}
	end, err := run.waitCounter(ctx, captureChanges, float64(r.changes), r.waitTimeout())
	cpuNote := cpu.since(r.srv.Pid())
	if err := errors.Join(err, run.stop()); err != nil {
		return err
	}
	took := end.Sub(start)
	m := atLeast(Measure{Name: MeasureCapture, Value: float64(r.changes) / took.Seconds(), Unit: "changes/s",
		Ceiling: r.ceiling, CeilingName: "pg_recvlogical, pgoutput, same backlog"}, 0.9)
	m.Note = fmt.Sprintf("%d changes in %s, from capture's start to its last publish (embedded NATS, no archiver; %s). Ceiling: %s",
		r.changes, took.Round(time.Millisecond), cpuNote, r.ceilingNote)
	r.rep.Rows = append(r.rep.Rows, m)
	r.printf("capture: %s, %.0f changes/s (%.2f× the ceiling)", took.Round(time.Millisecond), m.Value, m.Ratio)
	// Leave the capture-only archive's disk space to the rest of the run.
	return errors.Join(r.capA.close(ctx), removeAndForget(&r.capA))
}

func removeAndForget(in **instance) error {
	dir := (*in).dir
	*in = nil
	return os.RemoveAll(dir)
}

func (r *runner) endToEnd(ctx context.Context) error {
	start, cpu := time.Now(), sampleCPU(r.srv.Pid())
	run, err := r.e2e.start(ctx, true, true)
	if err != nil {
		return err
	}
	r.e2eRun = run
	end, err := run.waitCounter(ctx, archiverRows, float64(r.changes), r.waitTimeout())
	if err != nil {
		return err
	}
	took := end.Sub(start)
	m := atLeast(Measure{Name: MeasureArchive, Value: float64(r.changes) / took.Seconds(), Unit: "changes/s",
		Ceiling: r.ceiling, CeilingName: "pg_recvlogical, pgoutput, same backlog"}, 0.7)
	m.Note = fmt.Sprintf("%d changes in %s, from capture + archiver start to the last row written to the store (flush interval %s; %s)",
		r.changes, took.Round(time.Millisecond), r.e2e.acfg.FlushInterval, cpu.since(r.srv.Pid()))
	r.rep.Rows = append(r.rep.Rows, m)
	r.printf("capture + archiver: %s, %.0f changes/s (%.2f× the ceiling)", took.Round(time.Millisecond), m.Value, m.Ratio)
	return nil
}

func (r *runner) restore(ctx context.Context) error {
	whale := r.tenants[0]
	// The restorable range must pass endTime: a heartbeat after it archived.
	if _, err := r.e2eRun.waitFor(ctx, r.waitTimeout(), "the restorable range to pass the backlog's end", func() (bool, error) {
		t, err := catalog.LoadTenant(ctx, r.e2e.store, schemas.TenantID(whale.ID))
		if err != nil {
			return false, nil
		}
		return !t.Range.ToTime.Before(r.endTime), nil
	}); err != nil {
		return err
	}
	if err := r.stopE2E(); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, r.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	start, cpu := time.Now(), sampleCPU(r.srv.Pid())
	t, err := catalog.LoadTenant(ctx, r.e2e.store, schemas.TenantID(whale.ID))
	if err != nil {
		return err
	}
	plan, err := replayer.PlanRestore(t, replayer.Target{Time: r.endTime})
	if err != nil {
		return err
	}
	res, err := replayer.Apply(ctx, r.e2e.store, conn, plan, replayer.Options{Schema: "bench_restored", TempDir: r.dir, Logger: r.log})
	if err != nil {
		return err
	}
	took := time.Since(start)
	r.restoreTook = took
	cpuNote := cpu.since(r.srv.Pid())
	var rows int64
	for _, tr := range res.Tables {
		rows += tr.Rows
	}
	if rows != r.copyRows {
		return fmt.Errorf("restored %d rows of tenant %s, the source had %d at the restore point", rows, whale.ID, r.copyRows)
	}
	copyTook, err := copyIn(ctx, conn, whale, r.copyData)
	if err != nil {
		return err
	}
	m := atLeast(Measure{Name: MeasureRestore, Value: float64(rows) / took.Seconds(), Unit: "rows/s",
		Ceiling: float64(r.copyRows) / copyTook.Seconds(), CeilingName: "COPY FROM binary + primary key"}, 0.6)
	m.Note = fmt.Sprintf("tenant %s, %d rows from %d objects: restore %s (plan + download + fold + COPY + key; %s), COPY FROM %s",
		whale.ID, rows, len(plan.Tables[0].Objects), took.Round(time.Millisecond), cpuNote, copyTook.Round(time.Millisecond))
	r.rep.Rows = append(r.rep.Rows, m)
	r.printf("restore: %d rows in %s (%.0f rows/s); COPY FROM: %s (%.2f×)", rows, took.Round(time.Millisecond), m.Value, copyTook.Round(time.Millisecond), m.Ratio)
	_, err = conn.Exec(ctx, "DROP SCHEMA bench_restored CASCADE")
	return err
}

func (r *runner) stopE2E() error {
	if r.e2eRun == nil {
		return nil
	}
	err := r.e2eRun.stop()
	r.e2eRun = nil
	return err
}

func (r *runner) snapshotBytes(ctx context.Context) error {
	whale := r.tenants[0]
	entries, err := catalog.ReadManifest(ctx, r.e2e.store, schemas.TenantID(whale.ID))
	if err != nil {
		return err
	}
	// A snapshot archived over several flushes has partial entries, and its
	// complete entry lists their objects again: count each object once.
	var size, rows int64
	seen := map[string]bool{}
	for _, e := range entries {
		if e.Kind != schemas.EntrySnapshot {
			continue
		}
		for _, o := range e.Objects {
			if seen[o.Key] {
				continue
			}
			seen[o.Key] = true
			size += o.Bytes
			rows += o.Rows
		}
	}
	m := atMost(Measure{Name: MeasureSnapshot, Value: float64(size), Unit: "bytes",
		Ceiling: float64(r.dumpSize), CeilingName: "pg_dump -Fc -n of the same rows"}, 0.8)
	m.Note = fmt.Sprintf("tenant %s's initial snapshot: %d rows in Parquet (zstd)", whale.ID, rows)
	r.rep.Rows = append(r.rep.Rows, m)
	r.printf("snapshot: %d bytes for %d rows; pg_dump -Fc: %d bytes (%.2f×)", size, rows, r.dumpSize, m.Ratio)
	return nil
}
