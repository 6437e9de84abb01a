package replayer

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/schemas"
)

// ErrOutOfRange is returned (wrapped) when a restore point lies outside the
// tenant's restorable range.
var ErrOutOfRange = errors.New("restore point outside the restorable range")

// Plan is the pure result of planning a restore: which objects to read, in
// which order, and what to build from them. It does no I/O.
type Plan struct {
	Tenant schemas.TenantID
	Target Target
	Range  catalog.Range
	// Snapshot is the snapshot the restore starts from; nil means it starts
	// from no rows at the archive's baseline (Range.FromLSN).
	Snapshot *schemas.ManifestEntry
	// Start is the snapshot's LSN, or the baseline's when Snapshot is nil:
	// every change at or before it is already in the starting state.
	Start schemas.LSN
	// Tables holds one plan per table that exists at the target, sorted by
	// name.
	Tables []*TablePlan
}

// TablePlan is what one table is built from.
type TablePlan struct {
	Name string // "schema.table", as in ObjectRef.Table
	// Schema is the table's version in effect at the target: the schema of
	// the object holding the newest change planned. Rows of other versions
	// are mapped onto it by column name.
	Schema *schemas.TableSchema
	// Objects are in apply order: the snapshot's objects first (the first
	// SnapshotObjects of them), then change segments by first position.
	Objects         []schemas.ObjectRef
	SnapshotObjects int
	// Versions resolves every ObjectRef.SchemaVersion of Objects.
	Versions map[string]*schemas.TableSchema
}

// objectSeq is an object with the manifest entry number it came from, to
// order objects that start at the same position, and its table version.
type objectSeq struct {
	ref schemas.ObjectRef
	seq uint64
	ts  *schemas.TableSchema // the object's version
}

// PlanRestore decides how to restore tenant t to target: the newest snapshot
// at or before it (or the baseline), then every change segment object that
// may hold a change after the snapshot and at or before the target. A target
// outside t.Range is an error that states the range.
func PlanRestore(t *catalog.Tenant, target Target) (*Plan, error) {
	if err := target.validate(); err != nil {
		return nil, err
	}
	if err := checkRange(t, target); err != nil {
		return nil, err
	}
	if err := checkGaps(t, target); err != nil {
		return nil, err
	}
	p := &Plan{Tenant: t.ID, Target: target, Range: t.Range, Start: t.Range.FromLSN}
	if err := checkEntries(t); err != nil {
		return nil, err
	}
	p.Snapshot = pickSnapshot(t.Entries, target)
	if p.Snapshot != nil {
		p.Start = p.Snapshot.Last.LSN
	}
	if g := gapFloor(t.Gaps, target); g != nil && p.Start < g.ToLSN {
		// Past a gap: start from its fresh baseline (no rows if the
		// tenant had none in the fresh snapshot).
		p.Snapshot, p.Start = nil, g.ToLSN
	}

	var snap, seg []objectSeq
	if s := p.Snapshot; s != nil {
		for _, o := range s.Objects {
			snap = append(snap, objectSeq{o, s.Seq, s.Tables[o.SchemaVersion]})
		}
	}
	for _, e := range t.Entries {
		if e.Kind != schemas.EntrySegment || !entryMayApply(e, p.Start, target) {
			continue
		}
		for _, o := range e.Objects {
			if objectMayApply(o, p.Start, target) {
				seg = append(seg, objectSeq{o, e.Seq, e.Tables[o.SchemaVersion]})
			}
		}
	}
	nameOf, keep := tableNames(slices.Concat(snap, seg), target)
	snap = slices.DeleteFunc(snap, func(o objectSeq) bool { return !keep(o) })
	seg = slices.DeleteFunc(seg, func(o objectSeq) bool { return !keep(o) })
	tables := map[string]*TablePlan{}
	tableFor := func(o objectSeq) *TablePlan {
		name := nameOf(o)
		tp := tables[name]
		if tp == nil {
			tp = &TablePlan{Name: name, Versions: map[string]*schemas.TableSchema{}}
			tables[name] = tp
		}
		tp.Versions[o.ref.SchemaVersion] = o.ts
		return tp
	}
	for _, o := range snap {
		tp := tableFor(o)
		tp.Objects = append(tp.Objects, o.ref)
		tp.SnapshotObjects++
	}
	segs := map[string][]objectSeq{}
	for _, o := range seg {
		name := tableFor(o).Name
		segs[name] = append(segs[name], o)
	}
	for name, objs := range segs {
		// By first position, so an entry rewritten after a crash with a
		// wider range is folded before the narrower duplicate, never after
		// it; ties by entry number. Duplicates are skipped while folding.
		slices.SortStableFunc(objs, func(a, b objectSeq) int {
			if c := comparePos(a.ref.First, b.ref.First); c != 0 {
				return c
			}
			return cmp.Compare(a.seq, b.seq)
		})
		tp := tables[name]
		for _, o := range objs {
			tp.Objects = append(tp.Objects, o.ref)
		}
	}
	for _, tp := range tables {
		// The version of the object holding the newest change: objects of
		// two versions can interleave (a DDL change and back), so the last
		// in apply order is not always the newest.
		last := tp.Objects[0]
		for _, o := range tp.Objects[1:] {
			if !o.Last.Less(last.Last) {
				last = o
			}
		}
		tp.Schema = tp.Versions[last.SchemaVersion]
		p.Tables = append(p.Tables, tp)
	}
	slices.SortFunc(p.Tables, func(a, b *TablePlan) int { return strings.Compare(a.Name, b.Name) })
	return p, nil
}

// tableNames returns the function naming the table an object of the plan
// belongs to, and the one telling which objects to keep. Objects are
// grouped by table generation (its pg_class OID) where their version
// records it, under the name of the generation's newest object: a table
// renamed is one table, under its name at the target. Versions without a
// generation (older archives) group by name.
//
// Two generations can end under one name: a table dropped (or renamed
// away) and another created or renamed into its place. Only the one
// holding the name last, at the target, is kept: the other's rows are
// gone, and folding both would interleave their changes (each switch of
// generation clears the rows). For a time target with objects that do not
// record their first commit time, which generation that is cannot be told
// from the manifest: all are kept and folded in order, as before.
func tableNames(objs []objectSeq, target Target) (name func(objectSeq) string, keep func(objectSeq) bool) {
	newest := map[uint32]schemas.ObjectRef{}
	for _, o := range objs {
		if g := o.ts.Generation; g != 0 {
			if n, ok := newest[g]; !ok || !o.ref.Last.Less(n.Last) {
				newest[g] = o.ref
			}
		}
	}
	type holder struct {
		gen       uint32
		last      schemas.Pos
		ambiguous bool
	}
	holders := map[string]*holder{}
	for g, o := range newest {
		h := holders[o.Table]
		if h == nil {
			holders[o.Table] = &holder{gen: g, last: o.Last}
			continue
		}
		switch c := comparePos(o.Last, h.last); {
		case c > 0:
			h.gen, h.last, h.ambiguous = g, o.Last, false
		case c == 0:
			h.ambiguous = true
		}
	}
	if !target.IsLSN() {
		for _, o := range newest {
			if o.MinTime.IsZero() {
				holders[o.Table].ambiguous = true
			}
		}
	}
	name = func(o objectSeq) string {
		if g := o.ts.Generation; g != 0 {
			return newest[g].Table
		}
		return o.ref.Table
	}
	keep = func(o objectSeq) bool {
		g := o.ts.Generation
		if g == 0 {
			return true
		}
		h := holders[newest[g].Table]
		return h.ambiguous || h.gen == g
	}
	return name, keep
}

// objectMayApply reports whether segment object o may hold a change after
// start and at or before the target. Objects record their first commit
// time (older archives do not): one that starts after a time target is
// left out, so neither its version nor its name is taken for the target's.
func objectMayApply(o schemas.ObjectRef, start schemas.LSN, target Target) bool {
	if o.Last.LSN <= start {
		return false
	}
	if target.IsLSN() {
		return o.First.LSN <= target.LSN
	}
	return o.MinTime.IsZero() || !o.MinTime.After(target.Time)
}

func checkRange(t *catalog.Tenant, target Target) error {
	r := t.Range
	var outside bool
	if target.IsLSN() {
		outside = target.LSN < r.FromLSN || target.LSN > r.ToLSN
	} else {
		outside = target.Time.Before(r.FromTime) || target.Time.After(r.ToTime)
	}
	if outside {
		return fmt.Errorf("%w: tenant %q can be restored to %s, not to %s; see it with `tenantwal ls --tenant %s`",
			ErrOutOfRange, t.ID, r, target, shellQuote(string(t.ID)))
	}
	return nil
}

// checkEntries re-checks what catalog validation promises and this package
// relies on: every object is under the tenant's prefix (defence in depth:
// a restore of one tenant never reads another's objects) and has a schema.
func checkEntries(t *catalog.Tenant) error {
	prefix := schemas.TenantPrefix(t.ID)
	for _, e := range t.Entries {
		if e.Tenant != t.ID {
			return fmt.Errorf("manifest entry %d belongs to tenant %q, not %q", e.Seq, e.Tenant, t.ID)
		}
		for _, o := range e.Objects {
			if !strings.HasPrefix(o.Key, prefix) {
				return fmt.Errorf("manifest entry %d: object %s is outside tenant %q's prefix %s: refusing to read it", e.Seq, o.Key, t.ID, prefix)
			}
			if e.Tables[o.SchemaVersion] == nil {
				return fmt.Errorf("manifest entry %d: object %s names unknown schema version %q", e.Seq, o.Key, o.SchemaVersion)
			}
		}
	}
	return nil
}

// pickSnapshot returns the newest complete snapshot at or before the
// target, or nil. Partial snapshot entries (a snapshot archived in several
// flushes) are never a starting point: the complete entry lists them all.
func pickSnapshot(entries []*schemas.ManifestEntry, target Target) *schemas.ManifestEntry {
	var best *schemas.ManifestEntry
	for _, e := range entries {
		if !catalog.IsCompleteSnapshot(e) {
			continue
		}
		if target.IsLSN() && e.Last.LSN > target.LSN || !target.IsLSN() && e.MaxTime.After(target.Time) {
			continue
		}
		if best == nil || e.Last.LSN >= best.Last.LSN {
			best = e
		}
	}
	return best
}

// entryMayApply reports whether segment entry e may hold a change after
// start and at or before the target.
func entryMayApply(e *schemas.ManifestEntry, start schemas.LSN, target Target) bool {
	if e.Last.LSN <= start || len(e.Objects) == 0 {
		return false
	}
	if target.IsLSN() {
		return e.First.LSN <= target.LSN
	}
	return e.MinTime.IsZero() || !e.MinTime.After(target.Time)
}

func comparePos(a, b schemas.Pos) int {
	if c := cmp.Compare(a.LSN, b.LSN); c != 0 {
		return c
	}
	return cmp.Compare(a.Seq, b.Seq)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	safe := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.:/@%+=,", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
