package replayer

import (
	"errors"
	"fmt"
	"time"

	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/schemas"
)

// ErrInGap is returned (wrapped, together with ErrOutOfRange) when a
// restore point lies inside a gap of the archive: a span in which capture
// lost its position in the source's WAL and changes may be missing.
var ErrInGap = errors.New("restore point inside a gap of the archive")

// checkGaps refuses a target strictly inside one of t's gaps, naming the
// gap and the nearest restorable points on either side.
func checkGaps(t *catalog.Tenant, target Target) error {
	for _, g := range t.Gaps {
		lsn := target.LSN
		if !target.IsLSN() {
			lsn = 0
		}
		if !g.Contains(lsn, target.Time) {
			continue
		}
		return fmt.Errorf("%w: %w: tenant %q cannot be restored to %s: the archive has a gap (record %d, %s: %s) from %s (LSN %s) to %s (LSN %s) in which changes may be missing; the nearest restorable points are LSN %s (%s) and LSN %s (%s)",
			ErrOutOfRange, ErrInGap, t.ID, target, g.Seq, g.Reason, g.Detail,
			fmtTime(g.FromTime), g.FromLSN, fmtTime(g.ToTime), g.ToLSN,
			g.FromLSN, fmtTime(g.FromTime), g.ToLSN, fmtTime(g.ToTime))
	}
	return nil
}

// gapFloor returns the newest gap that ends at or before the target: a
// restore past it must start from the fresh baseline that ended it, never
// from a snapshot or changes before it. nil if none.
func gapFloor(gaps []*schemas.Gap, target Target) *schemas.Gap {
	var floor *schemas.Gap
	for _, g := range gaps {
		if target.IsLSN() && g.ToLSN <= target.LSN || !target.IsLSN() && !g.ToTime.After(target.Time) {
			floor = g
		}
	}
	return floor
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
