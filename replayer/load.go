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
//
// Snapshot objects are loaded first. Segment objects are read in plan order
// (by first position); objects whose position ranges overlap (an entry
// rewritten after a crash, or one table version's object interleaving with
// another's after a DDL change and back) are merged by position, so every
// change is applied once and in order whatever the overlap. Only the
// objects of one overlapping group are open at a time.
func loadTable(ctx context.Context, store objstore.Store, p *Plan, tp *TablePlan, tempDir string) (*fold, error) {
	f, err := newFold(p.Tenant, tp.Schema, p.Target)
	if err != nil {
		return nil, err
	}
	l := &tableLoader{store: store, tenant: p.Tenant, tp: tp, f: f, tempDir: tempDir, mappers: map[string]*mapper{}}
	if tp.SnapshotObjects == 0 {
		// Start from the baseline or a snapshot that had no rows here:
		// changes at or before it are already accounted for.
		f.markSnapshotLoaded(p.Start)
	}
	for _, ref := range tp.Objects[:tp.SnapshotObjects] {
		if err := l.loadSnapshotObject(ctx, ref); err != nil {
			return nil, err
		}
	}
	if tp.SnapshotObjects > 0 {
		f.markSnapshotLoaded(p.Start)
	}
	segs := tp.Objects[tp.SnapshotObjects:]
	for len(segs) > 0 {
		n, last := 1, segs[0].Last
		for n < len(segs) && !last.Less(segs[n].First) {
			if last.Less(segs[n].Last) {
				last = segs[n].Last
			}
			n++
		}
		if err := l.merge(ctx, segs[:n]); err != nil {
			return nil, err
		}
		segs = segs[n:]
	}
	return f, nil
}

// tableLoader reads one table's objects into its fold.
type tableLoader struct {
	store   objstore.Store
	tenant  schemas.TenantID
	tp      *TablePlan
	f       *fold
	tempDir string
	mappers map[string]*mapper // by schema version
}

func (l *tableLoader) mapper(ref schemas.ObjectRef) (*mapper, error) {
	if m := l.mappers[ref.SchemaVersion]; m != nil {
		return m, nil
	}
	src := l.tp.Versions[ref.SchemaVersion]
	if src == nil {
		return nil, fmt.Errorf("object %s: unknown schema version %q", ref.Key, ref.SchemaVersion)
	}
	m := l.f.mapperFor(src)
	fillMissing(m, l.f.table, l.tp.Versions)
	l.mappers[ref.SchemaVersion] = m
	return m, nil
}

// loadSnapshotObject loads every row of one snapshot object.
func (l *tableLoader) loadSnapshotObject(ctx context.Context, ref schemas.ObjectRef) (err error) {
	s, err := l.open(ctx, ref)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, s.close()) }()
	for s.ok {
		if s.n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := l.f.applySnapshotRow(s.m, &s.c); err != nil {
			return fmt.Errorf("object %s of table %s: %w", ref.Key, ref.Table, err)
		}
		if err := s.next(); err != nil {
			return err
		}
	}
	return nil
}

// merge folds the changes of refs, whose ranges overlap, in position
// order. At equal positions the object read last goes on (a key change's
// delete and update halves stay together), then the one planned first.
func (l *tableLoader) merge(ctx context.Context, refs []schemas.ObjectRef) (err error) {
	srcs := make([]*source, 0, len(refs))
	defer func() {
		for _, s := range srcs {
			err = errors.Join(err, s.close())
		}
	}()
	for _, ref := range refs {
		s, err := l.open(ctx, ref)
		if err != nil {
			return err
		}
		srcs = append(srcs, s)
	}
	var prev *source
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var best *source
		for _, s := range srcs {
			if s.ok && (best == nil || s.c.Pos.Less(best.c.Pos) || s == prev && s.c.Pos == best.c.Pos) {
				best = s
			}
		}
		if best == nil {
			return nil
		}
		done, err := l.f.applyChange(best.m, &best.c)
		if err != nil {
			return fmt.Errorf("object %s of table %s: %w", best.ref.Key, best.ref.Table, err)
		}
		if done {
			// Rows are in position order: none after this one is at or
			// before the LSN target.
			best.ok = false
		} else if err := best.next(); err != nil {
			return err
		}
		prev = best
	}
}

// source is one object being read, positioned on its next row.
type source struct {
	ref schemas.ObjectRef
	m   *mapper
	obj *object
	r   *segment.Reader
	c   change // the current row, valid while ok
	ok  bool
	n   int // rows read
}

// open downloads and verifies one object and reads its first row.
func (l *tableLoader) open(ctx context.Context, ref schemas.ObjectRef) (*source, error) {
	m, err := l.mapper(ref)
	if err != nil {
		return nil, err
	}
	obj, err := fetch(ctx, l.store, l.tenant, ref, l.tempDir)
	if err != nil {
		return nil, err
	}
	r, err := segment.NewReader(obj, obj.size)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("object %s of table %s: %w", ref.Key, ref.Table, err), obj.Close())
	}
	s := &source{ref: ref, m: m, obj: obj, r: r}
	if t := r.Table(); t != nil && t.QualifiedName() != ref.Table {
		return nil, errors.Join(fmt.Errorf("object %s holds table %s, the manifest says %s", ref.Key, t.QualifiedName(), ref.Table), s.close())
	}
	if err := s.next(); err != nil {
		return nil, errors.Join(err, s.close())
	}
	return s, nil
}

// next reads the next row; at the end ok becomes false.
func (s *source) next() error {
	meta, vals, err := s.r.Next()
	if errors.Is(err, io.EOF) {
		s.ok = false
		return nil
	}
	if err != nil {
		s.ok = false
		return fmt.Errorf("object %s of table %s: row %d: %w", s.ref.Key, s.ref.Table, s.n, err)
	}
	if len(vals) != len(s.m.src.Columns) {
		s.ok = false
		return fmt.Errorf("object %s of table %s: row %d has %d values, schema version %s has %d columns",
			s.ref.Key, s.ref.Table, s.n, len(vals), s.ref.SchemaVersion, len(s.m.src.Columns))
	}
	s.c = change{Pos: schemas.Pos{LSN: meta.LSN, Seq: meta.Seq}, Op: meta.Op, CommitTime: meta.CommitTime, Values: vals}
	s.ok = true
	s.n++
	return nil
}

func (s *source) close() error { return errors.Join(s.r.Close(), s.obj.Close()) }

// fillMissing gives the columns src lacks the missing value any version of
// the same table generation recorded for them: a later table rewrite
// clears pg_attribute.attmissingval, so the target version may not carry
// the value that rows written before the column was added read.
func fillMissing(m *mapper, target *schemas.TableSchema, versions map[string]*schemas.TableSchema) {
	for i, c := range target.Columns {
		if m.index[i] >= 0 || m.missing[i].Kind == schemas.ValueText || c.Num == 0 || target.Generation == 0 {
			continue
		}
		for _, v := range versions {
			if v.Generation != target.Generation {
				continue
			}
			for _, vc := range v.Columns {
				if vc.Num == c.Num && vc.Missing != nil {
					m.missing[i] = schemas.Value{Kind: schemas.ValueText, Data: []byte(*vc.Missing)}
				}
			}
		}
	}
}
