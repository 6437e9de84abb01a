// Package verify checks an archive without restoring it: every object a
// tenant's manifest names exists and matches its size, checksum, row count
// and positions; the manifest log has no holes and its ranges do not run
// backwards; objects no manifest names (orphans of interrupted flushes) are
// listed; the archive's gap records decode, are numbered without holes and
// in order, and are listed with the state of their fresh baselines.
package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// Problem is one thing wrong with the archive.
type Problem struct {
	Tenant schemas.TenantID `json:"tenant"`
	Object string           `json:"object,omitempty"` // the key at fault, if any
	Reason string           `json:"reason"`
}

func (p Problem) String() string {
	if p.Tenant == "" {
		return fmt.Sprintf("archive: %s: %s", p.Object, p.Reason)
	}
	if p.Object == "" {
		return fmt.Sprintf("tenant %q: %s", p.Tenant, p.Reason)
	}
	return fmt.Sprintf("tenant %q: %s: %s", p.Tenant, p.Object, p.Reason)
}

// Report is the result of checking one or more tenants.
type Report struct {
	Tenants  int       `json:"tenants"`
	Entries  int       `json:"entries"`
	Objects  int       `json:"objects"`
	Rows     int64     `json:"rows"`
	Bytes    int64     `json:"bytes"`
	Problems []Problem `json:"problems"`
	// Orphans are objects under a tenant's prefix that no manifest entry
	// names: left by a flush interrupted before its manifest commit. A
	// restore never reads them; they are not problems.
	Orphans []string `json:"orphans"`
	// Gaps are the archive's gaps: spans in which capture lost its
	// position in the source's WAL (see schemas.Gap). They are known and
	// recorded, so not problems: no restore can target a point inside one.
	Gaps []*schemas.Gap `json:"gaps"`
	// Pending describes a gap whose fresh baseline is not archived yet:
	// restores past the gap wait for it. Capture takes it again at its
	// next start if it was interrupted. Empty when none.
	Pending string `json:"pending_baseline,omitempty"`
}

// OK reports whether no problem was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Options tune a check.
type Options struct {
	// Quick only checks that objects exist with the recorded size, without
	// downloading them.
	Quick bool
	// TempDir holds downloaded objects too big for memory.
	TempDir string
}

// Tenants checks the given tenants (every archived tenant when ids is
// empty) and returns what it found. The error is for failures to read the
// archive at all; damage is reported as problems.
func Tenants(ctx context.Context, store objstore.Store, ids []schemas.TenantID, opts Options) (*Report, error) {
	if len(ids) == 0 {
		var err error
		if ids, err = catalog.ListTenants(ctx, store); err != nil {
			return nil, err
		}
	}
	rep := &Report{Problems: []Problem{}, Orphans: []string{}, Gaps: []*schemas.Gap{}}
	if err := gaps(ctx, store, rep); err != nil {
		return rep, err
	}
	for _, id := range ids {
		if err := tenant(ctx, store, id, opts, rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// gaps checks and lists the archive's gap records: they must decode and be
// numbered 1, 2, ... (catalog.ReadGaps), and each must start at or after
// the end of the one before. A gap newer than the archive's baseline is
// one whose fresh baseline is still being taken.
func gaps(ctx context.Context, store objstore.Store, rep *Report) error {
	gs, err := catalog.ReadGaps(ctx, store)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rep.Problems = append(rep.Problems, Problem{Object: schemas.GapPrefix,
			Reason: fmt.Sprintf("%v: restores refuse to run until the gap records read back (restore them from the store's versioning or backup)", err)})
		return nil
	}
	rep.Gaps = append(rep.Gaps, gs...)
	for i := 1; i < len(gs); i++ {
		if gs[i].FromLSN < gs[i-1].ToLSN {
			rep.Problems = append(rep.Problems, Problem{Object: schemas.GapKey(gs[i].Seq),
				Reason: fmt.Sprintf("gap %d starts at %s, before gap %d ends at %s: the gap records were altered", gs[i].Seq, gs[i].FromLSN, gs[i-1].Seq, gs[i-1].ToLSN)})
		}
	}
	if len(gs) == 0 {
		return nil
	}
	last := gs[len(gs)-1]
	base, err := catalog.ReadBaseline(ctx, store)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		rep.Problems = append(rep.Problems, Problem{Object: schemas.BaselineKey,
			Reason: "missing, but the archive has gap records: every restore needs the baseline (restore it from the store's versioning or backup)"})
	case err != nil:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rep.Problems = append(rep.Problems, Problem{Object: schemas.BaselineKey, Reason: err.Error()})
	case base.LSN < last.ToLSN:
		rep.Pending = fmt.Sprintf("gap %d: the fresh baseline at LSN %s is not archived yet (the archive's baseline is at %s); restores past %s wait for it, and capture takes it again at its next start if it was interrupted",
			last.Seq, last.ToLSN, base.LSN, last.FromTime.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

func tenant(ctx context.Context, store objstore.Store, id schemas.TenantID, opts Options, rep *Report) error {
	rep.Tenants++
	add := func(object, format string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{Tenant: id, Object: object, Reason: fmt.Sprintf(format, args...)})
	}
	entries, err := catalog.ReadManifest(ctx, store, id)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		add(schemas.ManifestPrefix(id), "%v", err)
		return nil
	}
	named := map[string]bool{}
	var lastSeg schemas.Pos
	var lastComplete schemas.LSN
	for _, e := range entries {
		rep.Entries++
		if e.CompleteLSN != 0 && e.CompleteLSN < lastComplete {
			add(schemas.ManifestKey(id, e.Seq), "complete LSN %s goes back from %s of an earlier entry", e.CompleteLSN, lastComplete)
		}
		lastComplete = max(lastComplete, e.CompleteLSN)
		if e.Kind == schemas.EntrySegment && len(e.Objects) > 0 {
			if !lastSeg.Less(e.First) && lastSeg != (schemas.Pos{}) {
				add(schemas.ManifestKey(id, e.Seq), "changes from %s overlap an earlier segment entry ending at %s", e.First, lastSeg)
			}
			if lastSeg.Less(e.Last) {
				lastSeg = e.Last
			}
		}
		for _, o := range e.Objects {
			rep.Objects++
			rep.Rows += o.Rows
			rep.Bytes += o.Bytes
			named[o.Key] = true
			if err := checkObject(ctx, store, id, o, opts); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				add(o.Key, "%v", err)
			}
		}
	}
	for info, err := range store.List(ctx, schemas.TenantPrefix(id)) {
		if err != nil {
			return fmt.Errorf("list tenant %q: %w", id, err)
		}
		if named[info.Key] || strings.HasPrefix(info.Key, schemas.ManifestPrefix(id)) {
			continue
		}
		rep.Orphans = append(rep.Orphans, info.Key)
	}
	slices.Sort(rep.Orphans)
	return nil
}

func checkObject(ctx context.Context, store objstore.Store, id schemas.TenantID, o schemas.ObjectRef, opts Options) error {
	if !opts.Quick {
		return replayer.VerifyObject(ctx, store, id, o, opts.TempDir)
	}
	info, err := store.Stat(ctx, o.Key)
	if errors.Is(err, objstore.ErrNotFound) {
		return errors.New("missing: the manifest names it but the store does not have it")
	}
	if err != nil {
		return err
	}
	if info.Size != o.Bytes {
		return fmt.Errorf("%d bytes, the manifest says %d", info.Size, o.Bytes)
	}
	return nil
}
