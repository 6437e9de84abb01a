package replayer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/tenantwal/tenantwal/archiver/segment"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// resolveTimeVersions sets, for a time target, each table's schema to the
// version in effect at the target. The plan takes the version of the
// newest planned object, but for a time target an object may hold only
// changes after the target (a manifest entry records the commit-time range
// of all its objects together), so with several versions the newest
// objects are read until one holds a change at or before the target.
// LSN targets need nothing: objects starting after the target are never
// planned.
func resolveTimeVersions(ctx context.Context, store objstore.Store, plan *Plan, tempDir string) error {
	if plan.Target.IsLSN() {
		return nil
	}
	for _, tp := range plan.Tables {
		if len(tp.Versions) < 2 {
			continue
		}
		segs := slices.Clone(tp.Objects[tp.SnapshotObjects:])
		slices.SortStableFunc(segs, func(a, b schemas.ObjectRef) int { return comparePos(b.Last, a.Last) })
		version := ""
		if tp.SnapshotObjects > 0 {
			version = tp.Objects[0].SchemaVersion
		}
		for _, ref := range segs {
			in, err := holdsChangeBefore(ctx, store, plan, ref, tempDir)
			if err != nil {
				return err
			}
			if in {
				version = ref.SchemaVersion
				break
			}
		}
		if v := tp.Versions[version]; v != nil {
			tp.Schema = v
		}
	}
	return nil
}

// holdsChangeBefore reports whether ref holds a change committed at or
// before the plan's time target.
func holdsChangeBefore(ctx context.Context, store objstore.Store, plan *Plan, ref schemas.ObjectRef, tempDir string) (in bool, err error) {
	obj, err := fetch(ctx, store, plan.Tenant, ref, tempDir)
	if err != nil {
		return false, err
	}
	defer func() { err = errors.Join(err, obj.Close()) }()
	r, err := segment.NewReader(obj, obj.size)
	if err != nil {
		return false, fmt.Errorf("object %s of table %s: %w", ref.Key, ref.Table, err)
	}
	defer func() { err = errors.Join(err, r.Close()) }()
	for {
		m, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("object %s of table %s: %w", ref.Key, ref.Table, err)
		}
		if !m.CommitTime.After(plan.Target.Time) {
			return true, nil
		}
	}
}
