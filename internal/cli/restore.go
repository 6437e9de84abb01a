package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

func runRestore(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "restore", "restore --tenant T (--at TIME | --lsn X/Y) --dsn DSN [flags]")
	var store storeFlags
	var com commonFlags
	var tenant, at, lsn, dsn, targetDSN, schema string
	var parallel int
	store.register(fs)
	com.register(fs)
	fs.StringVar(&tenant, "tenant", "", "the tenant to restore (as it appears in the tenant column or schema name)")
	fs.StringVar(&at, "at", "", "restore point as a time: every transaction committed at or before it (RFC 3339, e.g. 2026-11-23T10:15:00Z)")
	fs.StringVar(&lsn, "lsn", "", "restore point as an LSN: every transaction committed at or before it (e.g. 16/B374D848)")
	fs.StringVar(&dsn, "dsn", "", "the source database; the restore goes side by side into it unless --target-dsn is given")
	fs.StringVar(&targetDSN, "target-dsn", "", "restore into this database instead of the source")
	fs.StringVar(&schema, "schema", "", "name of the schema to create (default tw_<tenant>_<restore point>); it must not exist")
	fs.IntVar(&parallel, "parallel", 2, "tables downloaded and folded at once")
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := newLogger(e.stderr, com.logLevel)
	if err != nil {
		return err
	}
	if tenant == "" {
		return errors.New("no tenant: pass --tenant T (see the tenants with `tenantwal ls`)")
	}
	target, err := replayer.ParseTarget(at, lsn)
	if err != nil {
		return err
	}
	dsnFlag := "target-dsn"
	if targetDSN == "" {
		targetDSN, dsnFlag = dsn, "dsn"
	}
	if targetDSN == "" {
		return errors.New("no database to restore into: pass --dsn (side by side in the source) or --target-dsn")
	}
	st, err := store.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	// Connect before reading the catalog, so an unreachable database is
	// reported whatever the archive holds.
	conn, err := connectPG(ctx, targetDSN, dsnFlag)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	t, err := loadTenant(ctx, st, schemas.TenantID(tenant))
	if err != nil {
		return err
	}
	plan, err := replayer.PlanRestore(t, target)
	if err != nil {
		return err
	}
	res, err := replayer.Apply(ctx, st, conn, plan, replayer.Options{Schema: schema, Parallel: parallel, TempDir: os.TempDir(), Logger: log})
	if err != nil {
		return err
	}
	var rows int64
	for _, tr := range res.Tables {
		rows += tr.Rows
	}
	fmt.Fprintf(e.stdout, "restored tenant %q at %s into schema %s: %d table(s), %d row(s) in %s\n",
		tenant, target, res.Schema, len(res.Tables), rows, res.Duration.Round(time.Millisecond))
	for _, tr := range res.Tables {
		fmt.Fprintf(e.stdout, "  %-40s -> %-50s %10d rows\n", tr.Name, tr.Target, tr.Rows)
	}
	return nil
}

// loadTenant loads a tenant's catalog, with an error naming the fix when
// the archive does not know it.
func loadTenant(ctx context.Context, st objstore.Store, id schemas.TenantID) (*catalog.Tenant, error) {
	if err := id.Validate(); err != nil {
		return nil, fmt.Errorf("--tenant: %w", err)
	}
	return catalog.LoadTenant(ctx, st, id)
}
