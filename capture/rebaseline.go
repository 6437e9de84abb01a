package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantwal/tenantwal/capture/pgrepl"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// freshSlot is a slot just created with an exported snapshot: the initial
// snapshot, or the fresh baseline after a gap, is read from it.
type freshSlot struct {
	pgrepl.CreateSlotResult
	at time.Time
}

// baseline is the archive baseline the slot's snapshot establishes once
// archived.
func (f *freshSlot) baseline(sys pgrepl.IdentifySystemResult, cfg Config) *schemas.Baseline {
	return &schemas.Baseline{Version: 1, SystemID: sys.SystemID, Timeline: sys.Timeline, Database: sys.DBName, Slot: cfg.Slot,
		LSN: f.ConsistentPoint - 1, Time: f.at, Partitions: cfg.Partitions}
}

// prepareSlot checks the slot against the archive and returns it, or
// creates it: for the first baseline, or for a fresh baseline after a gap,
// which it records first. A fresh slot comes with the snapshot to take.
//
// Capture never continues silently over lost changes. When the slot was
// dropped or invalidated (wal_status 'lost', max_slot_wal_keep_size), the
// gap is recorded in the archive and a fresh baseline taken automatically:
// waiting for an operator would only widen the gap, and restores into it
// refuse with its bounds. When the source is another cluster (system
// identifier), that may be a misconfiguration, so capture stops unless
// Config.Rebaseline allows the gap.
func (c *Capture) prepareSlot(ctx context.Context, rconn *pgconn.PgConn, sqlConn *pgx.Conn, sys pgrepl.IdentifySystemResult) (slotState, *freshSlot, error) {
	base, err := catalog.ReadBaseline(ctx, c.store)
	if err != nil && !errors.Is(err, objstore.ErrNotFound) {
		return slotState{}, nil, fmt.Errorf("read archive baseline from %s: %w", c.store, err)
	}
	gaps, err := catalog.ReadGaps(ctx, c.store)
	if err != nil {
		return slotState{}, nil, fmt.Errorf("read the archive's gap records from %s: %w", c.store, err)
	}
	slot, err := readSlot(ctx, sqlConn, c.cfg.Slot)
	if err != nil {
		return slot, nil, err
	}
	if slot.active {
		return slot, nil, fmt.Errorf("slot %s is in use by another process (is another capture running?)", c.cfg.Slot)
	}
	var gap *schemas.Gap
	if n := len(gaps); n > 0 && base != nil && gaps[n-1].ToLSN > base.LSN {
		// A fresh baseline was started but never archived: restart it,
		// widening its gap.
		gap = gaps[n-1]
		c.log.Warn("the fresh baseline after a gap never finished; taking it again", slog.Uint64("gap", gap.Seq))
	}
	switch {
	case base == nil:
	case base.Database != sys.DBName:
		return slot, nil, &FatalError{fmt.Errorf("the archive at %s was taken from database %q, but the source is database %q: point --store at this source's archive",
			c.store, base.Database, sys.DBName)}
	case base.SystemID != sys.SystemID && (gap == nil || gap.Next.SystemID != sys.SystemID):
		if !c.cfg.Rebaseline {
			return slot, nil, &FatalError{fmt.Errorf("the archive at %s was taken from system %s, but the source is system %s (another cluster): point --store at this source's archive, or, if the source really replaced the archived cluster (restored from a backup, upgraded, a failover to a non-replica), start capture with --rebaseline to record the gap and take a fresh baseline",
				c.store, base.SystemID, sys.SystemID)}
		}
		gap = c.newGap(gaps, schemas.GapSystemChanged, fmt.Sprintf("the source changed from system %s to system %s", base.SystemID, sys.SystemID))
	case gap != nil:
	case !slot.exists:
		gap = c.newGap(gaps, schemas.GapSlotMissing, fmt.Sprintf("replication slot %s was dropped", c.cfg.Slot))
	case slot.walStatus == "lost":
		gap = c.newGap(gaps, schemas.GapSlotLost, fmt.Sprintf("replication slot %s was invalidated (wal_status lost): the WAL it needed was removed (max_slot_wal_keep_size)", c.cfg.Slot))
	}
	switch {
	case gap != nil:
		fresh, err := c.rebaseline(ctx, rconn, slot, base, gap, sys)
		if err != nil {
			return slot, nil, err
		}
		slot.exists, slot.confirmed = true, fresh.ConsistentPoint
		return slot, fresh, nil
	case slot.exists && base == nil:
		c.log.Warn("slot exists but its initial snapshot never finished; recreating the slot and the snapshot", slog.String("slot", c.cfg.Slot))
		if err := pgrepl.DropReplicationSlot(ctx, rconn, c.cfg.Slot, true); err != nil {
			return slot, nil, err
		}
		fallthrough
	case !slot.exists:
		fresh, err := c.createSlot(ctx, rconn)
		if err != nil {
			return slot, nil, err
		}
		slot.exists, slot.confirmed = true, fresh.ConsistentPoint
		return slot, fresh, nil
	}
	return slot, nil, c.checkSlotBehindArchive(ctx, slot.confirmed, base)
}

// newGap starts gap record number len(gaps)+1.
func (c *Capture) newGap(gaps []*schemas.Gap, reason, detail string) *schemas.Gap {
	return &schemas.Gap{Seq: uint64(len(gaps)) + 1, Reason: reason, Detail: detail}
}

func (c *Capture) createSlot(ctx context.Context, rconn *pgconn.PgConn) (*freshSlot, error) {
	r, err := pgrepl.CreateReplicationSlot(ctx, rconn, c.cfg.Slot, "pgoutput", pgrepl.CreateSlotOptions{Snapshot: "export"})
	if err != nil {
		return nil, fmt.Errorf("create replication slot %s: %w", c.cfg.Slot, err)
	}
	c.log.Info("replication slot created", slog.String("slot", c.cfg.Slot), slog.String("lsn", r.ConsistentPoint.String()))
	// Microseconds, as every archived time: the baseline then starts the
	// restorable range at exactly the initial snapshot's time.
	return &freshSlot{CreateSlotResult: r, at: time.Now().UTC().Truncate(time.Microsecond)}, nil
}

// rebaseline records gap and creates the slot for the fresh baseline. The
// gap starts where every partition of the archive is complete (the lowest
// watermark, else the old baseline) and ends at the new slot's snapshot;
// it is written before anything of the fresh baseline is published.
func (c *Capture) rebaseline(ctx context.Context, rconn *pgconn.PgConn, slot slotState, base *schemas.Baseline, gap *schemas.Gap, sys pgrepl.IdentifySystemResult) (*freshSlot, error) {
	if gap.Previous == nil {
		wms, err := catalog.ReadWatermarks(ctx, c.store)
		if err != nil {
			return nil, err
		}
		gap.Previous = base
		gap.FromLSN, gap.FromTime = base.LSN, base.Time
		if low, ok := lowWatermark(wms, c.cfg.Partitions); ok && low.CommitLSN > gap.FromLSN {
			gap.FromLSN, gap.FromTime = low.CommitLSN, low.CommitTime
		}
	}
	if slot.exists {
		if err := pgrepl.DropReplicationSlot(ctx, rconn, c.cfg.Slot, true); err != nil {
			return nil, err
		}
	}
	fresh, err := c.createSlot(ctx, rconn)
	if err != nil {
		return nil, err
	}
	next := fresh.baseline(sys, c.cfg)
	// The archive orders everything by LSN: the fresh baseline must come
	// after all it holds (a new cluster starts its WAL anywhere).
	wms, err := catalog.ReadWatermarks(ctx, c.store)
	if err != nil {
		return nil, err
	}
	high := gap.FromLSN
	for _, w := range wms {
		high = max(high, w.EndLSN)
	}
	if next.LSN <= high {
		dropErr := pgrepl.DropReplicationSlot(ctx, rconn, c.cfg.Slot, false)
		return nil, errors.Join(&FatalError{fmt.Errorf("cannot take a fresh baseline: the source's WAL position %s is not past the archive's %s (a different cluster whose WAL starts earlier): archive this source to another --store",
			next.LSN, high)}, dropErr)
	}
	gap.ToLSN, gap.ToTime, gap.Next = next.LSN, next.Time, *next
	gap.Detected = time.Now().UTC()
	if err := catalog.WriteGap(ctx, c.store, gap); err != nil {
		return nil, err
	}
	c.metrics.rebaselines.Inc()
	c.log.Error("the archive has a gap: capture lost its position in the source's WAL; recorded the gap and taking a fresh baseline (restores into the gap will refuse)",
		slog.String("reason", gap.Reason), slog.String("detail", gap.Detail), slog.Uint64("gap", gap.Seq),
		slog.String("from_lsn", gap.FromLSN.String()), slog.Time("from_time", gap.FromTime),
		slog.String("to_lsn", gap.ToLSN.String()), slog.Time("to_time", gap.ToTime))
	return fresh, nil
}
