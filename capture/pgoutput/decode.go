package pgoutput

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/tenantwal/tenantwal/schemas"
)

// decoder reads the fields of one message in order. Errors are sticky: after
// the first failure every read returns a zero value and leaves err alone, so
// the per-message functions read straight through and Parse checks err once.
type decoder struct {
	typ  MessageType
	data []byte
	off  int
	err  error
}

// fail records the first error, at byte offset at.
func (d *decoder) fail(at int, format string, args ...any) {
	if d.err != nil {
		return
	}
	d.err = &ParseError{Type: d.typ, Offset: at, Reason: fmt.Sprintf(format, args...), err: ErrMalformed}
}

// left is the number of unread bytes.
func (d *decoder) left() int { return len(d.data) - d.off }

// need reports whether n more bytes can be read, failing if not. It is small
// enough to inline; the failure path is in short.
func (d *decoder) need(n int, what string) bool {
	if d.err == nil && len(d.data)-d.off >= n {
		return true
	}
	d.short(n, what)
	return false
}

func (d *decoder) short(n int, what string) {
	if d.err == nil {
		d.fail(d.off, "truncated %s: need %d bytes, have %d", what, n, d.left())
	}
}

// fits reports whether n items of at least size bytes each can still follow,
// failing if not. Callers check counts with it before allocating, which keeps
// allocation proportional to len(data) whatever a hostile count claims.
func (d *decoder) fits(n uint64, size int, at int, what string) bool {
	if d.err != nil {
		return false
	}
	if n*uint64(size) > uint64(d.left()) {
		d.fail(at, "%s %d needs at least %d bytes, have %d", what, n, n*uint64(size), d.left())
		return false
	}
	return true
}

func (d *decoder) uint8(what string) uint8 {
	if !d.need(1, what) {
		return 0
	}
	v := d.data[d.off]
	d.off++
	return v
}

func (d *decoder) uint16(what string) uint16 {
	if !d.need(2, what) {
		return 0
	}
	v := binary.BigEndian.Uint16(d.data[d.off:])
	d.off += 2
	return v
}

func (d *decoder) uint32(what string) uint32 {
	if !d.need(4, what) {
		return 0
	}
	v := binary.BigEndian.Uint32(d.data[d.off:])
	d.off += 4
	return v
}

func (d *decoder) uint64(what string) uint64 {
	if !d.need(8, what) {
		return 0
	}
	v := binary.BigEndian.Uint64(d.data[d.off:])
	d.off += 8
	return v
}

func (d *decoder) lsn(what string) schemas.LSN { return schemas.LSN(d.uint64(what)) }

func (d *decoder) time(what string) time.Time { return pgTime(int64(d.uint64(what))) }

// string reads a NUL-terminated string and returns a copy of it.
func (d *decoder) string(what string) string {
	if d.err != nil {
		return ""
	}
	n := bytes.IndexByte(d.data[d.off:], 0)
	if n < 0 {
		d.fail(d.off, "%s is not NUL-terminated", what)
		return ""
	}
	s := string(d.data[d.off : d.off+n])
	d.off += n + 1
	return s
}

// bytes returns the next n bytes, aliasing the input with the capacity clipped.
func (d *decoder) bytes(n int, what string) []byte {
	if !d.need(n, what) {
		return nil
	}
	b := d.data[d.off : d.off+n : d.off+n]
	d.off += n
	return b
}

// length reads an Int32 length that must be non-negative and no longer than
// the bytes that remain after it.
func (d *decoder) length(what string) int {
	at := d.off
	n := int32(d.uint32(what))
	if d.err != nil {
		return 0
	}
	if n < 0 || int64(n) > int64(d.left()) {
		d.off = at
		d.badLength(int64(n), what)
		return 0
	}
	return int(n)
}

// badLength fails on the Int32 length l at d.off, which is negative or longer
// than the bytes that follow it.
func (d *decoder) badLength(l int64, what string) {
	if l < 0 {
		d.fail(d.off, "negative %s %d", what, l)
		return
	}
	d.fail(d.off, "%s %d exceeds the %d bytes left", what, l, d.left()-4)
}

// finish fails on trailing bytes and returns the sticky error.
func (d *decoder) finish() error {
	if d.err == nil && d.off != len(d.data) {
		d.fail(d.off, "%d trailing bytes after the message", d.left())
	}
	return d.err
}

// pgEpochUnix is 2000-01-01 00:00:00 UTC, PostgreSQL's epoch, in Unix seconds.
const pgEpochUnix = 946684800

// pgTime converts a TimestampTz (microseconds since the PostgreSQL epoch) to
// a time.Time in UTC. Every int64 maps to a distinct time.Time; no value
// overflows.
func pgTime(us int64) time.Time {
	sec, rem := us/1e6, us%1e6
	if rem < 0 {
		sec, rem = sec-1, rem+1e6
	}
	return time.Unix(pgEpochUnix+sec, rem*1e3).UTC()
}
