package replayer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/tenantwal/tenantwal/archiver/segment"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// loadTable restores one table of the plan at its target into out; see
// tableLoader.readChanges and tableLoader.emit.
func loadTable(ctx context.Context, store objstore.Store, p *Plan, tp *TablePlan, tempDir string, out rowSink) (*fold, error) {
	l, err := newTableLoader(store, p, tp, tempDir)
	if err != nil {
		return nil, err
	}
	exists, err := l.readChanges(ctx)
	if err != nil || !exists {
		return l.f, err
	}
	return l.f, l.emit(ctx, out)
}

// rowSink receives a table's rows at the target. vals is valid only during
// the call; n is how many copies of the row there are (multisets).
type rowSink interface {
	row(vals []schemas.Value, n int) error
}

func newTableLoader(store objstore.Store, p *Plan, tp *TablePlan, tempDir string) (*tableLoader, error) {
	f, err := newFold(p.Tenant, tp.Schema, p.Target)
	if err != nil {
		return nil, err
	}
	return &tableLoader{store: store, tenant: p.Tenant, start: p.Start, tp: tp, f: f, tempDir: tempDir, mappers: map[string]*mapper{}}, nil
}

// readChanges reads the table's change segments, in plan order (by first
// position); objects whose position ranges overlap (an entry rewritten
// after a crash, or one table version's object interleaving with
// another's after a DDL change and back) are merged by position, so every
// change is applied once and in order whatever the overlap. Objects are
// downloaded and decoded by up to `decoders` goroutines, ahead of the
// merge.
//
// The changes are kept, mapped onto the target version, to be folded over
// the snapshot by emit; the keys they touch tell emit which snapshot rows
// must go through the fold. It reports whether the table exists at the
// target: it has snapshot objects or a row change at or before the target,
// and no DROP TABLE after them.
func (l *tableLoader) readChanges(ctx context.Context) (exists bool, err error) {
	f := l.f
	exists = l.tp.SnapshotObjects > 0
	l.touched = map[string]struct{}{}
	gen := uint32(0)
	noteGen := func(g uint32) {
		if g == 0 {
			return
		}
		if gen != 0 && g != gen {
			l.foldAll = true // the table was dropped and created again
		}
		gen = g
	}
	for i, ref := range l.tp.Objects {
		// Every mapper now: the decoding goroutines only read them.
		m, err := l.mapper(ref)
		if err != nil {
			return false, err
		}
		if i < l.tp.SnapshotObjects {
			noteGen(m.src.Generation)
		}
	}
	segs := l.tp.Objects[l.tp.SnapshotObjects:]
	rows := int64(0)
	for _, ref := range segs {
		rows += ref.Rows
	}
	l.changes = make([]recorded, 0, min(rows, 1<<20))
	var key []byte
	record := func(r *recorded) {
		if f.inTarget(&r.c) && !staleDrop(&r.c, r.m.src.Generation, gen) {
			noteGen(r.m.src.Generation)
			switch r.c.Op {
			case schemas.OpInsert, schemas.OpUpdate, schemas.OpDelete:
				exists = true
				key = f.appendKey(key[:0], r.c.Values)
				if _, ok := l.touched[string(key)]; !ok {
					l.touched[string(key)] = struct{}{}
				}
			case schemas.OpTruncate:
				l.foldAll = true // clears the snapshot's rows too
			case schemas.OpDrop:
				exists, l.foldAll = false, true // until a later row change
			}
		}
		l.changes = append(l.changes, *r)
	}

	dctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	objs := make([]*decodedObject, len(segs))
	for i := range objs {
		objs[i] = &decodedObject{done: make(chan struct{})}
	}
	wg.Go(func() {
		sem := make(chan struct{}, decoders)
		for i := range segs {
			select {
			case sem <- struct{}{}:
			case <-dctx.Done():
				return
			}
			wg.Go(func() {
				defer func() { <-sem }()
				defer close(objs[i].done)
				objs[i].rows, objs[i].err = l.decodeObject(dctx, &segs[i])
			})
		}
	})
	for i := 0; i < len(segs); {
		n, last := 1, segs[i].Last
		for i+n < len(segs) && !last.Less(segs[i+n].First) {
			if last.Less(segs[i+n].Last) {
				last = segs[i+n].Last
			}
			n++
		}
		group := make([][]recorded, n)
		for j := range n {
			o := objs[i+j]
			select {
			case <-o.done:
			case <-ctx.Done():
				return false, ctx.Err()
			}
			if o.err != nil {
				return false, o.err
			}
			group[j], o.rows = o.rows, nil
		}
		if err := mergeDecoded(ctx, group, record); err != nil {
			return false, err
		}
		i += n
	}
	return exists, nil
}

// decoders is how many segment objects of a table are downloaded and
// decoded at once.
var decoders = min(runtime.GOMAXPROCS(0), 4)

// decodedObject is one segment object decoded by a goroutine of
// readChanges; done is closed when rows or err is set.
type decodedObject struct {
	done chan struct{}
	rows []recorded
	err  error
}

// decodeObject downloads, verifies and decodes one segment object: its
// rows in position order, row changes at or before the target mapped onto
// the target version. For an LSN target it stops after the first row past
// the target (none after it can be at or before it).
func (l *tableLoader) decodeObject(ctx context.Context, ref *schemas.ObjectRef) (_ []recorded, err error) {
	s, err := l.open(ctx, *ref)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, s.close()) }()
	f := l.f
	rows := make([]recorded, 0, min(ref.Rows, 1<<20))
	for s.ok {
		if s.n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		c := s.c
		c.Values = nil
		in := f.inTarget(&c)
		if in && (c.Op == schemas.OpInsert || c.Op == schemas.OpUpdate || c.Op == schemas.OpDelete) {
			c.Values, c.mapped = s.m.mapRow(s.c.Values), true
		}
		rows = append(rows, recorded{ref: ref, m: s.m, c: c})
		if !in && f.target.IsLSN() {
			break
		}
		if err := s.next(); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// mergeDecoded passes the rows of objs, whose ranges overlap, to apply in
// position order. At equal positions the object read last goes on (a key
// change's delete and update halves stay together), then the one planned
// first.
func mergeDecoded(ctx context.Context, objs [][]recorded, apply func(*recorded)) error {
	if len(objs) == 1 {
		for i := range objs[0] {
			apply(&objs[0][i])
		}
		return nil
	}
	next := make([]int, len(objs))
	prev := -1
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		best := -1
		var bestPos schemas.Pos
		for i, rows := range objs {
			if next[i] == len(rows) {
				continue
			}
			p := rows[next[i]].c.Pos
			if best < 0 || p.Less(bestPos) || i == prev && p == bestPos {
				best, bestPos = i, p
			}
		}
		if best < 0 {
			return nil
		}
		apply(&objs[best][next[best]])
		next[best]++
		prev = best
	}
}

// emit sends the table's rows at the target to out. Snapshot objects are
// read first: a row whose key no change touches is final and goes to out
// at once, without being held; the others are loaded into the fold. Then
// the changes readChanges kept are folded in order and the fold's rows
// follow. A truncate or a new generation of the table among the changes
// clears every row, so then every snapshot row goes through the fold.
//
// A snapshot holds each key once (it is one consistent read of a table
// with a key; multisets are keyed by the whole row and every copy of a
// touched row is folded), so rows sent at once never meet another version
// of themselves.
func (l *tableLoader) emit(ctx context.Context, out rowSink) error {
	f := l.f
	if l.tp.SnapshotObjects == 0 {
		// Start from the baseline or a snapshot that had no rows here:
		// changes at or before it are already accounted for.
		f.markSnapshotLoaded(l.start)
	}
	for _, ref := range l.tp.Objects[:l.tp.SnapshotObjects] {
		if err := l.loadSnapshotObject(ctx, ref, out); err != nil {
			return err
		}
	}
	if l.tp.SnapshotObjects > 0 {
		f.markSnapshotLoaded(l.start)
	}
	for i := range l.changes {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		r := &l.changes[i]
		if _, err := f.applyChange(r.m, &r.c); err != nil {
			return fmt.Errorf("object %s of table %s: %w", r.ref.Key, r.ref.Table, err)
		}
		l.changes[i] = recorded{} // let the values go
	}
	l.changes, l.touched = nil, nil
	for _, r := range f.result() {
		if err := out.row(r.values, r.n); err != nil {
			return err
		}
	}
	return nil
}

// recorded is one change kept by readChanges, with the object it came from.
type recorded struct {
	ref *schemas.ObjectRef
	m   *mapper
	c   change
}

// tableLoader reads one table's objects into its fold.
type tableLoader struct {
	store   objstore.Store
	tenant  schemas.TenantID
	start   schemas.LSN // the plan's start: changes at or before it are in the snapshot
	tp      *TablePlan
	f       *fold
	tempDir string
	mappers map[string]*mapper // by schema version

	changes []recorded          // readChanges' changes, in apply order
	touched map[string]struct{} // keys (fold.appendKey) the changes touch
	foldAll bool                // every snapshot row goes through the fold
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
	if err := m.renameEnums(l.f.table); err != nil {
		return nil, fmt.Errorf("object %s: %w", ref.Key, err)
	}
	l.mappers[ref.SchemaVersion] = m
	return m, nil
}

// loadSnapshotObject reads every row of one snapshot object: rows whose key
// a change touches (every row when foldAll) are loaded into the fold, the
// others go to out as they are.
func (l *tableLoader) loadSnapshotObject(ctx context.Context, ref schemas.ObjectRef, out rowSink) (err error) {
	s, err := l.open(ctx, ref)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, s.close()) }()
	f := l.f
	vals := make([]schemas.Value, len(f.table.Columns))
	var key []byte
	for s.ok {
		if s.n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := f.checkSnapshotRow(s.m, &s.c); err != nil {
			return fmt.Errorf("object %s of table %s: %w", ref.Key, ref.Table, err)
		}
		s.m.view(vals, s.c.Values)
		key = f.appendKey(key[:0], vals)
		if _, touched := l.touched[string(key)]; touched || l.foldAll {
			err = f.insert(s.m.mapRow(s.c.Values), &s.c)
		} else if err = f.checkRow(vals, &s.c); err == nil {
			err = out.row(vals, 1)
		}
		if err != nil {
			return fmt.Errorf("object %s of table %s: %w", ref.Key, ref.Table, err)
		}
		if err := s.next(); err != nil {
			return err
		}
	}
	return nil
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
