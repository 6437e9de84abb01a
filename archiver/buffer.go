package archiver

import (
	"math"
	"time"

	"github.com/tenantwal/tenantwal/archiver/segment"
	"github.com/tenantwal/tenantwal/schemas"
)

// row is one buffered Parquet row.
type row struct {
	meta segment.Meta
	vals []schemas.Value
}

// tableRows are the buffered rows of one table version.
type tableRows struct {
	ts   *schemas.TableSchema
	rows []row
}

// part is what one manifest entry will hold: a tenant's buffered snapshot
// rows, or its buffered changes.
type part struct {
	kind   string
	tables []*tableRows // in the order of their first row
	// latest finds a table's newest rows once there are more than
	// indexFrom (a tenant's part of a flush mostly holds one table).
	latest map[tableID]*tableRows
	first  schemas.Pos
	last   schemas.Pos
	minT   time.Time
	maxT   time.Time
	// complete is the last transaction (or snapshot) of the tenant that the
	// part holds whole.
	completeLSN  schemas.LSN
	completeTime time.Time
	// extra tables to describe even without rows (snapshot done).
	described []*schemas.TableSchema
}

const indexFrom = 8

// tableID is a table whatever its version: its generation (pg_class OID),
// or its name for versions that do not record one.
type tableID struct {
	gen          uint32
	schema, name string
}

func idOf(ts *schemas.TableSchema) tableID {
	if ts.Generation != 0 {
		return tableID{gen: ts.Generation}
	}
	return tableID{schema: ts.Schema, name: ts.Name}
}

func (p *part) empty() bool { return len(p.tables) == 0 && p.completeLSN == 0 }

// table returns the rows ts's next row goes to, adding them if new: the
// table's newest rows when they are of ts's version, else new ones. A
// table whose version changes and back within one part (a DDL and its
// reverse) gets an object for each stretch, so one table's objects never
// interleave: a restore takes a table's name and version at the target
// from its newest object before the target.
func (p *part) table(ts *schemas.TableSchema) (tr *tableRows, added bool) {
	id := idOf(ts)
	if p.latest != nil {
		if tr := p.latest[id]; tr != nil && tr.ts.Version == ts.Version {
			return tr, false
		}
	} else {
		for i := len(p.tables) - 1; i >= 0; i-- {
			if idOf(p.tables[i].ts) == id {
				if p.tables[i].ts.Version == ts.Version {
					return p.tables[i], false
				}
				break
			}
		}
	}
	tr = &tableRows{ts: ts}
	p.tables = append(p.tables, tr)
	switch {
	case p.latest != nil:
		p.latest[id] = tr
	case len(p.tables) > indexFrom:
		p.latest = make(map[tableID]*tableRows, 2*len(p.tables))
		for _, t := range p.tables {
			p.latest[idOf(t.ts)] = t // in order: the newest wins
		}
	}
	return tr, true
}

// add buffers r, a row of ts, and returns the bytes it takes (bufRowBytes,
// plus bufTableBytes for a table new in p).
func (p *part) add(ts *schemas.TableSchema, r row) int {
	tr, added := p.table(ts)
	tr.rows = append(tr.rows, r)
	pos := schemas.Pos{LSN: r.meta.LSN, Seq: r.meta.Seq}
	if p.first == (schemas.Pos{}) || pos.Less(p.first) {
		p.first = pos
	}
	if p.last.Less(pos) {
		p.last = pos
	}
	t := r.meta.CommitTime
	if p.minT.IsZero() || t.Before(p.minT) {
		p.minT = t
	}
	if t.After(p.maxT) {
		p.maxT = t
	}
	n := bufRowBytes(r.vals)
	if added {
		n += bufTableBytes
	}
	return n
}

// pending is one tenant's buffer in a partition worker. Its parts are
// allocated on first use: most tenants of a flush have only changes.
type pending struct {
	snapshot *part
	changes  *part
}

// part returns pd's part of kind (schemas.EntrySnapshot or EntrySegment),
// and the bytes it allocated for it (0 when it had it).
func (pd *pending) part(kind string) (*part, int) {
	pt := &pd.changes
	if kind == schemas.EntrySnapshot {
		pt = &pd.snapshot
	}
	if *pt != nil {
		return *pt, 0
	}
	*pt = &part{kind: kind}
	return *pt, bufPartBytes
}

// tenantState is what the worker knows of a tenant's manifest.
type tenantState struct {
	seen    schemas.Pos // highest position archived or buffered
	nextSeq uint64      // next manifest entry number
	// snap holds what the tenant's snapshot in progress already has in
	// committed entries: a snapshot too big for one flush is archived in
	// several entries, and the last one (complete, at SnapshotDone) lists
	// every object of the snapshot so that it alone describes it.
	snap *snapProgress
}

// snapProgress is a snapshot archived in part.
type snapProgress struct {
	lsn     schemas.LSN
	first   schemas.Pos
	minT    time.Time
	objects []schemas.ObjectRef
	tables  map[string]*schemas.TableSchema
}

// add records the objects of a committed partial snapshot entry.
func (sp *snapProgress) add(e *schemas.ManifestEntry) {
	if sp.first == (schemas.Pos{}) || e.First.Less(sp.first) {
		sp.first = e.First
	}
	if sp.minT.IsZero() || (!e.MinTime.IsZero() && e.MinTime.Before(sp.minT)) {
		sp.minT = e.MinTime
	}
	sp.objects = append(sp.objects, e.Objects...)
	for _, o := range e.Objects {
		sp.tables[o.SchemaVersion] = e.Tables[o.SchemaVersion]
	}
}

// snapshotDonePos is the position of a tenant's SnapshotDone: after every
// snapshot row, before any change (changes commit after the snapshot LSN).
func snapshotDonePos(lsn schemas.LSN) schemas.Pos { return schemas.Pos{LSN: lsn, Seq: math.MaxUint32} }

// eventRows converts one event to the Parquet rows it is stored as. A
// key-changing update becomes a delete of the old key and an update at the
// same position.
func eventRows(b *schemas.Batch, e *schemas.Event) []row {
	m := segment.Meta{LSN: b.CommitLSN, Seq: e.Seq, Op: e.Op, CommitTime: b.CommitTime, XID: b.XID}
	ncols := len(b.Tables[e.Rel].Columns)
	switch e.Op {
	case schemas.OpInsert:
		return []row{{m, e.New}}
	case schemas.OpUpdate:
		if e.Old != nil {
			d := m
			d.Op = schemas.OpDelete
			return []row{{d, e.Old}, {m, e.New}}
		}
		return []row{{m, e.New}}
	case schemas.OpDelete:
		return []row{{m, e.Old}}
	default: // truncate
		vals := make([]schemas.Value, ncols)
		for i := range vals {
			vals[i].Kind = schemas.ValueNull
		}
		return []row{{m, vals}}
	}
}

// valueArena holds the bytes of the values a worker buffers until its
// flush. Decoded values alias their message's payload
// (schemas.DecodeBatch), and a payload holds much more than one tenant's
// rows: the table schemas as JSON (~2 KB for the bench's 17-column table),
// the NATS headers, the other rows of a chunk. Buffering values in place
// pinned every payload until the flush: with 10,000 tenants of one row a
// message, most of the archiver's 186 MB live heap at its peak (issue #3
// item 16). Copies go into chunks of arenaChunk bytes, dropped all together
// when the worker's buffer is (a flush, or the worker's end); never
// reused, so nothing written earlier can still be read.
type valueArena struct {
	free []byte // the current chunk's unused tail
}

// arenaChunk is the size of a valueArena chunk; rows bigger than a quarter
// of it get an allocation of their own.
const arenaChunk = 64 << 10

// own replaces the data of vals with copies in the arena, so that vals no
// longer refer to the buffer they were decoded from.
func (a *valueArena) own(vals []schemas.Value) {
	n := 0
	for _, v := range vals {
		n += len(v.Data)
	}
	var dst []byte
	switch {
	case n == 0:
	case n > arenaChunk/4:
		dst = make([]byte, n)
	default:
		if len(a.free) < n {
			a.free = make([]byte, arenaChunk)
		}
		dst, a.free = a.free[:n:n], a.free[n:]
	}
	for i := range vals {
		v := &vals[i]
		if v.Data == nil {
			continue
		}
		if len(v.Data) == 0 {
			v.Data = []byte{} // not an empty slice of the payload, which would pin it
			continue
		}
		k := copy(dst, v.Data)
		v.Data, dst = dst[:k:k], dst[k:]
	}
}

// reset drops the arena's chunk: what was copied stays valid for whoever
// still refers to it.
func (a *valueArena) reset() { a.free = nil }

// What the budget counts for each thing a worker buffers: about what the
// Go heap holds for it (go1.26, amd64; TestBufferBytesFollowHeap compares
// them with the heap of 10,000 buffered tenants). The overhead matters
// with many tenants of a few rows each: with 10,000 tenants a flush holds
// one pending, one part and one tableRows per tenant, ~0.3 KB besides its
// rows.
const (
	// bufTenantBytes is a pending, its slot in worker.buf (a map of
	// load up to 7/8 that doubles) and in worker.order.
	bufTenantBytes = 16 + 2*(16+8+1) + 2*16
	// bufPartBytes is a part (184 bytes, 192 in its size class).
	bufPartBytes = 192
	// bufTableBytes is a tableRows and its slot in part.tables.
	bufTableBytes = 32 + 8
	// bufRowOverhead is a row in tableRows.rows (72 bytes with its values'
	// slice header, and as much again of spare capacity after append
	// doubled the slice).
	bufRowOverhead = 2 * 72
	// bufValueBytes is one schemas.Value of a row (its data aside).
	bufValueBytes = 32
)

// bufRowBytes is what a buffered row takes: bufRowOverhead, its values and
// their data (in the worker's valueArena).
func bufRowBytes(vals []schemas.Value) int {
	n := bufRowOverhead
	for _, v := range vals {
		n += bufValueBytes + len(v.Data)
	}
	return n
}

// bufTableSchemaBytes is about what a decoded table schema takes: the
// struct, each column (96 bytes, with the spare capacity JSON decoding
// leaves, and its strings), each other definition, and the longer texts.
// A worker holds one per table version of its flush (worker.table).
func bufTableSchemaBytes(ts *schemas.TableSchema) int {
	n := 512 + 192*len(ts.Columns) + 16*len(ts.PrimaryKey) +
		256*(len(ts.Indexes)+len(ts.Constraints)+len(ts.Generated)+len(ts.Types))
	for _, c := range ts.Columns {
		n += len(c.Default)
	}
	for _, x := range ts.Indexes {
		n += len(x.Def)
	}
	for _, x := range ts.Constraints {
		n += len(x.Def)
	}
	for _, x := range ts.Generated {
		n += len(x.Expr)
	}
	return n
}
