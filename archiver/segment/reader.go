package segment

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/tenantwal/tenantwal/schemas"
)

// ErrCorrupt is wrapped by the errors for a file that is not a well-formed
// segment: bad Parquet, missing or foreign metadata, a layout that does not
// match the table, or inconsistent row data.
var ErrCorrupt = errors.New("segment: corrupt or foreign file")

// batchRows is how many rows the reader decodes per column at a time.
const batchRows = 1024

// Reader reads a segment's rows in the order they were written. It is not
// safe for concurrent use.
type Reader struct {
	f    *file.Reader
	ts   *schemas.TableSchema
	cols []colReader // meta columns, then one per table column

	nrg  int   // row groups in the file
	rg   int   // next row group to open
	left int64 // rows of the open row group not yet decoded
	n    int   // rows in the decoded batch
	pos  int   // next row of the batch

	vals   []schemas.Value
	err    error // sticky, io.EOF included
	closed bool
}

// NewReader opens the segment held in r[0:size). It reads the footer and
// checks that the file's columns match the table schema stored in it; the
// error wraps ErrCorrupt when they do not. r must stay readable until Close.
func NewReader(r io.ReaderAt, size int64) (sr *Reader, err error) {
	defer func() {
		if p := recover(); p != nil {
			sr, err = nil, fmt.Errorf("%w: %v", ErrCorrupt, p)
		}
	}()
	if size < 0 {
		return nil, fmt.Errorf("segment: negative size %d", size)
	}
	f, err := file.NewParquetReader(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, fmt.Errorf("%w: open parquet: %w", ErrCorrupt, err)
	}
	kv := f.MetaData().KeyValueMetadata()
	if v := kv.FindValue(MetaKeyFormat); v == nil || *v != FormatVersion {
		got := "none"
		if v != nil {
			got = fmt.Sprintf("%q", *v)
		}
		return nil, fmt.Errorf("%w: %s is %s, want %q", ErrCorrupt, MetaKeyFormat, got, FormatVersion)
	}
	js := kv.FindValue(MetaKeyTable)
	if js == nil {
		return nil, fmt.Errorf("%w: no %s metadata", ErrCorrupt, MetaKeyTable)
	}
	ts := new(schemas.TableSchema)
	if err := json.Unmarshal([]byte(*js), ts); err != nil {
		return nil, fmt.Errorf("%w: decode %s: %w", ErrCorrupt, MetaKeyTable, err)
	}
	specs, err := layout(ts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if err := checkLayout(f.MetaData().Schema, specs); err != nil {
		return nil, err
	}
	sr = &Reader{f: f, ts: ts, nrg: f.NumRowGroups(), cols: make([]colReader, len(specs)),
		vals: make([]schemas.Value, len(ts.Columns))}
	for i := range sr.cols {
		c := &sr.cols[i]
		c.name, c.optional = specs[i].name, specs[i].optional
		switch {
		case i == 2 || i == 5:
			c.kind = kindText
		case i < numMetaColumns:
			c.raw = true
		default:
			c.kind = kindOf(ts.Columns[i-numMetaColumns].TypeOID)
		}
	}
	return sr, nil
}

// checkLayout verifies that the file's Parquet schema is the layout.
func checkLayout(sc *schema.Schema, specs []colSpec) error {
	if sc.NumColumns() != len(specs) {
		return fmt.Errorf("%w: file has %d columns, the table needs %d", ErrCorrupt, sc.NumColumns(), len(specs))
	}
	for i, s := range specs {
		c := sc.Column(i)
		var def int16
		if s.optional {
			def = 1
		}
		_, isString := c.LogicalType().(schema.StringLogicalType)
		switch {
		case c.Name() != s.name || c.MaxRepetitionLevel() != 0 || c.MaxDefinitionLevel() != def:
			return fmt.Errorf("%w: column %d is %q (def %d), want %q (def %d)",
				ErrCorrupt, i, c.Name(), c.MaxDefinitionLevel(), s.name, def)
		case c.PhysicalType() != s.phys:
			return fmt.Errorf("%w: column %q is %s, want %s", ErrCorrupt, s.name, c.PhysicalType(), s.phys)
		case s.phys == parquet.Types.ByteArray && isString != (s.logical != nil):
			return fmt.Errorf("%w: column %q has logical type %s", ErrCorrupt, s.name, c.LogicalType())
		}
	}
	return nil
}

// Table returns the table schema stored in the file.
func (r *Reader) Table() *schemas.TableSchema { return r.ts }

// Next returns the next row, or io.EOF after the last one. The returned
// slice and its Data are valid until the next call to Next and must not be
// modified. Errors other than io.EOF wrap ErrCorrupt or the read error of the
// io.ReaderAt; they are sticky.
func (r *Reader) Next() (Meta, []schemas.Value, error) {
	if r.err != nil {
		return Meta{}, nil, r.err
	}
	if r.closed {
		return Meta{}, nil, errors.New("segment: reader is closed")
	}
	if r.pos == r.n {
		if err := r.loadBatch(); err != nil {
			r.err = err
			return Meta{}, nil, err
		}
	}
	m, err := r.row()
	if err != nil {
		r.err = err
		return Meta{}, nil, err
	}
	return m, r.vals, nil
}

// row assembles row r.pos of the decoded batch.
func (r *Reader) row() (Meta, error) {
	i := r.pos
	r.pos++
	c := r.cols
	op, ok := c[2].next()
	if !ok || len(op) != 1 {
		return Meta{}, fmt.Errorf("%w: bad %s value", ErrCorrupt, colOp)
	}
	m := Meta{
		LSN:        schemas.LSN(c[0].i64[i]),
		Seq:        uint32(c[1].i64[i]),
		Op:         schemas.Op(op[0]),
		CommitTime: time.UnixMicro(c[3].i64[i]).UTC(),
		XID:        uint32(c[4].i64[i]),
	}
	for j := range r.vals {
		cr := &c[numMetaColumns+j]
		if cr.defs[i] != 1 {
			r.vals[j] = schemas.Value{Kind: schemas.ValueNull}
			continue
		}
		d, ok := cr.next()
		if !ok {
			return Meta{}, fmt.Errorf("%w: column %q has fewer values than definition levels", ErrCorrupt, cr.name)
		}
		r.vals[j] = schemas.Value{Kind: schemas.ValueText, Data: d}
	}
	if c[5].defs[i] == 1 {
		list, ok := c[5].next()
		if !ok {
			return Meta{}, fmt.Errorf("%w: column %s has fewer values than definition levels", ErrCorrupt, colUnchanged)
		}
		if err := markUnchanged(r.vals, list); err != nil {
			return Meta{}, err
		}
	}
	return m, nil
}

// markUnchanged sets Kind 'u' on the null values that list ("i,j,...")
// names.
func markUnchanged(vals []schemas.Value, list []byte) error {
	for len(list) > 0 {
		k := 0
		for k < len(list) && list[k] != ',' {
			k++
		}
		idx, ok := parseCanonInt(list[:k], 0, int64(len(vals)-1))
		if !ok || vals[idx].Kind != schemas.ValueNull {
			return fmt.Errorf("%w: bad %s entry %q", ErrCorrupt, colUnchanged, list[:k])
		}
		vals[idx].Kind = schemas.ValueUnchanged
		if k == len(list) {
			break
		}
		list = list[k+1:]
		if len(list) == 0 {
			return fmt.Errorf("%w: bad %s list", ErrCorrupt, colUnchanged)
		}
	}
	return nil
}

// loadBatch decodes the next rows of every column, opening the next row
// group when the current one is used up.
func (r *Reader) loadBatch() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, p)
		}
	}()
	for r.left == 0 {
		if r.rg == r.nrg {
			return io.EOF
		}
		if err := r.openRowGroup(r.rg); err != nil {
			return err
		}
		r.rg++
	}
	n := int(min(r.left, batchRows))
	for i := range r.cols {
		if err := r.cols[i].load(n); err != nil {
			return fmt.Errorf("segment: row group %d column %q: %w", r.rg-1, r.cols[i].name, err)
		}
	}
	r.left -= int64(n)
	r.n, r.pos = n, 0
	return nil
}

func (r *Reader) openRowGroup(i int) error {
	rgr := r.f.RowGroup(i)
	r.left = rgr.NumRows()
	if r.left < 0 {
		return fmt.Errorf("%w: row group %d has %d rows", ErrCorrupt, i, r.left)
	}
	for j := range r.cols {
		c := &r.cols[j]
		c.close()
		cr, err := rgr.Column(j)
		if err != nil {
			return fmt.Errorf("%w: row group %d column %q: %w", ErrCorrupt, i, c.name, err)
		}
		c.r = cr
	}
	return nil
}

// Close releases the column readers. It does not close the io.ReaderAt.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	var errs []error
	for i := range r.cols {
		errs = append(errs, r.cols[i].close())
	}
	return errors.Join(errs...)
}

// colReader decodes one column, a batch of rows at a time. Values of a
// table column are turned into PostgreSQL text in data; raw meta columns keep
// their integers in i64.
type colReader struct {
	name     string
	kind     kind
	raw      bool // a required integer meta column
	optional bool
	r        file.ColumnChunkReader

	defs []int16 // per row of the batch (optional columns only)
	i64  []int64 // raw values, per row
	data []byte  // text of the batch's non-null values, concatenated
	ends []int   // end offsets in data
	vi   int     // next value for next()
	off  int     // its start in data

	// Per-page scratch.
	s32   []int32
	s64   []int64
	sbool []bool
	sba   []parquet.ByteArray
}

// next returns the next non-null value's text.
func (c *colReader) next() ([]byte, bool) {
	if c.vi >= len(c.ends) {
		return nil, false
	}
	end := c.ends[c.vi]
	d := c.data[c.off:end:end]
	c.vi, c.off = c.vi+1, end
	if d == nil {
		d = []byte{} // an empty text is not NULL; this does not allocate
	}
	return d, true
}

func (c *colReader) close() error {
	if c.r == nil {
		return nil
	}
	err := c.r.Close()
	c.r = nil
	return err
}

// load decodes the next n rows.
func (c *colReader) load(n int) error {
	c.defs = resize(c.defs, n)
	c.i64, c.data, c.ends = c.i64[:0], c.data[:0], c.ends[:0]
	c.vi, c.off = 0, 0
	for got := 0; got < n; {
		var defs []int16
		if c.optional {
			defs = c.defs[got:n]
		}
		total, err := c.readPage(n-got, defs)
		if err != nil {
			return err
		}
		if total == 0 {
			if err := c.r.Err(); err != nil {
				return err
			}
			return fmt.Errorf("%w: column ends %d rows before its row group", ErrCorrupt, n-got)
		}
		got += total
	}
	if c.raw && len(c.i64) != n {
		return fmt.Errorf("%w: %d values for %d rows", ErrCorrupt, len(c.i64), n)
	}
	return nil
}

// readPage decodes up to want rows from the current page, converting the
// values to text (or raw integers), and returns how many rows it read.
func (c *colReader) readPage(want int, defs []int16) (int, error) {
	var (
		total int64
		nv    int
		err   error
	)
	switch r := c.r.(type) {
	case *file.Int32ColumnChunkReader:
		c.s32 = resize(c.s32, want)
		total, nv, err = r.ReadBatchInPage(int64(want), c.s32, defs, nil)
		for _, v := range c.s32[:nv] {
			if c.raw {
				c.i64 = append(c.i64, int64(uint32(v)))
				continue
			}
			c.data = appendInt(c.data, int64(v))
			c.ends = append(c.ends, len(c.data))
		}
	case *file.Int64ColumnChunkReader:
		c.s64 = resize(c.s64, want)
		total, nv, err = r.ReadBatchInPage(int64(want), c.s64, defs, nil)
		if c.raw {
			c.i64 = append(c.i64, c.s64[:nv]...)
			break
		}
		for _, v := range c.s64[:nv] {
			c.data = appendInt(c.data, v)
			c.ends = append(c.ends, len(c.data))
		}
	case *file.BooleanColumnChunkReader:
		c.sbool = resize(c.sbool, want)
		total, nv, err = r.ReadBatchInPage(int64(want), c.sbool, defs, nil)
		for _, v := range c.sbool[:nv] {
			b := byte('f')
			if v {
				b = 't'
			}
			c.data = append(c.data, b)
			c.ends = append(c.ends, len(c.data))
		}
	case *file.ByteArrayColumnChunkReader:
		c.sba = resize(c.sba, want)
		total, nv, err = r.ReadBatchInPage(int64(want), c.sba, defs, nil)
		for _, v := range c.sba[:nv] {
			if c.kind == kindBytea {
				c.data = appendHexBytea(c.data, v)
			} else {
				c.data = append(c.data, v...)
			}
			c.ends = append(c.ends, len(c.data))
		}
		clear(c.sba[:nv]) // drop references to the page
	default:
		return 0, fmt.Errorf("%w: unexpected column reader %T", ErrCorrupt, c.r)
	}
	if err != nil {
		return 0, err
	}
	return int(total), nil
}

// resize returns s with length n, reusing its array when it is big enough.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
