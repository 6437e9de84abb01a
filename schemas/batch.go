package schemas

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// BatchKind is the kind of one JetStream message.
type BatchKind byte

const (
	// KindChanges carries the changes of one tenant in one transaction, or a
	// chunk of them. Final marks the tenant's last chunk of the transaction.
	KindChanges BatchKind = 'C'
	// KindSnapshot carries rows (as inserts) of one tenant's initial snapshot
	// at consistent point CommitLSN.
	KindSnapshot BatchKind = 'S'
	// KindSnapshotDone says the tenant's snapshot at CommitLSN is complete;
	// Tables lists every table it covered (possibly with no rows).
	KindSnapshotDone BatchKind = 'E'
	// KindMarker is a per-partition watermark: every transaction with
	// commit LSN <= CommitLSN has been published to the partition before the
	// marker. EndLSN is the slot position that may be confirmed once the
	// marker is archived. Tenant is empty.
	KindMarker BatchKind = 'M'
)

// BatchVersion is the version of the wire encoding written by Encode.
const BatchVersion = 1

var batchMagic = [3]byte{'T', 'W', 'B'}

// Batch is one JetStream message: a unit of one tenant's changes or snapshot
// rows, or a partition marker. Event.Rel indexes Tables.
type Batch struct {
	Kind       BatchKind
	Tenant     TenantID
	CommitLSN  LSN
	EndLSN     LSN
	CommitTime time.Time
	XID        uint32
	Chunk      uint32
	Final      bool
	Tables     []*TableSchema
	Events     []Event
}

// MsgID is the JetStream Nats-Msg-Id of the batch: deterministic, so a replay
// of the same transaction from the slot is deduplicated by the server. It
// carries the tenant's hash, never the tenant id.
func (b *Batch) MsgID(partition int) string {
	switch b.Kind {
	case KindMarker:
		return fmt.Sprintf("m:%016X:%d", uint64(b.EndLSN), partition)
	default:
		return fmt.Sprintf("%c:%016X:%s:%d", b.Kind, uint64(b.CommitLSN), b.Tenant.Hash(), b.Chunk)
	}
}

// ErrBadBatch is wrapped by every decoding error.
var ErrBadBatch = errors.New("malformed batch")

// AppendEncode appends the binary encoding of b to dst.
func (b *Batch) AppendEncode(dst []byte) ([]byte, error) {
	dst = append(dst, batchMagic[:]...)
	dst = append(dst, BatchVersion, byte(b.Kind))
	dst = appendBytes(dst, []byte(b.Tenant))
	dst = binary.AppendUvarint(dst, uint64(b.CommitLSN))
	dst = binary.AppendUvarint(dst, uint64(b.EndLSN))
	dst = binary.AppendVarint(dst, timeMicros(b.CommitTime))
	dst = binary.AppendUvarint(dst, uint64(b.XID))
	dst = binary.AppendUvarint(dst, uint64(b.Chunk))
	if b.Final {
		dst = append(dst, 1)
	} else {
		dst = append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b.Tables)))
	for _, t := range b.Tables {
		js, err := json.Marshal(t)
		if err != nil {
			return nil, fmt.Errorf("encode table schema %s: %w", t.QualifiedName(), err)
		}
		dst = appendBytes(dst, js)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b.Events)))
	for i := range b.Events {
		e := &b.Events[i]
		if int(e.Rel) >= len(b.Tables) {
			return nil, fmt.Errorf("encode batch: event %d names table %d of %d", i, e.Rel, len(b.Tables))
		}
		dst = binary.AppendUvarint(dst, uint64(e.Seq))
		dst = append(dst, byte(e.Op), e.Flags)
		dst = binary.AppendUvarint(dst, uint64(e.Rel))
		dst = appendTuple(dst, e.Old)
		dst = appendTuple(dst, e.New)
	}
	return dst, nil
}

// tuples encode nil (absent) as 0 and n values as n+1.
func appendTuple(dst []byte, vals []Value) []byte {
	if vals == nil {
		return append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(vals))+1)
	for _, v := range vals {
		dst = append(dst, byte(v.Kind))
		if v.Kind == ValueText {
			dst = appendBytes(dst, v.Data)
		}
	}
	return dst
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func timeMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// DecodeBatch decodes a message written by AppendEncode. Value data aliases
// buf: keep buf unchanged while the batch is in use.
func DecodeBatch(buf []byte) (*Batch, error) {
	d := decoder{buf: buf}
	if len(buf) < 5 || [3]byte(buf[:3]) != batchMagic {
		return nil, fmt.Errorf("%w: not a tenantwal batch", ErrBadBatch)
	}
	if buf[3] != BatchVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads version %d: upgrade tenantwal", ErrBadBatch, buf[3], BatchVersion)
	}
	d.off = 5
	b := &Batch{Kind: BatchKind(buf[4])}
	switch b.Kind {
	case KindChanges, KindSnapshot, KindSnapshotDone, KindMarker:
	default:
		return nil, fmt.Errorf("%w: unknown kind %q", ErrBadBatch, buf[4])
	}
	b.Tenant = TenantID(d.bytes())
	b.CommitLSN = LSN(d.uvarint())
	b.EndLSN = LSN(d.uvarint())
	if us := d.varint(); us != 0 {
		b.CommitTime = time.UnixMicro(us).UTC()
	}
	b.XID = uint32(d.uvarint())
	b.Chunk = uint32(d.uvarint())
	b.Final = d.byte() == 1
	nt := d.count(2)
	b.Tables = make([]*TableSchema, 0, nt)
	for range nt {
		js := d.bytes()
		if d.err != nil {
			break
		}
		t := new(TableSchema)
		if err := json.Unmarshal(js, t); err != nil {
			return nil, fmt.Errorf("%w: table schema: %w", ErrBadBatch, err)
		}
		b.Tables = append(b.Tables, t)
	}
	ne := d.count(5)
	b.Events = make([]Event, 0, ne)
	for range ne {
		var e Event
		e.Seq = uint32(d.uvarint())
		e.Op = Op(d.byte())
		e.Flags = d.byte()
		e.Rel = uint32(d.uvarint())
		e.Old = d.tuple()
		e.New = d.tuple()
		if d.err != nil {
			break
		}
		if int(e.Rel) >= len(b.Tables) {
			return nil, fmt.Errorf("%w: event names table %d of %d", ErrBadBatch, e.Rel, len(b.Tables))
		}
		b.Events = append(b.Events, e)
	}
	if d.err != nil {
		return nil, d.err
	}
	if d.off != len(buf) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadBatch, len(buf)-d.off)
	}
	return b, nil
}

type decoder struct {
	buf []byte
	off int
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or bad %s at byte %d", ErrBadBatch, what, d.off)
	}
	d.off = len(d.buf)
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.buf[d.off:])
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) byte() byte {
	if d.off >= len(d.buf) {
		d.fail("byte")
		return 0
	}
	c := d.buf[d.off]
	d.off++
	return c
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.buf)-d.off) {
		d.fail("length")
		return nil
	}
	b := d.buf[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return b
}

// count reads an element count and bounds it by the bytes left, given the
// smallest encoding of one element, so a hostile count cannot allocate.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if n > uint64((len(d.buf)-d.off)/minSize) {
		d.fail("count")
		return 0
	}
	return int(n)
}

func (d *decoder) tuple() []Value {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	n--
	if n > uint64(len(d.buf)-d.off) {
		d.fail("tuple length")
		return nil
	}
	vals := make([]Value, n)
	for i := range vals {
		k := ValueKind(d.byte())
		switch k {
		case ValueNull, ValueUnchanged:
		case ValueText:
			vals[i].Data = d.bytes()
		default:
			d.fail("value kind")
			return nil
		}
		vals[i].Kind = k
	}
	return vals
}
