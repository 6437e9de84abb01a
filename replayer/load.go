package replayer

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tenantwal/tenantwal/archiver/segment"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// loadTable folds every object of tp into the table's rows at the plan's
// target.
func loadTable(ctx context.Context, store objstore.Store, p *Plan, tp *TablePlan, tempDir string) (*fold, error) {
	f, err := newFold(p.Tenant, tp.Schema, p.Target)
	if err != nil {
		return nil, err
	}
	mappers := map[string]*mapper{}
	for i, ref := range tp.Objects {
		src := tp.Versions[ref.SchemaVersion]
		if src == nil {
			return nil, fmt.Errorf("object %s: unknown schema version %q", ref.Key, ref.SchemaVersion)
		}
		m := mappers[ref.SchemaVersion]
		if m == nil {
			m = f.mapperFor(src)
			mappers[ref.SchemaVersion] = m
		}
		snapshot := i < tp.SnapshotObjects
		if err := loadObject(ctx, store, p.Tenant, ref, f, m, snapshot, tempDir); err != nil {
			return nil, err
		}
		if snapshot && i == tp.SnapshotObjects-1 {
			f.markSnapshotLoaded(p.Start)
		}
	}
	if tp.SnapshotObjects == 0 {
		// Start from the baseline or a snapshot that had no rows here.
		f.markSnapshotLoaded(p.Start)
	}
	return f, nil
}

// loadObject downloads and verifies one object and folds its rows.
func loadObject(ctx context.Context, store objstore.Store, tenant schemas.TenantID, ref schemas.ObjectRef,
	f *fold, m *mapper, snapshot bool, tempDir string) (err error) {
	obj, err := fetch(ctx, store, tenant, ref, tempDir)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, obj.Close()) }()
	r, err := segment.NewReader(obj, obj.size)
	if err != nil {
		return fmt.Errorf("object %s of table %s: %w", ref.Key, ref.Table, err)
	}
	defer func() { err = errors.Join(err, r.Close()) }()
	if t := r.Table(); t != nil && t.QualifiedName() != ref.Table {
		return fmt.Errorf("object %s holds table %s, the manifest says %s", ref.Key, t.QualifiedName(), ref.Table)
	}
	var c change
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		meta, vals, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("object %s of table %s: row %d: %w", ref.Key, ref.Table, n, err)
		}
		if len(vals) != len(m.src.Columns) {
			return fmt.Errorf("object %s of table %s: row %d has %d values, schema version %s has %d columns",
				ref.Key, ref.Table, n, len(vals), ref.SchemaVersion, len(m.src.Columns))
		}
		c = change{Pos: schemas.Pos{LSN: meta.LSN, Seq: meta.Seq}, Op: meta.Op, CommitTime: meta.CommitTime, Values: vals}
		var done bool
		if snapshot {
			err = f.applySnapshotRow(m, &c)
		} else {
			done, err = f.applyChange(m, &c)
		}
		if err != nil {
			return fmt.Errorf("object %s of table %s: %w", ref.Key, ref.Table, err)
		}
		if done {
			return nil
		}
	}
}
