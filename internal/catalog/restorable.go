package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// Range is the span a tenant can be restored to, both ends inclusive: any
// LSN in [FromLSN, ToLSN], any time in [FromTime, ToTime].
type Range struct {
	FromLSN  schemas.LSN `json:"from_lsn"`
	FromTime time.Time   `json:"from_time"`
	ToLSN    schemas.LSN `json:"to_lsn"`
	ToTime   time.Time   `json:"to_time"`
}

func (r Range) String() string {
	return fmt.Sprintf("%s (LSN %s) to %s (LSN %s)",
		r.FromTime.UTC().Format(time.RFC3339Nano), r.FromLSN, r.ToTime.UTC().Format(time.RFC3339Nano), r.ToLSN)
}

// Tenant is everything the archive knows about one tenant.
type Tenant struct {
	ID      schemas.TenantID
	Entries []*schemas.ManifestEntry
	// Range is the restorable span; no point strictly inside one of Gaps
	// is restorable.
	Range Range
	Gaps  []*schemas.Gap
}

// LoadTenant reads t's manifest, the baseline and t's partition watermark
// and computes its restorable range.
func LoadTenant(ctx context.Context, store objstore.Store, t schemas.TenantID) (*Tenant, error) {
	// The archiver commits a flush's manifest entry before the watermark
	// that covers it, so read in the other order: the watermark first,
	// then the manifest, which then lists every entry the watermark
	// counts on, whatever is committed meanwhile.
	base, err := ReadBaseline(ctx, store)
	if err != nil && !errors.Is(err, objstore.ErrNotFound) {
		return nil, err
	}
	gaps, err := ReadGaps(ctx, store)
	if err != nil {
		return nil, err
	}
	var wm *schemas.Watermark
	if base != nil && base.Partitions > 0 {
		wms, err := ReadWatermarks(ctx, store)
		if err != nil {
			return nil, err
		}
		wm = wms[schemas.Partition(t, base.Partitions)]
	}
	entries, err := ReadManifest(ctx, store, t)
	if err != nil {
		return nil, err
	}
	r, err := ComputeRange(entries, base, wm, gaps...)
	if err != nil {
		return nil, fmt.Errorf("tenant %q: %w", t, err)
	}
	return &Tenant{ID: t, Entries: entries, Range: r, Gaps: gaps}, nil
}

// ComputeRange derives the restorable range from a tenant's entries, the
// baseline (nil if none) and its partition's watermark (nil if none).
//
// The range starts at the baseline (every tenant absent from the initial
// snapshot had no rows then) or else at the tenant's first complete
// snapshot (see IsCompleteSnapshot). It ends at the newest point known
// complete: the last entry's CompleteLSN or the partition watermark,
// whichever is later. A watermark written for another
// partition count than the baseline's is ignored: it may belong to another
// partition's tenants.
//
// With gaps (in order), the range starts at the first gap's previous
// baseline: the archive before a gap stays restorable. While the fresh
// baseline of the last gap is not yet archived (base is still older than
// its end), the range ends at the gap's start.
func ComputeRange(entries []*schemas.ManifestEntry, base *schemas.Baseline, wm *schemas.Watermark, gaps ...*schemas.Gap) (Range, error) {
	var r Range
	first := base
	if len(gaps) > 0 && gaps[0].Previous != nil {
		first = gaps[0].Previous
	}
	switch {
	case first != nil:
		r.FromLSN, r.FromTime = first.LSN, first.Time
	default:
		for _, e := range entries {
			if IsCompleteSnapshot(e) {
				r.FromLSN, r.FromTime = e.Last.LSN, e.MaxTime
				break
			}
		}
		if r.FromLSN == 0 {
			return r, errors.New("no snapshot and no baseline yet: the initial snapshot is still being archived")
		}
	}
	r.ToLSN, r.ToTime = r.FromLSN, r.FromTime
	for _, e := range entries {
		if e.CompleteLSN > r.ToLSN {
			r.ToLSN, r.ToTime = e.CompleteLSN, e.CompleteTime
		}
	}
	if wm != nil && base != nil && wm.Partitions != base.Partitions {
		wm = nil
	}
	if wm != nil && wm.CommitLSN > r.ToLSN {
		r.ToLSN, r.ToTime = wm.CommitLSN, wm.CommitTime
	}
	if n := len(gaps); n > 0 {
		if g := gaps[n-1]; (base == nil || base.LSN < g.ToLSN) && r.ToLSN > g.FromLSN {
			r.ToLSN, r.ToTime = g.FromLSN, g.FromTime
		}
	}
	return r, nil
}

// IsCompleteSnapshot reports whether e is a snapshot entry a restore can
// start from. A snapshot too big for one flush is archived in several
// entries: the partial ones have no CompleteLSN, and the last one, written
// at the snapshot's end, has it and lists every object of the snapshot.
func IsCompleteSnapshot(e *schemas.ManifestEntry) bool {
	return e.Kind == schemas.EntrySnapshot && e.CompleteLSN != 0
}
