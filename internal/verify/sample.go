package verify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/capture/pgrepl"
	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/internal/pgcheck"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// SampleOptions configure a sample restore.
type SampleOptions struct {
	// DSN is the source database. The sample restore's scratch schema is
	// created there too (marked as a restore, so capture never archives
	// it) and dropped at the end.
	DSN string
	// Publication names the published tables; Route routes them as capture
	// does, to find the tenant's rows in the source.
	Publication string
	Route       route.Config
	// Tenant is the tenant to restore; "" picks one of the archived
	// tenants at random.
	Tenant schemas.TenantID
	// Wait bounds how long to wait for the archive to reach the sample's
	// point (capture and archiver must be running). Default 2 minutes.
	Wait    time.Duration
	TempDir string
	Logger  *slog.Logger
}

// SampleTable is one table of a sample restore.
type SampleTable struct {
	Name     string      `json:"name"` // source "schema.table"
	Source   pgcheck.Sum `json:"source"`
	Restored pgcheck.Sum `json:"restored"`
}

// SampleReport is the outcome of a sample restore.
type SampleReport struct {
	Tenant   schemas.TenantID `json:"tenant"`
	LSN      schemas.LSN      `json:"lsn"`
	Tables   []SampleTable    `json:"tables"`
	Problems []Problem        `json:"problems"`
}

// OK reports whether the restore equalled the source.
func (r *SampleReport) OK() bool { return len(r.Problems) == 0 }

// Sample restores one tenant from the archive at the LSN of a fresh
// snapshot of the source and compares every table, row by row (count and
// checksum of the rows' text), with the tenant's rows in that snapshot.
//
// The snapshot is exported by a temporary logical replication slot, whose
// consistent point is an exact LSN: the restore target is the position
// just before it. Sample waits until the archive is complete up to there,
// so capture and archiver must be running. Differences are problems; the
// error is for a sample that could not run.
func Sample(ctx context.Context, store objstore.Store, opts SampleOptions) (rep *SampleReport, err error) {
	if opts.Wait == 0 {
		opts.Wait = 2 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	router, err := route.New(opts.Route)
	if err != nil {
		return nil, err
	}
	tenant := opts.Tenant
	if tenant == "" {
		if tenant, err = pickTenant(ctx, store); err != nil {
			return nil, err
		}
	}
	rep = &SampleReport{Tenant: tenant, Tables: []SampleTable{}, Problems: []Problem{}}

	// The snapshot lives as long as the replication connection is idle.
	rconn, err := pgrepl.Connect(ctx, opts.DSN)
	if err != nil {
		return nil, err
	}
	defer rconn.Close(context.WithoutCancel(ctx))
	slot, err := pgrepl.CreateReplicationSlot(ctx, rconn, "tenantwal_verify_"+randomHex(6), "pgoutput",
		pgrepl.CreateSlotOptions{Temporary: true, Snapshot: "export"})
	if err != nil {
		return nil, fmt.Errorf("sample restore needs a free replication slot: %w", err)
	}
	rep.LSN = slot.ConsistentPoint - 1

	conn, err := pgx.Connect(ctx, opts.DSN)
	if err != nil {
		return nil, fmt.Errorf("sample restore: connect to the source: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	want, err := sourceSums(ctx, conn, slot.SnapshotName, opts.Publication, router, tenant)
	if err != nil {
		return nil, err
	}
	rconn.Close(ctx) // the snapshot is no longer needed; nor is the slot

	plan, err := waitPlan(ctx, store, tenant, replayer.Target{LSN: rep.LSN}, opts.Wait)
	if err != nil {
		return nil, err
	}
	rconn2, err := pgx.Connect(ctx, opts.DSN)
	if err != nil {
		return nil, fmt.Errorf("sample restore: connect to the source: %w", err)
	}
	defer rconn2.Close(context.WithoutCancel(ctx))
	scratch := "tenantwal_verify_" + randomHex(6)
	res, err := replayer.Apply(ctx, store, rconn2, plan, replayer.Options{Schema: scratch, TempDir: opts.TempDir, Logger: opts.Logger})
	if err != nil {
		rep.Problems = append(rep.Problems, Problem{Tenant: tenant, Reason: fmt.Sprintf("restore at %s failed: %v", rep.LSN, err)})
		return rep, nil
	}
	defer func() {
		if _, derr := conn.Exec(context.WithoutCancel(ctx), "DROP SCHEMA "+pgx.Identifier{scratch}.Sanitize()+" CASCADE"); derr != nil {
			err = errors.Join(err, fmt.Errorf("drop the sample restore's schema %s: %w", scratch, derr))
		}
	}()
	restored := map[string]string{}
	for _, tr := range res.Tables {
		restored[tr.Name] = tr.Target
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	for name := range restored {
		if _, ok := want[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		st := SampleTable{Name: name, Source: want[name]}
		if rel, ok := restored[name]; ok {
			if st.Restored, err = pgcheck.Relation(ctx, conn, rel, ""); err != nil {
				return rep, err
			}
		}
		rep.Tables = append(rep.Tables, st)
		if st.Restored != st.Source {
			rep.Problems = append(rep.Problems, Problem{Tenant: tenant, Reason: fmt.Sprintf(
				"table %s restored at %s has %s, the source had %s", name, rep.LSN, st.Restored, st.Source)})
		}
	}
	return rep, nil
}

// sourceSums checksums the tenant's rows of every published table in the
// exported snapshot. Tables where the tenant has no rows are left out, as
// a restore does not create them; a restored table missing from the result
// is compared with an empty sum.
func sourceSums(ctx context.Context, conn *pgx.Conn, snapshot, publication string, router *route.Router, tenant schemas.TenantID) (map[string]pgcheck.Sum, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+snapshot+"'"); err != nil {
		return nil, fmt.Errorf("sample restore: use the exported snapshot: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT schemaname::text, tablename::text,
		(SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute
		  WHERE attrelid = format('%I.%I', schemaname, tablename)::regclass AND attnum > 0 AND NOT attisdropped)
		FROM pg_publication_tables WHERE pubname = $1`, publication)
	if err != nil {
		return nil, fmt.Errorf("sample restore: list the tables of publication %s: %w", publication, err)
	}
	var tables []*schemas.TableSchema
	for rows.Next() {
		var ts schemas.TableSchema
		var cols []string
		if err := rows.Scan(&ts.Schema, &ts.Name, &cols); err != nil {
			return nil, err
		}
		for _, c := range cols {
			ts.Columns = append(ts.Columns, schemas.Column{Name: c})
		}
		tables = append(tables, &ts)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sample restore: list the tables of publication %s: %w", publication, err)
	}
	if len(tables) == 0 {
		return nil, fmt.Errorf("sample restore: publication %s has no tables: pass the publication capture uses (--publication)", publication)
	}
	out := map[string]pgcheck.Sum{}
	for _, ts := range tables {
		rt := router.Route(ts)
		var s pgcheck.Sum
		switch {
		case rt.Excluded:
			continue
		case rt.Column >= 0:
			s, err = pgcheck.Table(ctx, tx, ts.Schema, ts.Name, rt.ColumnName, string(tenant))
		case rt.Fixed == tenant:
			s, err = pgcheck.Table(ctx, tx, ts.Schema, ts.Name, "", "")
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		if s.Rows > 0 {
			out[ts.QualifiedName()] = s
		}
	}
	return out, nil
}

// waitPlan plans the restore, waiting while the target lies beyond what
// the archive holds yet.
func waitPlan(ctx context.Context, store objstore.Store, tenant schemas.TenantID, target replayer.Target, wait time.Duration) (*replayer.Plan, error) {
	deadline := time.Now().Add(wait)
	for {
		ten, err := catalog.LoadTenant(ctx, store, tenant)
		if err != nil {
			return nil, err
		}
		plan, err := replayer.PlanRestore(ten, target)
		if err == nil {
			return plan, nil
		}
		if !errors.Is(err, replayer.ErrOutOfRange) || ten.Range.ToLSN >= target.LSN {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("sample restore: the archive of tenant %q is complete up to %s only, %s after the sample point %s: are capture and the archiver running? (%w)",
				tenant, ten.Range.ToLSN, wait, target.LSN, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// pickTenant picks one archived tenant at random.
func pickTenant(ctx context.Context, store objstore.Store) (schemas.TenantID, error) {
	ids, err := catalog.ListTenants(ctx, store)
	if err != nil {
		return "", err
	}
	ids = slices.DeleteFunc(ids, func(id schemas.TenantID) bool { return id == schemas.SharedTenant })
	if len(ids) == 0 {
		return "", fmt.Errorf("sample restore: the archive at %s holds no tenant yet", store)
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(len(ids))))
	if err != nil {
		return "", err
	}
	return ids[n.Int64()], nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
