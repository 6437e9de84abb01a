package pgoutput

import "encoding/binary"

// Tuple is the TupleData of a row: one column per column of its Relation, in
// order.
type Tuple struct {
	Columns []TupleColumn
}

// The values of TupleColumn.Kind.
const (
	ColumnNull      = 'n' // SQL NULL; Data is nil
	ColumnUnchanged = 'u' // unchanged TOASTed value, not sent; Data is nil
	ColumnText      = 't' // Data is the value in text format
	ColumnBinary    = 'b' // Data is the value in binary format (binary option only)
)

// TupleColumn is one column value. Data aliases the input of Parse: it is
// valid while that buffer is unchanged; copy it to retain it.
type TupleColumn struct {
	Kind byte // ColumnNull, ColumnUnchanged, ColumnText or ColumnBinary
	Data []byte
}

func (d *decoder) insert() *Insert {
	m := &Insert{RelID: d.uint32("relation ID")}
	d.expect('N', "new tuple marker")
	m.New.Columns = d.alloc(d.off, 0)
	d.tuple(m.New.Columns)
	return m
}

func (d *decoder) update() *Update {
	m := &Update{RelID: d.uint32("relation ID")}
	at := d.off
	switch kind := d.uint8("tuple marker"); kind {
	case 'N':
		m.New.Columns = d.alloc(d.off, 0)
		d.tuple(m.New.Columns)
	case OldKey, OldFull:
		// Validate the old tuple without allocating, so that one slice can
		// hold both tuples once the new tuple's count is known.
		m.OldKind = kind
		oldAt := d.off
		nOld := d.tuple(nil)
		d.expect('N', "new tuple marker")
		cols := d.alloc(d.off, nOld)
		if d.err != nil {
			return m
		}
		d.off = oldAt
		m.Old.Columns = cols[:nOld:nOld]
		m.New.Columns = cols[nOld:]
		d.tuple(m.Old.Columns)
		d.off++ // the 'N' checked above
		d.tuple(m.New.Columns)
	default:
		if d.err == nil {
			d.fail(at, "tuple marker %q is not K, O or N", kind)
		}
	}
	return m
}

func (d *decoder) delete() *Delete {
	m := &Delete{RelID: d.uint32("relation ID")}
	at := d.off
	m.OldKind = d.uint8("tuple marker")
	if d.err == nil && m.OldKind != OldKey && m.OldKind != OldFull {
		d.fail(at, "tuple marker %q is not K or O", m.OldKind)
	}
	m.Old.Columns = d.alloc(d.off, 0)
	d.tuple(m.Old.Columns)
	return m
}

// expect reads one byte that must be b.
func (d *decoder) expect(b byte, what string) {
	at := d.off
	if got := d.uint8(what); d.err == nil && got != b {
		d.fail(at, "%s is %q, want %q", what, got, b)
	}
}

// alloc returns a slice for extra columns plus the columns of the TupleData
// at offset at, whose count it peeks at. Every column takes at least one
// byte, so a count larger than the bytes left is refused before allocating.
func (d *decoder) alloc(at, extra int) []TupleColumn {
	if d.err != nil {
		return nil
	}
	if len(d.data)-at < 2 {
		d.fail(at, "truncated column count: need 2 bytes, have %d", len(d.data)-at)
		return nil
	}
	n := int(d.data[at])<<8 | int(d.data[at+1])
	if n > len(d.data)-at-2 {
		d.fail(at, "column count %d exceeds the %d bytes left", n, len(d.data)-at-2)
		return nil
	}
	return make([]TupleColumn, extra+n)
}

// tuple reads one TupleData and returns its column count. With cols == nil
// it only validates; otherwise cols has the length alloc gave it for this
// TupleData and receives the columns. It is the hot path of decoding, so it
// indexes the input directly instead of going through the field readers.
func (d *decoder) tuple(cols []TupleColumn) int {
	at := d.off
	n := int(d.uint16("column count"))
	if d.err != nil {
		return 0
	}
	if cols != nil && len(cols) != n {
		d.fail(at, "column count %d changed while decoding", n) // unreachable
		return 0
	}
	data, off := d.data, d.off
	for i := range n {
		if off >= len(data) {
			d.off = off
			d.short(1, "column kind")
			return 0
		}
		kind := data[off]
		var val []byte
		switch kind {
		case ColumnNull, ColumnUnchanged:
			off++
		case ColumnText, ColumnBinary:
			if len(data)-off-1 < 4 {
				d.off = off + 1
				d.short(4, "column length")
				return 0
			}
			l := int32(binary.BigEndian.Uint32(data[off+1:]))
			off += 5
			if l < 0 || int(l) > len(data)-off {
				d.off = off - 4
				d.badLength(int64(l), "column length")
				return 0
			}
			val = data[off : off+int(l) : off+int(l)]
			off += int(l)
		default:
			d.fail(off, "column %d: kind %q is not n, u, t or b", i, kind)
			return 0
		}
		if cols != nil {
			cols[i] = TupleColumn{Kind: kind, Data: val}
		}
	}
	d.off = off
	return n
}
