package capture

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// visibleSQL reports whether transaction $1 (a 32-bit xid) is still in
// progress for other sessions: in the current snapshot's in-progress list,
// or still holding the lock on its own xid, which it releases only after
// it has left the ProcArray and sent its catalog invalidations.
const visibleSQL = `
SELECT EXISTS (SELECT FROM pg_snapshot_xip(pg_current_snapshot()) x WHERE x::text::numeric % 4294967296 = $1)
    OR EXISTS (SELECT FROM pg_locks WHERE locktype = 'transactionid' AND transactionid::text::numeric = $1)`

// waitVisible waits until the transaction being decoded is visible to the
// catalog connection. The walsender may send a transaction as soon as its
// commit record is flushed, a moment before the committing backend leaves
// the ProcArray: until then every other session still sees it in progress,
// and a catalog read for its Relation message would describe the table as
// it was before the transaction's DDL (old defaults with new constraints,
// say). Bounded: after 10 s it logs and reads the catalog anyway.
func (p *processor) waitVisible(ctx context.Context) error {
	if !p.inTxn || p.xid == 0 {
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		var running bool
		if err := p.cat.QueryRow(ctx, visibleSQL, int64(p.xid)).Scan(&running); err != nil {
			return fmt.Errorf("wait for transaction %d to be visible at %s: %w", p.xid, p.lsn, err)
		}
		if !running {
			return nil
		}
		if time.Now().After(deadline) {
			p.log.Warn("the decoded transaction is still in progress for other sessions after 10 s; reading the catalog anyway (its table versions may miss its DDL)",
				slog.Uint64("xid", uint64(p.xid)), slog.String("lsn", p.lsn.String()))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}
