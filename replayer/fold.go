package replayer

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/tenantwal/tenantwal/schemas"
)

// change is one archived row as the fold sees it.
type change struct {
	Pos        schemas.Pos
	Op         schemas.Op
	CommitTime time.Time
	Values     []schemas.Value // in the source version's column order
	// mapped is set when Values are already a copy in the target
	// version's column order (mapper.mapRow).
	mapped bool
}

// row is one folded row in the target version's column order, with its
// multiplicity (always 1 for a table with a key; tables keyed by the whole
// row, REPLICA IDENTITY FULL without a primary key, are multisets).
type row struct {
	values []schemas.Value
	n      int
}

// fold rebuilds one table's rows at the target from its archived objects.
//
// Memory: the rows it folds (one copy of every value plus a key string per
// row) are held in memory until they are loaded: the table's changes and
// the snapshot rows they touch (tableLoader.emit), which must fit in memory
// for now.
type fold struct {
	tenant schemas.TenantID
	table  *schemas.TableSchema // target version
	target Target
	keyIdx []int // key columns in table
	multi  bool  // keyed by the whole row
	tenIdx int   // tenant column in table, or -1

	rows map[string]*row
	// high is the highest position applied: a change at or before it is a
	// duplicate (or already in the snapshot) and is skipped.
	high schemas.Pos
	// pair is set right after a delete was applied: a key-changing update
	// is stored as a delete of the old key and an update at the same
	// position, and the update's unchanged columns come from the old row.
	pair    bool
	pairOld []schemas.Value

	// gen is the generation (pg_class OID) of the last change applied: a
	// change of another generation means the table was dropped and
	// created again, and the old generation's rows are gone.
	gen     uint32
	seen    bool  // a change at or before the target was read
	applied int64 // changes applied
	orphans int64 // deletes of rows that were not there
}

func newFold(tenant schemas.TenantID, table *schemas.TableSchema, target Target) (*fold, error) {
	f := &fold{tenant: tenant, table: table, target: target, tenIdx: -1, rows: map[string]*row{}}
	var ident []int // replica identity columns
	for i, c := range table.Columns {
		if c.Key {
			ident = append(ident, i)
		}
	}
	switch {
	case table.ReplicaIdentity == 'i' && len(ident) > 0:
		// REPLICA IDENTITY USING INDEX: deletes and key changes carry the
		// index's columns, which need not be the primary key's.
		f.keyIdx = ident
	case len(table.PrimaryKey) > 0:
		for _, name := range table.PrimaryKey {
			i := table.ColumnIndex(name)
			if i < 0 {
				return nil, fmt.Errorf("table %s: primary key column %q is not among the archived columns", table.QualifiedName(), name)
			}
			f.keyIdx = append(f.keyIdx, i)
		}
	case len(ident) > 0 && table.ReplicaIdentity != 'f':
		f.keyIdx = ident
	default:
		// REPLICA IDENTITY FULL without a primary key (pgoutput flags every
		// column as part of the identity), or NOTHING: rows are identified
		// by all their values and identical rows may repeat.
		f.multi = true
		for i := range table.Columns {
			f.keyIdx = append(f.keyIdx, i)
		}
	}
	if table.TenantColumn != "" {
		f.tenIdx = table.ColumnIndex(table.TenantColumn)
		if f.tenIdx < 0 {
			return nil, fmt.Errorf("table %s: tenant column %q is not among the archived columns", table.QualifiedName(), table.TenantColumn)
		}
	}
	return f, nil
}

// mapper maps rows of one source version onto the target version: by
// attnum within one generation of the table when both versions record it
// (a renamed column keeps its values, a column dropped and added again
// under the same name does not), else by column name. A column the source
// lacks takes the target's missing value (ADD COLUMN with a non-volatile
// default: the value PostgreSQL shows for rows written before it), else
// NULL.
type mapper struct {
	src     *schemas.TableSchema
	index   []int // target column -> source column, or -1
	missing []schemas.Value
	ident   bool
	// enums are the target columns whose enum labels the target version
	// renamed (renameEnums); nil for most versions.
	enums []enumColumn
}

func (f *fold) mapperFor(src *schemas.TableSchema) *mapper {
	m := &mapper{src: src, index: make([]int, len(f.table.Columns)), missing: make([]schemas.Value, len(f.table.Columns)),
		ident: len(src.Columns) == len(f.table.Columns)}
	sameGen := src.Generation != 0 && src.Generation == f.table.Generation
	for i, c := range f.table.Columns {
		m.index[i] = -1
		if sameGen && c.Num != 0 {
			for j, sc := range src.Columns {
				if sc.Num == c.Num {
					m.index[i] = j
					break
				}
			}
		} else {
			m.index[i] = src.ColumnIndex(c.Name)
		}
		if m.index[i] != i {
			m.ident = false
		}
		m.missing[i] = schemas.Value{Kind: schemas.ValueNull}
		if c.Missing != nil {
			m.missing[i] = schemas.Value{Kind: schemas.ValueText, Data: []byte(*c.Missing)}
		}
	}
	return m
}

// mapRow copies vals (valid only until the next read) into a new row in the
// target's column order.
func (m *mapper) mapRow(vals []schemas.Value) []schemas.Value {
	out := make([]schemas.Value, len(m.index))
	size := 0
	for _, j := range m.index {
		if j >= 0 {
			size += len(vals[j].Data)
		}
	}
	buf := make([]byte, 0, size) // one allocation for the row's bytes
	for i, j := range m.index {
		if j < 0 {
			out[i] = m.missing[i] // shared, never written to
			continue
		}
		v := vals[j]
		out[i].Kind = v.Kind
		if v.Kind == schemas.ValueText {
			start := len(buf)
			buf = append(buf, v.Data...)
			out[i].Data = buf[start:len(buf):len(buf)]
		}
	}
	if m.enums != nil {
		m.translate(out)
	}
	return out
}

// view fills out (one value per target column) with vals' values in the
// target's column order, sharing their bytes: out is valid as long as vals.
func (m *mapper) view(out, vals []schemas.Value) {
	for i, j := range m.index {
		if j < 0 {
			out[i] = m.missing[i]
		} else {
			out[i] = vals[j]
		}
	}
	if m.enums != nil {
		m.translate(out)
	}
}

// rowOf returns c's values as a new row in the target's column order.
func (m *mapper) rowOf(c *change) []schemas.Value {
	if c.mapped {
		return c.Values
	}
	return m.mapRow(c.Values)
}

// markSnapshotLoaded records that everything at or before lsn is in the
// state: later changes at or before it are skipped.
func (f *fold) markSnapshotLoaded(lsn schemas.LSN) {
	if p := (schemas.Pos{LSN: lsn, Seq: math.MaxUint32}); f.high.Less(p) {
		f.high = p
	}
	f.pair = false
}

// inTarget reports whether c committed at or before the target.
func (f *fold) inTarget(c *change) bool {
	if f.target.IsLSN() {
		return c.Pos.LSN <= f.target.LSN
	}
	return !c.CommitTime.After(f.target.Time)
}

// applySnapshotRow loads one row of a snapshot object: every row counts,
// whatever its position.
func (f *fold) applySnapshotRow(m *mapper, c *change) error {
	if err := f.checkSnapshotRow(m, c); err != nil {
		return err
	}
	return f.insert(m.mapRow(c.Values), c)
}

// checkSnapshotRow checks that c is a snapshot row and records it was seen:
// what applySnapshotRow does before it stores the row.
func (f *fold) checkSnapshotRow(m *mapper, c *change) error {
	if c.Op != schemas.OpInsert {
		return fmt.Errorf("snapshot row with op %q, want %q", c.Op, schemas.OpInsert)
	}
	f.seen = true
	f.gen = m.src.Generation
	return nil
}

// applyChange folds one change of a segment object. It returns done = true
// when no later change of the object can be at or before an LSN target.
func (f *fold) applyChange(m *mapper, c *change) (done bool, err error) {
	if !f.inTarget(c) {
		f.pair = false
		return f.target.IsLSN(), nil
	}
	// A truncate or schema marker alone does not make the table exist for
	// this tenant: pool TRUNCATE and DDL mark every tenant the archive
	// knows.
	if c.Op != schemas.OpTruncate && c.Op != schemas.OpSchema && c.Op != schemas.OpDrop {
		f.seen = true
	}
	pairUpdate := f.pair && c.Op == schemas.OpUpdate && c.Pos == f.high
	if !pairUpdate && !f.high.Less(c.Pos) {
		f.pair = false
		return false, nil // a duplicate, or already in the snapshot
	}
	f.pair = false
	if staleDrop(c, m.src.Generation, f.gen) {
		f.high = c.Pos
		return false, nil
	}
	if g := m.src.Generation; g != 0 {
		if f.gen != 0 && g != f.gen {
			clear(f.rows) // dropped and created again
		}
		f.gen = g
	}
	switch c.Op {
	case schemas.OpInsert:
		err = f.insert(m.rowOf(c), c)
	case schemas.OpUpdate:
		var old []schemas.Value
		if pairUpdate {
			old = f.pairOld
		}
		err = f.update(m.rowOf(c), old, c)
	case schemas.OpDelete:
		f.pairOld = f.delete(m.rowOf(c))
		f.pair = true
	case schemas.OpTruncate:
		clear(f.rows)
	case schemas.OpDrop:
		clear(f.rows)
		f.seen = false
	case schemas.OpSchema:
		// Only its version matters (the plan reads it).
	default:
		err = fmt.Errorf("unknown op %q", c.Op)
	}
	if err != nil {
		return false, err
	}
	f.high = c.Pos
	f.applied++
	return false, nil
}

// staleDrop reports whether c, of table generation g, is the drop of a
// generation the table no longer is (cur is the current one): archived
// after the new generation's rows by an older capture, it drops nothing.
func staleDrop(c *change, g, cur uint32) bool {
	return c.Op == schemas.OpDrop && g != 0 && cur != 0 && g != cur
}

func (f *fold) insert(vals []schemas.Value, c *change) error {
	if err := f.checkRow(vals, c); err != nil {
		return err
	}
	k, err := f.key(vals, c)
	if err != nil {
		return err
	}
	if r := f.rows[k]; r != nil && f.multi {
		r.n++
		return nil
	}
	f.rows[k] = &row{values: vals, n: 1}
	return nil
}

// update stores the new version of a row. Unchanged (TOAST) columns are
// taken from old when the update is the second half of a key change, else
// from the stored row with the same key.
func (f *fold) update(vals, old []schemas.Value, c *change) error {
	if old == nil {
		k, err := f.key(vals, c)
		if err != nil {
			return fmt.Errorf("update without a preceding delete: %w", err)
		}
		r := f.rows[k]
		if r != nil && f.multi {
			// Keyed by the whole row, an update that is not stored as a
			// delete + update changed nothing: the row replaces itself.
			return nil
		}
		if r != nil {
			old = r.values
		}
	}
	for i := range vals {
		if vals[i].Kind != schemas.ValueUnchanged {
			continue
		}
		if old == nil {
			return fmt.Errorf("update at %s: column %q is an unchanged TOAST value but the archive holds no earlier version of the row: the archive is incomplete", c.Pos, f.table.Columns[i].Name)
		}
		vals[i] = old[i]
	}
	return f.insert(vals, c)
}

// delete removes one instance of the row with vals' key and returns the
// removed row's values (nil when there was none).
func (f *fold) delete(vals []schemas.Value) []schemas.Value {
	k := f.keyOf(vals)
	r := f.rows[k]
	if r == nil {
		f.orphans++
		return nil
	}
	r.n--
	if r.n <= 0 {
		delete(f.rows, k)
	}
	return r.values
}

// checkRow refuses a row of another tenant (defence in depth: routing
// already put it here) and an unresolved unchanged value.
func (f *fold) checkRow(vals []schemas.Value, c *change) error {
	for i, v := range vals {
		if v.Kind == schemas.ValueUnchanged {
			return fmt.Errorf("row at %s: column %q is an unchanged TOAST value with no earlier version to take it from", c.Pos, f.table.Columns[i].Name)
		}
	}
	if f.tenIdx < 0 {
		return nil
	}
	v := vals[f.tenIdx]
	if v.Kind != schemas.ValueText || string(v.Data) != string(f.tenant) {
		got := "NULL"
		if v.Kind == schemas.ValueText {
			got = fmt.Sprintf("%q", v.Data)
		}
		return fmt.Errorf("row at %s has tenant column %q = %s, not tenant %q: refusing to restore another tenant's row",
			c.Pos, f.table.TenantColumn, got, f.tenant)
	}
	return nil
}

func (f *fold) key(vals []schemas.Value, c *change) (string, error) {
	for _, i := range f.keyIdx {
		if vals[i].Kind == schemas.ValueUnchanged {
			return "", fmt.Errorf("row at %s: key column %q is an unchanged TOAST value", c.Pos, f.table.Columns[i].Name)
		}
	}
	return f.keyOf(vals), nil
}

// keyOf encodes the key columns injectively (appendKey).
func (f *fold) keyOf(vals []schemas.Value) string { return string(f.appendKey(nil, vals)) }

// appendKey appends the key columns of vals to b: kind, length, bytes.
func (f *fold) appendKey(b []byte, vals []schemas.Value) []byte {
	for _, i := range f.keyIdx {
		v := vals[i]
		b = append(b, byte(v.Kind))
		if v.Kind == schemas.ValueText {
			b = binary.AppendUvarint(b, uint64(len(v.Data)))
			b = append(b, v.Data...)
		}
	}
	return b
}

// result returns the folded rows and releases the fold's map.
func (f *fold) result() []*row {
	out := make([]*row, 0, len(f.rows))
	for _, r := range f.rows {
		out = append(out, r)
	}
	f.rows = nil
	return out
}
