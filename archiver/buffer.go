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
	tables map[string]*tableRows // by schema version
	order  []string
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

func newPart(kind string) *part { return &part{kind: kind, tables: map[string]*tableRows{}} }

func (p *part) empty() bool { return len(p.order) == 0 && p.completeLSN == 0 }

func (p *part) add(ts *schemas.TableSchema, r row) {
	tr := p.tables[ts.Version]
	if tr == nil {
		tr = &tableRows{ts: ts}
		p.tables[ts.Version] = tr
		p.order = append(p.order, ts.Version)
	}
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
}

// pending is one tenant's buffer in a partition worker.
type pending struct {
	snapshot *part
	changes  *part
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

func rowSize(vals []schemas.Value) int {
	n := 64
	for _, v := range vals {
		n += 24 + len(v.Data)
	}
	return n
}
