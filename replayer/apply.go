package replayer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// Options tune Apply.
type Options struct {
	// Schema is the schema the restore creates; "" means
	// DefaultSchemaName(tenant, target). It must not exist yet.
	Schema string
	// Parallel is how many tables are read at once (default 2): while one
	// table is copied in, the next ones' changes are read and held.
	Parallel int
	// TempDir holds downloaded objects too big to keep in memory; "" is
	// the system's temporary directory.
	TempDir string
	Logger  *slog.Logger
}

// Result reports what a restore created.
type Result struct {
	Schema string
	Tables []TableResult // sorted by Name
	// Types are the user-defined types the restore had to create (outside
	// the target schema, under their archived names).
	Types    []string
	Duration time.Duration
}

// TableResult is one restored table.
type TableResult struct {
	Name   string // source "schema.table"
	Target string // the restored table, schema-qualified and quoted
	Rows   int64
}

// Apply restores plan side by side: it creates a new schema in conn's
// database holding the tenant's tables as they were at the plan's target.
// Everything happens in one transaction; on any error nothing is left
// behind.
//
// Every object is checked against its manifest entry (tenant prefix, size,
// SHA-256) before a row of it is used. A table's changes, and the snapshot
// rows whose keys they touch, are folded by key in memory, so they must fit
// in memory for now (up to opts.Parallel tables' at once); snapshot rows no
// change touches stream to the COPY as they are read.
func Apply(ctx context.Context, store objstore.Store, conn *pgx.Conn, plan *Plan, opts Options) (*Result, error) {
	start := time.Now()
	if opts.Parallel <= 0 {
		opts.Parallel = 2
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Schema == "" {
		opts.Schema = DefaultSchemaName(plan.Tenant, plan.Target)
	}
	if err := checkPlan(plan); err != nil {
		return nil, err
	}
	log = log.With("tenant", plan.Tenant, "target", plan.Target.String(), "schema", opts.Schema)

	if err := resolveTimeVersions(ctx, store, plan, opts.TempDir); err != nil {
		return nil, err
	}
	// Before reading: it settles the enum labels rows are restored with.
	if err := addEnumLabels(ctx, conn, plan.Tables); err != nil {
		return nil, err
	}
	// Reading starts now, while the schema and types are created.
	ddls := nameTables(opts.Schema, plan.Tables)
	readers := startReading(ctx, store, plan, ddls, opts)
	defer func() { _ = readers.stop() }()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("restore: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	res := &Result{Schema: opts.Schema}
	if err := createSchema(ctx, tx, opts.Schema, fmt.Sprintf("%s of tenant %q at %s", schemas.RestoreSchemaComment, plan.Tenant, plan.Target)); err != nil {
		return nil, err
	}
	if res.Types, err = createTypes(ctx, tx, plan.Tables); err != nil {
		return nil, err
	}
	if err := readers.loadAll(ctx, tx, opts.Schema, log, res); err != nil {
		return nil, err
	}
	if err := finishSchema(ctx, tx, ddls, log); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("restore: commit: %w", err)
	}
	slices.SortFunc(res.Tables, func(a, b TableResult) int { return strings.Compare(a.Name, b.Name) })
	res.Duration = time.Since(start)
	log.Info("restore done", "tables", len(res.Tables), "duration", res.Duration)
	return res, nil
}

// checkPlan re-checks, before reading anything, that every object of the
// plan is under the tenant's prefix (defence in depth).
func checkPlan(plan *Plan) error {
	if err := schemas.TenantID(plan.Tenant).Validate(); err != nil {
		return err
	}
	prefix := schemas.TenantPrefix(plan.Tenant)
	for _, tp := range plan.Tables {
		if tp.Schema == nil {
			return fmt.Errorf("plan: table %s has no schema", tp.Name)
		}
		for _, o := range tp.Objects {
			if !strings.HasPrefix(o.Key, prefix) {
				return fmt.Errorf("plan: object %s is outside tenant %q's prefix %s: refusing to read it", o.Key, plan.Tenant, prefix)
			}
		}
	}
	return nil
}

func createSchema(ctx context.Context, tx pgx.Tx, schema, comment string) error {
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if exists {
		return fmt.Errorf("target schema %q already exists: drop it or choose another with --schema", schema)
	}
	if _, err := tx.Exec(ctx, "SELECT set_config($1, 'on', true)", schemas.RestoreSetting); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	_, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P06" { // duplicate_schema: a concurrent restore
		return fmt.Errorf("target schema %q already exists: drop it or choose another with --schema", schema)
	}
	if err != nil {
		return fmt.Errorf("create schema %q: %w", schema, err)
	}
	// Marks the schema for capture, which never archives it: a restore
	// into the source database must not feed back into the archive.
	if _, err := tx.Exec(ctx, "COMMENT ON SCHEMA "+pgx.Identifier{schema}.Sanitize()+" IS "+quoteLiteral(comment)); err != nil {
		return fmt.Errorf("comment on schema %q: %w", schema, err)
	}
	// The comment is gone if the schema is dropped before capture reads
	// the catalog; the message travels with the transaction itself.
	if _, err := tx.Exec(ctx, "SELECT CASE WHEN current_setting('wal_level') = 'logical' THEN pg_logical_emit_message(true, $1, $2) END",
		schemas.RestoreSchemaComment, schema); err != nil {
		return fmt.Errorf("announce restore schema %q: %w", schema, err)
	}
	return nil
}

// tableLoad is one table on its way into the target: a goroutine reads
// its objects (tableLoader) and hands its rows to the COPY through pipe.
type tableLoad struct {
	ddl  *tableDDL
	pipe *copyPipe
	// ready is closed once the changes are read: exists (or err) is set.
	ready  chan struct{}
	exists bool
	err    error
	// done is closed when the goroutine has finished; f is its fold.
	done chan struct{}
	f    *fold
}

// tableReaders read the plan's tables ahead of their COPYs: up to
// opts.Parallel tables at once, each table's changes first, then its rows
// stream to its COPY while its snapshot objects are read and its changes
// folded.
type tableReaders struct {
	loads  []*tableLoad
	inText func(*tableDDL) (*tableLoad, func())
	cancel context.CancelFunc
	ended  chan error // the reading goroutines' first error, once all ended
	err    error      // what ended sent, once received
	done   bool
}

func startReading(ctx context.Context, store objstore.Store, plan *Plan, ddls []*tableDDL, opts Options) *tableReaders {
	readCtx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(readCtx)
	g.SetLimit(opts.Parallel)
	r := &tableReaders{loads: make([]*tableLoad, len(ddls)), cancel: cancel, ended: make(chan error, 1)}
	for i, d := range ddls {
		r.loads[i] = newTableLoad(gctx, d, binaryEncoders(d.plan.Schema))
	}
	go func() {
		for _, tl := range r.loads {
			g.Go(func() error {
				defer close(tl.done)
				err := tl.read(gctx, store, plan, opts.TempDir)
				if errors.Is(err, errNotBinary) {
					return nil // loadTableInto loads the table again in text
				}
				if err != nil {
					err = fmt.Errorf("restore table %s: %w", tl.ddl.plan.Name, err)
				}
				return err
			})
		}
		r.ended <- g.Wait()
	}()
	// inText reads a table again for a COPY in text format, on its own
	// goroutine, which has ended when stop returns.
	r.inText = func(d *tableDDL) (tl *tableLoad, stop func()) {
		tctx, tcancel := context.WithCancel(readCtx)
		tl = newTableLoad(tctx, d, nil)
		go func() {
			defer close(tl.done)
			_ = tl.read(tctx, store, plan, opts.TempDir) // its error goes through tl
		}()
		return tl, func() { tcancel(); <-tl.done }
	}
	return r
}

// stop cancels the reading goroutines and waits for them to end. It
// returns the first error of one, unless it is a cancellation.
func (r *tableReaders) stop() error {
	if !r.done {
		r.cancel()
		r.err, r.done = <-r.ended, true
	}
	if errors.Is(r.err, context.Canceled) {
		return nil
	}
	return r.err
}

// loadAll creates and loads every table in tx, in plan order (one
// connection, so one COPY at a time), and stops the reading goroutines.
func (r *tableReaders) loadAll(ctx context.Context, tx pgx.Tx, schema string, log *slog.Logger, res *Result) error {
	var loadErr error
	for _, tl := range r.loads {
		if loadErr = loadTableInto(ctx, tx, schema, tl, r.inText, log, res); loadErr != nil {
			break
		}
	}
	// The first error of a reading goroutine cancels the others: it is the
	// cause when the copy only saw a cancellation.
	if err := r.stop(); err != nil && (loadErr == nil || errors.Is(loadErr, context.Canceled)) {
		return err
	}
	return loadErr
}

func newTableLoad(ctx context.Context, d *tableDDL, encs []binEncoder) *tableLoad {
	return &tableLoad{ddl: d, pipe: newCopyPipe(ctx, encs), ready: make(chan struct{}), done: make(chan struct{})}
}

// read runs in its own goroutine: it reads tl's changes, reports whether
// the table exists, then streams its rows into tl.pipe.
func (tl *tableLoad) read(ctx context.Context, store objstore.Store, plan *Plan, tempDir string) (err error) {
	readyClosed := false
	defer func() {
		if !readyClosed {
			tl.err = err
			close(tl.ready)
		} else {
			tl.pipe.close(err)
		}
	}()
	l, err := newTableLoader(store, plan, tl.ddl.plan, tempDir)
	if err != nil {
		return err
	}
	tl.f = l.f
	if tl.exists, err = l.readChanges(ctx); err != nil {
		return err
	}
	readyClosed = true
	close(tl.ready)
	if !tl.exists {
		return nil
	}
	return l.emit(ctx, tl.pipe)
}

// loadTableInto creates one table, copies its rows in and finishes it. A
// table copied in binary format that meets a value without an exact binary
// form is rolled back to a savepoint and read again for a text COPY
// (inText).
func loadTableInto(ctx context.Context, tx pgx.Tx, schema string, tl *tableLoad,
	inText func(*tableDDL) (*tableLoad, func()), log *slog.Logger, res *Result) error {
	d := tl.ddl
	if err := tl.wait(ctx, tl.ready); err != nil {
		return err
	}
	if !tl.exists {
		// Only changes after the target touched it: it did not exist yet
		// (for a time target, an entry can straddle the target).
		log.Debug("table has no change at or before the target; not created", "table", d.plan.Name)
		return nil
	}
	format := "text"
	if tl.pipe.encs != nil {
		format = "binary"
		if _, err := tx.Exec(ctx, "SAVEPOINT tenantwal_table"); err != nil {
			return fmt.Errorf("restore table %s: %w", d.plan.Name, err)
		}
		err := copyTable(ctx, tx, tl)
		if errors.Is(err, errNotBinary) {
			log.Debug("a value has no exact binary form; copying the table in text format", "table", d.plan.Name)
			if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT tenantwal_table"); err != nil {
				return fmt.Errorf("restore table %s: %w", d.plan.Name, err)
			}
			var stop func()
			tl, stop = inText(d)
			defer stop()
			if err := tl.wait(ctx, tl.ready); err != nil {
				return err
			}
			format, err = "text", copyTable(ctx, tx, tl)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT tenantwal_table"); err != nil {
			return fmt.Errorf("restore table %s: %w", d.plan.Name, err)
		}
	} else if err := copyTable(ctx, tx, tl); err != nil {
		return err
	}
	if err := tl.wait(ctx, tl.done); err != nil {
		return err
	}
	f := tl.f
	if f.orphans > 0 {
		log.Warn("deletes of rows the archive does not hold were ignored", "table", d.plan.Name, "count", f.orphans)
	}
	if err := finishTable(ctx, tx, schema, d); err != nil {
		return err
	}
	log.Info("table restored", "table", d.plan.Name, "target", d.target, "rows", tl.pipe.n, "changes", f.applied, "format", format)
	res.Tables = append(res.Tables, TableResult{Name: d.plan.Name, Target: d.target, Rows: tl.pipe.n})
	return nil
}

// wait waits for ch to close; then tl.err is the reading goroutine's error
// before its rows (ready), if any.
func (tl *tableLoad) wait(ctx context.Context, ch chan struct{}) error {
	select {
	case <-ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	if tl.err != nil {
		return fmt.Errorf("restore table %s: %w", tl.ddl.plan.Name, tl.err)
	}
	return nil
}

// copyTable creates tl's table and copies its rows in. It returns
// errNotBinary (unwrapped) when a binary COPY met a value without an
// exact binary form.
func copyTable(ctx context.Context, tx pgx.Tx, tl *tableLoad) error {
	d := tl.ddl
	if err := createTable(ctx, tx, d); err != nil {
		return err
	}
	cols := make([]string, len(d.plan.Schema.Columns))
	for i, c := range d.plan.Schema.Columns {
		cols[i] = pgx.Identifier{c.Name}.Sanitize()
	}
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, tl.pipe, tl.pipe.sql(d.target, cols)); err != nil {
		if errors.Is(tl.pipe.readErr, errNotBinary) {
			return errNotBinary
		}
		if tl.pipe.readErr != nil {
			// The server only saw the COPY fail: say why.
			return fmt.Errorf("restore table %s: %w", d.plan.Name, tl.pipe.readErr)
		}
		return fmt.Errorf("copy rows into %s: %w", d.target, err)
	}
	return nil
}
