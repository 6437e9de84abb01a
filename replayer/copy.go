package replayer

import (
	"context"
	"io"
	"strings"

	"github.com/tenantwal/tenantwal/schemas"
)

// copyChunk is about how much COPY data goes in one hand-off.
const copyChunk = 64 << 10

// copyPipe carries one table's rows in COPY format from the goroutine that
// reads and folds the table's objects (a rowSink) to the COPY on the
// connection (an io.Reader), a chunk at a time, so the two overlap.
//
// Text format: columns separated by tabs, rows by newlines, NULL as \N,
// and backslash, newline, carriage return and tab escaped. The values are
// PostgreSQL's text output already, so nothing else is converted. Binary
// format (binary.go) when encs is set.
type copyPipe struct {
	ctx    context.Context // the producer's
	encs   []binEncoder    // nil: text format
	chunks chan []byte
	free   chan []byte
	err    error // why the producer stopped early; set before chunks closes

	buf []byte // producer: being filled
	n   int64  // producer: rows written

	cur     []byte // reader: the chunk being read
	off     int    // reader: bytes of cur already read
	readErr error  // reader: what Read returned last, other than EOF
}

// newCopyPipe starts a pipe in text format, or in binary format with one
// encoder per column when encs is not nil.
func newCopyPipe(ctx context.Context, encs []binEncoder) *copyPipe {
	p := &copyPipe{ctx: ctx, encs: encs, chunks: make(chan []byte, 2), free: make(chan []byte, 4)}
	if encs != nil {
		p.buf = append(p.buf, copyBinaryHeader...)
	}
	return p
}

// sql returns the COPY statement for the pipe's format.
func (p *copyPipe) sql(target string, cols []string) string {
	sql := "COPY " + target + " (" + strings.Join(cols, ", ") + ") FROM STDIN"
	if p.encs != nil {
		sql += " (FORMAT binary)"
	}
	return sql
}

// row appends n copies of one row. In binary format it returns
// errNotBinary for a value without an exact binary form.
func (p *copyPipe) row(vals []schemas.Value, n int) error {
	for range n {
		if p.encs == nil {
			p.buf = appendCopyRow(p.buf, vals)
		} else {
			var ok bool
			if p.buf, ok = appendBinaryRow(p.buf, vals, p.encs); !ok {
				return errNotBinary
			}
		}
		p.n++
	}
	if len(p.buf) >= copyChunk {
		return p.flush()
	}
	return nil
}

func (p *copyPipe) flush() error {
	if len(p.buf) == 0 {
		return nil
	}
	select {
	case p.chunks <- p.buf:
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
	select {
	case p.buf = <-p.free:
		p.buf = p.buf[:0]
	default:
		p.buf = make([]byte, 0, copyChunk+copyChunk/4)
	}
	return nil
}

// close ends the rows: err == nil sends what is buffered and makes the
// reader return io.EOF; else the reader returns err.
func (p *copyPipe) close(err error) {
	if err == nil {
		if p.encs != nil {
			p.buf = append(p.buf, copyBinaryTrailer...)
		}
		err = p.flush()
	}
	p.err = err
	close(p.chunks)
}

func (p *copyPipe) Read(b []byte) (int, error) {
	for p.off == len(p.cur) {
		if p.cur != nil {
			select {
			case p.free <- p.cur:
			default:
			}
			p.cur = nil
		}
		c, ok := <-p.chunks
		if !ok {
			if p.err != nil {
				p.readErr = p.err
				return 0, p.err
			}
			return 0, io.EOF
		}
		p.cur, p.off = c, 0
	}
	n := copy(b, p.cur[p.off:])
	p.off += n
	return n, nil
}

func appendCopyRow(b []byte, vals []schemas.Value) []byte {
	for i, v := range vals {
		if i > 0 {
			b = append(b, '\t')
		}
		if v.Kind != schemas.ValueText {
			b = append(b, `\N`...)
			continue
		}
		data := v.Data
		for {
			j := 0
			for j < len(data) && copyEscape[data[j]] == 0 {
				j++
			}
			b = append(b, data[:j]...)
			if j == len(data) {
				break
			}
			b = append(b, '\\', copyEscape[data[j]])
			data = data[j+1:]
		}
	}
	return append(b, '\n')
}

// copyEscape is the letter after the backslash that stands for a byte in
// COPY text format, 0 for bytes written as they are.
var copyEscape = [256]byte{'\\': '\\', '\n': 'n', '\r': 'r', '\t': 't'}
