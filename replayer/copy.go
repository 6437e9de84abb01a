package replayer

import (
	"io"

	"github.com/tenantwal/tenantwal/schemas"
)

// copyReader streams folded rows as COPY text format: columns separated by
// tabs, rows by newlines, NULL as \N, and backslash, newline, carriage
// return and tab escaped. The values are PostgreSQL's text output already,
// so nothing else is converted.
type copyReader struct {
	rows []*row
	i    int // next row
	rep  int // copies of rows[i] already written (multisets)
	buf  []byte
	off  int
	n    int64 // rows written
}

func newCopyReader(rows []*row) *copyReader { return &copyReader{rows: rows} }

func (r *copyReader) Read(p []byte) (int, error) {
	for r.off == len(r.buf) {
		if r.i == len(r.rows) {
			return 0, io.EOF
		}
		r.buf, r.off = appendCopyRow(r.buf[:0], r.rows[r.i].values), 0
		r.n++
		if r.rep++; r.rep >= r.rows[r.i].n {
			r.rows[r.i] = nil // let the row go once it is sent
			r.i, r.rep = r.i+1, 0
		}
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
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
		for _, c := range v.Data {
			switch c {
			case '\\':
				b = append(b, `\\`...)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, c)
			}
		}
	}
	return append(b, '\n')
}
