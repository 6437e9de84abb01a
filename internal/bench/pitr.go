package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/pgserver"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// The whole-cluster PITR runbook tenantwal replaces: restore the base
// backup, replay WAL to the restore point, dump the tenant's schema and
// restore it into a database of the primary.

// baseBackup takes the base backup the runbook starts from, before the
// backlog, with a physical slot that keeps the primary's WAL from then on.
// Not timed: operators take base backups ahead of time.
func (r *runner) baseBackup(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "tenantwal-bench-pitr-")
	if err != nil {
		return err
	}
	r.pitrDir = dir
	base := filepath.Join(dir, "base")
	if _, err := runTool(ctx, r.binDir, "pg_basebackup", "-d", r.dsn, "-D", base, "-X", "stream",
		"-c", "fast", "--no-sync", "-C", "-S", "bench_pitr"); err != nil {
		return err
	}
	return nil
}

// pitr runs the runbook to r.endTime for the restored tenant and returns
// its wall time: copy the base backup, start PostgreSQL in recovery with
// recovery_target_time and restore_command reading the primary's pg_wal,
// wait for promotion, pg_dump -Fc -n the tenant's schema, pg_restore it
// into a new database of the primary.
func (r *runner) pitr(ctx context.Context) (time.Duration, error) {
	tn := r.pitrTenant()
	srvDir := filepath.Join(r.pitrDir, "server")
	data := filepath.Join(srvDir, "data")
	start := time.Now()
	if err := os.MkdirAll(srvDir, 0o700); err != nil {
		return 0, err
	}
	if _, err := runCmd(ctx, "cp", "-a", filepath.Join(r.pitrDir, "base"), data); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(data, "recovery.signal"), nil, 0o600); err != nil {
		return 0, err
	}
	if err := chownToPostgres(r.pitrDir); err != nil {
		return 0, err
	}
	settings := serverSettings()
	settings["restore_command"] = "cp " + filepath.Join(r.srv.DataDir(), "pg_wal") + "/%f %p"
	settings["recovery_target_time"] = r.endTime.UTC().Format("2006-01-02 15:04:05.999999+00")
	settings["recovery_target_inclusive"] = "on"
	settings["recovery_target_action"] = "promote"
	srv, err := pgserver.Start(ctx, pgserver.Options{BinDir: r.binDir, Dir: srvDir, Logger: r.log, Settings: settings})
	if err != nil {
		return 0, err
	}
	defer srv.Stop()
	conn, err := pgx.Connect(ctx, srv.DSN("bench"))
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for {
		var inRecovery bool
		if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
			return 0, err
		}
		if !inRecovery {
			break
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	dump := filepath.Join(r.pitrDir, "tenant.dump")
	if _, err := runTool(ctx, r.binDir, "pg_dump", "-d", srv.DSN("bench"), "-Fc", "-n", tn.Schema(), "-f", dump); err != nil {
		return 0, err
	}
	admin, err := pgx.Connect(ctx, r.srv.DSN("postgres"))
	if err != nil {
		return 0, err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if _, err := admin.Exec(ctx, "CREATE DATABASE bench_pitr"); err != nil {
		return 0, err
	}
	if _, err := runTool(ctx, r.binDir, "pg_restore", "-d", r.srv.DSN("bench_pitr"), dump); err != nil {
		return 0, err
	}
	took := time.Since(start)
	restored, err := pgx.Connect(ctx, r.srv.DSN("bench_pitr"))
	if err != nil {
		return took, err
	}
	defer restored.Close(context.WithoutCancel(ctx))
	var rows int64
	if err := restored.QueryRow(ctx, "SELECT count(*) FROM "+tn.table()).Scan(&rows); err != nil {
		return took, err
	}
	if rows != r.typicalRows {
		return took, fmt.Errorf("PITR restored %d rows of tenant %s, the source had %d at the restore point", rows, tn.ID, r.typicalRows)
	}
	return took, nil
}

// pitrTenant is the tenant both runbooks restore: a typical bridge tenant
// (issue #4: "restore one tenant of a 50-tenant bridge database"), not the
// whale that holds a tenth of all changes.
func (r *runner) pitrTenant() *tenant {
	for _, t := range r.tenants[1:] {
		if t.Bridge {
			return t
		}
	}
	return r.tenants[0]
}

// restoreTypical restores the PITR tenant at endTime with tenantwal, timed
// as the runbook is: from reading the archive to the tenant's rows in a
// new schema of the primary.
func (r *runner) restoreTypical(ctx context.Context) (time.Duration, error) {
	tn := r.pitrTenant()
	conn, err := pgx.Connect(ctx, r.dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	start := time.Now()
	t, err := catalog.LoadTenant(ctx, r.e2e.store, schemas.TenantID(tn.ID))
	if err != nil {
		return 0, err
	}
	plan, err := replayer.PlanRestore(t, replayer.Target{Time: r.endTime})
	if err != nil {
		return 0, err
	}
	res, err := replayer.Apply(ctx, r.e2e.store, conn, plan, replayer.Options{Schema: "bench_restored_typical", TempDir: r.dir, Logger: r.log})
	if err != nil {
		return 0, err
	}
	took := time.Since(start)
	var rows int64
	for _, tr := range res.Tables {
		rows += tr.Rows
	}
	if rows != r.typicalRows {
		return took, fmt.Errorf("restored %d rows of tenant %s, the source had %d at the restore point", rows, tn.ID, r.typicalRows)
	}
	_, err = conn.Exec(ctx, "DROP SCHEMA bench_restored_typical CASCADE")
	return took, err
}

func (r *runner) pitrCompare(ctx context.Context) error {
	ours, err := r.restoreTypical(ctx)
	if err != nil {
		return err
	}
	took, err := r.pitr(ctx)
	if err != nil {
		return err
	}
	m := atMost(Measure{Name: MeasurePITR, Value: ours.Seconds(), Unit: "s",
		Ceiling: took.Seconds(), CeilingName: "base backup copy + WAL replay + pg_dump -n + pg_restore"}, 0.1)
	m.Target = "≤ 0.1× (≥ 10× faster)"
	m.Note = fmt.Sprintf("tenant %s (%d rows) of a database with %d bridge and %d pool tenants; PITR runbook %s, tenantwal restore %s (%.1f× faster); "+
		"for the whale %s (a tenth of all changes) tenantwal took %s (%.1f× faster than the same runbook)",
		r.pitrTenant().ID, r.typicalRows, countBridge(r.tenants), len(r.tenants)-countBridge(r.tenants), took.Round(time.Millisecond),
		ours.Round(time.Millisecond), took.Seconds()/ours.Seconds(),
		r.tenants[0].ID, r.restoreTook.Round(time.Millisecond), took.Seconds()/r.restoreTook.Seconds())
	r.rep.Rows = append(r.rep.Rows, m)
	r.printf("%s", m.Note)
	return nil
}

func countBridge(ts []*tenant) int {
	n := 0
	for _, t := range ts {
		if t.Bridge {
			n++
		}
	}
	return n
}

// runCmd runs a system command.
func runCmd(ctx context.Context, name string, args ...string) (toolRun, error) {
	return runTool(ctx, "", name, args...)
}

// chownToPostgres hands dir to the postgres user when we are root, as
// pgserver does for the directories it creates.
func chownToPostgres(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root needs a postgres user: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
