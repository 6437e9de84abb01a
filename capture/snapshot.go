package capture

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/schemas"
)

// snapshot copies every published table at the exported snapshot into
// snapshot messages, tenant by tenant: pool tables are read in tenant column
// order, bridge tables schema by schema. It ends with one SnapshotDone per
// tenant seen (bridge: per tenant schema, even if empty), listing the tables
// the tenant's restore must create.
//
// A transaction may commit exactly at the consistent point, so the snapshot
// is identified as of point-1: it holds every transaction that committed
// before point, and its positions never collide with a change's.
// snapInfo is what the initial snapshot saw: its tenants and the version
// of each table it copied.
type snapInfo struct {
	tenants []schemas.TenantID
	tables  map[uint32]*schemas.TableSchema
}

func (c *Capture) snapshot(ctx context.Context, pub *publisher, snapName string, point schemas.LSN, at time.Time) error {
	lsn := point - 1
	conn, err := connectSQL(ctx, c.cfg.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("snapshot: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(snapName)); err != nil {
		return fmt.Errorf("snapshot: import exported snapshot %s: %w", snapName, err)
	}
	// A row security policy must fail the snapshot, never filter it (PITFALLS 20).
	if _, err := tx.Exec(ctx, "SET LOCAL row_security = off"); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	tables, err := publishedTables(ctx, tx, c.cfg.Publication)
	if err != nil {
		return err
	}
	chunks := newChunker(pub, schemas.KindSnapshot, c.cfg.ChunkBytes, c.cfg.TxnBufferBytes)
	chunks.begin(lsn, at, 0)
	seq := map[schemas.TenantID]uint32{}
	tenantTables := map[schemas.TenantID][]*schemas.TableSchema{}
	var poolTables []*schemas.TableSchema
	snapTables := map[uint32]*schemas.TableSchema{}
	start := time.Now()
	var rows int64
	for _, t := range tables {
		ts, err := loadTable(ctx, tx, t.RelID)
		if err != nil {
			return err
		}
		rt := c.router.Route(ts)
		if rt.Excluded {
			continue
		}
		facts, err := loadColumnFacts(ctx, tx, t.RelID)
		if err != nil {
			return err
		}
		applyColumnFacts(ts, facts)
		if ts.Generated, err = loadGenerated(ctx, tx, t.RelID); err != nil {
			return err
		}
		if err = loadIndexesAndConstraints(ctx, tx, ts); err != nil {
			return err
		}
		snapTables[t.RelID] = ts
		ts.TenantColumn = rt.ColumnName
		ts.ComputeVersion()
		if rt.Column < 0 {
			chunks.touch(rt.Fixed)
			tenantTables[rt.Fixed] = append(tenantTables[rt.Fixed], ts)
		} else {
			poolTables = append(poolTables, ts)
		}
		cols := make([]string, len(ts.Columns))
		for i, col := range ts.Columns {
			cols[i] = quoteIdent(col.Name)
		}
		only := "ONLY "
		if t.RelKind == 'p' {
			only = ""
		}
		q := fmt.Sprintf("COPY (SELECT %s FROM %s%s", strings.Join(cols, ", "), only, t.qualified())
		if rt.Column >= 0 {
			q += " ORDER BY " + quoteIdent(rt.ColumnName)
		}
		q += ") TO STDOUT"
		sink := &copyRows{ncols: len(ts.Columns), row: func(vals []schemas.Value) error {
			tenant, err := rt.Tenant(vals)
			if err != nil {
				return fmt.Errorf("snapshot of %s: %w", ts.QualifiedName(), err)
			}
			seq[tenant]++
			rows++
			return chunks.add(ctx, tenant, ts, schemas.Event{Seq: seq[tenant], Op: schemas.OpInsert, New: vals})
		}}
		if _, err := tx.Conn().PgConn().CopyTo(ctx, sink, q); err != nil {
			return fmt.Errorf("snapshot of %s: %w", ts.QualifiedName(), err)
		}
	}
	c.metrics.snapshot.Add(float64(rows))
	c.snap = &snapInfo{tenants: slices.Clone(chunks.order), tables: snapTables}
	if err := chunks.flushAll(ctx, point); err != nil {
		return err
	}
	// One SnapshotDone per tenant, with every table its restore creates.
	for _, tenant := range chunks.order {
		tabs := append(tenantTables[tenant], poolTables...)
		done := &schemas.Batch{Kind: schemas.KindSnapshotDone, Tenant: tenant, CommitLSN: lsn, EndLSN: point, CommitTime: at, Final: true, Tables: tabs}
		if err := pub.publish(ctx, done); err != nil {
			return err
		}
	}
	c.log.Info("initial snapshot published", slog.String("lsn", lsn.String()), slog.Int("tenants", len(chunks.order)),
		slog.Int64("rows", rows), slog.Duration("took", time.Since(start)))
	return pub.commit(ctx, txnMark{CommitLSN: lsn, EndLSN: point, Time: at})
}
