package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/tenantwal/tenantwal/archiver"
	"github.com/tenantwal/tenantwal/capture"
	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/bus"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/internal/pgcheck"
	"github.com/tenantwal/tenantwal/internal/pgserver"
	"github.com/tenantwal/tenantwal/internal/workload"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// demoSpec is the demo's tenants: four in the shared pool tables (one with
// an id no subject or file name could hold as it is) and two with a schema
// each.
var demoSpec = workload.Spec{
	Pool:   []string{"acme", "globex", "initech", "umbrella corp/eu.west"},
	Bridge: []string{"hooli", "pied_piper"},
}

const demoVictim = "acme"

type demoFlags struct {
	duration time.Duration
	dir      string
	keep     bool
	logLevel string
}

// demo is one demo run's state.
type demo struct {
	e     *env
	f     demoFlags
	steps []demoStep
	dir   string
}

type demoStep struct {
	name string
	took time.Duration
}

func (d *demo) step(name string, fn func() error) error {
	fmt.Fprintf(d.e.stdout, "==> %s\n", name)
	start := time.Now()
	err := fn()
	took := time.Since(start)
	d.steps = append(d.steps, demoStep{name, took})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(d.e.stdout, "    done in %s\n", took.Round(time.Millisecond))
	return nil
}

func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "demo", "demo [flags]")
	var f demoFlags
	fs.DurationVar(&f.duration, "duration", 8*time.Second, "how long the workload runs before and after the accident")
	fs.StringVar(&f.dir, "dir", "", "working directory for PostgreSQL, NATS and the archive (default a new temp dir)")
	fs.BoolVar(&f.keep, "keep", false, "keep the working directory (the archive) after the demo")
	fs.StringVar(&f.logLevel, "log-level", "warn", "log level of the pipeline: debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	d := &demo{e: e, f: f}
	if err := d.run(ctx); err != nil {
		return err
	}
	return nil
}

func (d *demo) run(ctx context.Context) (err error) {
	log, err := newLogger(d.e.stderr, d.f.logLevel)
	if err != nil {
		return err
	}
	d.dir = d.f.dir
	if d.dir == "" {
		if d.dir, err = os.MkdirTemp("", "tenantwal-demo-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	if abs, err := filepath.Abs(d.dir); err == nil {
		d.dir = abs
	}
	defer func() {
		if d.f.keep {
			fmt.Fprintf(d.e.stdout, "kept the working directory %s\n", d.dir)
			return
		}
		err = errors.Join(err, os.RemoveAll(d.dir))
	}()
	fmt.Fprintf(d.e.stdout, "tenantwal demo: working directory %s\n", d.dir)

	var srv *pgserver.Server
	if err := d.step("start a throwaway PostgreSQL (wal_level=logical)", func() error {
		srv, err = pgserver.Start(ctx, pgserver.Options{Logger: log})
		if err == nil {
			fmt.Fprintf(d.e.stdout, "    PostgreSQL on 127.0.0.1:%d, data in %s\n", srv.Port(), srv.Dir())
		}
		return err
	}); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, srv.Stop()) }()
	dsn := srv.DSN("shop")
	if err := d.step("create database shop: pool tables (public.accounts, public.invoices), bridge schemas (tenant_hooli, tenant_pied_piper)", func() error {
		return createDemoDB(ctx, srv.DSN("postgres"), dsn)
	}); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	var st workload.Stats
	if err := d.step("load initial rows for six tenants", func() error {
		return workload.Run(ctx, pool, demoSpec, workload.Options{MaxTxns: 300, Seed: 7}, &st)
	}); err != nil {
		return err
	}

	storeURL := "file://" + filepath.Join(d.dir, "archive")
	store, err := objstore.Open(ctx, storeURL, objstore.S3Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	b, err := bus.Open(ctx, bus.Config{StoreDir: filepath.Join(d.dir, "nats"), SyncAlways: true}, log)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = errors.Join(err, b.Close(cctx))
	}()
	pctx, stopPipeline := context.WithCancel(ctx)
	defer stopPipeline()
	pg, pgctx := errgroup.WithContext(pctx)
	ccfg := capture.Config{DSN: dsn, Heartbeat: time.Second, Route: route.Config{Model: route.Mixed}}
	if err := d.step("tenantwal init + capture + archiver: initial snapshot of every tenant", func() error {
		if err := capture.Init(ctx, ccfg); err != nil {
			return err
		}
		c, err := capture.New(ccfg, b, store, capture.WithLogger(log.With("component", "capture")))
		if err != nil {
			return err
		}
		a, err := archiver.New(archiver.Config{FlushInterval: time.Second}, b, store, archiver.WithLogger(log.With("component", "archiver")))
		if err != nil {
			return err
		}
		pg.Go(func() error { return c.Run(pgctx) })
		pg.Go(func() error { return a.Run(pgctx) })
		return waitFor(pgctx, 2*time.Minute, "the initial snapshot to be archived", func() (bool, error) {
			_, err := catalog.ReadBaseline(ctx, store)
			if errors.Is(err, objstore.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		})
	}); err != nil {
		return errors.Join(err, stopAndWait(stopPipeline, pg))
	}

	gate := &sync.RWMutex{}
	var before map[string]pgcheck.Sum
	var restorePoint time.Time
	if err := d.step(fmt.Sprintf("run a workload on all tenants for %s while tenantwal archives", d.f.duration), func() error {
		wctx, cancel := context.WithTimeout(pctx, d.f.duration)
		defer cancel()
		if err := workload.Run(wctx, pool, demoSpec, workload.Options{Gate: gate, Seed: 11}, &st); err != nil {
			return err
		}
		if err := pctx.Err(); err != nil {
			return err
		}
		before, err = tenantSums(ctx, pool, demoVictim)
		if err != nil {
			return err
		}
		if err := pool.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&restorePoint); err != nil {
			return err
		}
		fmt.Fprintf(d.e.stdout, "    %d transactions (%d inserts, %d updates, %d deletes); restore point %s\n",
			st.Txns.Load(), st.Inserts.Load(), st.Updates.Load(), st.Deletes.Load(), restorePoint.UTC().Format(time.RFC3339Nano))
		return nil
	}); err != nil {
		return errors.Join(err, stopAndWait(stopPipeline, pg))
	}

	var accidentAt time.Time
	if err := d.step(fmt.Sprintf("accident in tenant %q: a DELETE and an UPDATE without the right WHERE, while the others keep writing", demoVictim), func() error {
		wctx, cancel := context.WithTimeout(pctx, d.f.duration/2)
		defer cancel()
		others := demoSpec.Tenants()[1:]
		wg, wgctx := errgroup.WithContext(wctx)
		wg.Go(func() error {
			return workload.Run(wgctx, pool, demoSpec, workload.Options{Tenants: others, Seed: 13}, &st)
		})
		wg.Go(func() error {
			return pgx.BeginFunc(wgctx, pool, func(tx pgx.Tx) error {
				del, err := tx.Exec(wgctx, `DELETE FROM public.invoices WHERE tenant_id = $1 AND NOT paid`, demoVictim)
				if err != nil {
					return err
				}
				upd, err := tx.Exec(wgctx, `UPDATE public.accounts SET balance = 0, status = 'suspended' WHERE tenant_id = $1`, demoVictim)
				if err != nil {
					return err
				}
				fmt.Fprintf(d.e.stdout, "    deleted %d invoices, zeroed %d accounts\n", del.RowsAffected(), upd.RowsAffected())
				return tx.QueryRow(wgctx, "SELECT clock_timestamp()").Scan(&accidentAt)
			})
		})
		return wg.Wait()
	}); err != nil {
		return errors.Join(err, stopAndWait(stopPipeline, pg))
	}

	if err := d.step("wait until the archive holds the accident (restorable range passes it)", func() error {
		return waitFor(pgctx, time.Minute, "the archive to reach the accident", func() (bool, error) {
			t, err := catalog.LoadTenant(ctx, store, demoVictim)
			if err != nil {
				return false, nil
			}
			return t.Range.ToTime.After(accidentAt), nil
		})
	}); err != nil {
		return errors.Join(err, stopAndWait(stopPipeline, pg))
	}
	if err := stopAndWait(stopPipeline, pg); err != nil {
		return err
	}
	if err := d.listTenants(ctx, store); err != nil {
		return err
	}

	var res *replayer.Result
	target := replayer.Target{Time: restorePoint}
	if err := d.step(fmt.Sprintf("restore tenant %q to %s, side by side", demoVictim, restorePoint.UTC().Format(time.RFC3339Nano)), func() error {
		t, err := catalog.LoadTenant(ctx, store, demoVictim)
		if err != nil {
			return err
		}
		plan, err := replayer.PlanRestore(t, target)
		if err != nil {
			return err
		}
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		res, err = replayer.Apply(ctx, store, conn.Conn(), plan, replayer.Options{Logger: log})
		if err != nil {
			return err
		}
		fmt.Fprintf(d.e.stdout, "    created schema %s; the same as: tenantwal restore --store %s --tenant %s --at %s --dsn %s\n",
			res.Schema, storeURL, demoVictim, restorePoint.UTC().Format(time.RFC3339Nano), dsn)
		return nil
	}); err != nil {
		return err
	}
	if err := d.compare(ctx, pool, res, before); err != nil {
		return err
	}
	d.printTimings()
	return nil
}

func createDemoDB(ctx context.Context, adminDSN, dsn string) error {
	admin, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE shop"); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return workload.Setup(ctx, conn, demoSpec)
}

// tenantSums checksums every table of tenant in the live database.
func tenantSums(ctx context.Context, pool *pgxpool.Pool, tenant string) (map[string]pgcheck.Sum, error) {
	out := map[string]pgcheck.Sum{}
	for _, t := range demoSpec.Tables(tenant) {
		s, err := pgcheck.Table(ctx, pool, t.Schema, t.Name, t.TenantColumn, tenant)
		if err != nil {
			return nil, err
		}
		out[t.QualifiedName()] = s
	}
	return out, nil
}

// compare checks the restored tables against the checksums taken at the
// restore point and shows what the accident changed.
func (d *demo) compare(ctx context.Context, pool *pgxpool.Pool, res *replayer.Result, before map[string]pgcheck.Sum) error {
	fmt.Fprintf(d.e.stdout, "==> compare the restore with the tenant at the restore point, and with the live tables\n")
	restored := map[string]replayer.TableResult{}
	for _, tr := range res.Tables {
		restored[tr.Name] = tr
	}
	tw := tabwriter.NewWriter(d.e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "    TABLE\tAT RESTORE POINT\tRESTORED\tMATCH\tLIVE ROWS\tONLY IN RESTORE\tONLY IN LIVE")
	var bad []string
	for _, t := range demoSpec.Tables(demoVictim) {
		name := t.QualifiedName()
		tr, ok := restored[name]
		if !ok {
			bad = append(bad, name+" was not restored")
			continue
		}
		got, err := pgcheck.Relation(ctx, pool, tr.Target, "")
		if err != nil {
			return err
		}
		live, err := pgcheck.Table(ctx, pool, t.Schema, t.Name, t.TenantColumn, demoVictim)
		if err != nil {
			return err
		}
		onlyRestored, onlyLive, err := diffCounts(ctx, pool, t, tr.Target)
		if err != nil {
			return err
		}
		want := before[name]
		match := got == want
		if !match {
			bad = append(bad, fmt.Sprintf("%s: restored %s, expected %s", name, got, want))
		}
		fmt.Fprintf(tw, "    %s\t%d rows\t%d rows\t%v\t%d\t%d\t%d\n", name, want.Rows, got.Rows, match, live.Rows, onlyRestored, onlyLive)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(bad) > 0 {
		return fmt.Errorf("the restore differs from the source at the restore point: %v", bad)
	}
	fmt.Fprintf(d.e.stdout, "    every restored table equals the tenant's rows at the restore point (row count and checksum)\n")
	return nil
}

// diffCounts counts rows only in the restored table and only in the live
// tenant rows.
func diffCounts(ctx context.Context, pool *pgxpool.Pool, t workload.Table, restoredRel string) (onlyRestored, onlyLive int64, err error) {
	live := "SELECT * FROM " + pgx.Identifier{t.Schema, t.Name}.Sanitize()
	if t.TenantColumn != "" {
		live += " WHERE " + pgx.Identifier{t.TenantColumn}.Sanitize() + " = $1"
	}
	rest := "SELECT * FROM " + restoredRel
	var args []any
	if t.TenantColumn != "" {
		args = append(args, demoVictim)
	}
	err = pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM ("+rest+" EXCEPT ALL "+live+") a), (SELECT count(*) FROM ("+live+" EXCEPT ALL "+rest+") b)", args...).
		Scan(&onlyRestored, &onlyLive)
	return onlyRestored, onlyLive, err
}

func (d *demo) listTenants(ctx context.Context, store objstore.Store) error {
	fmt.Fprintf(d.e.stdout, "==> tenantwal ls: what the archive holds\n")
	ids, err := catalog.ListTenants(ctx, store)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(d.e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "    TENANT\tRESTORABLE FROM\tTO\tOBJECTS\tROWS")
	for _, id := range ids {
		t, err := catalog.LoadTenant(ctx, store, id)
		l := describe(id, t, err, false)
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%d\t%d\n", schemas.TenantID(l.Tenant), l.FromTime.Format(time.RFC3339), l.ToTime.Format(time.RFC3339Nano), l.Objects, l.Rows)
	}
	return tw.Flush()
}

func (d *demo) printTimings() {
	fmt.Fprintf(d.e.stdout, "\ntimings:\n")
	tw := tabwriter.NewWriter(d.e.stdout, 2, 4, 2, ' ', 0)
	for _, s := range d.steps {
		fmt.Fprintf(tw, "  %s\t%s\n", s.name, s.took.Round(time.Millisecond))
	}
	tw.Flush()
}

// stopAndWait cancels the pipeline and waits for it; a clean stop by
// cancellation is not an error.
func stopAndWait(cancel context.CancelFunc, g *errgroup.Group) error {
	cancel()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("pipeline: %w", err)
	}
	return nil
}

// waitFor polls cond every 100ms until it is true, ctx ends or timeout
// passes.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
