package segment

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"strconv"
	"sync"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/tenantwal/tenantwal/schemas"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("segment: writer is closed")

// Writer writes one table's rows as a Parquet segment. It is not safe for
// concurrent use.
type Writer struct {
	w       io.Writer
	sc      *schema.GroupNode
	kv      metadata.KeyValueMetadata
	opts    Options
	fw      *file.Writer // nil until the first row group is written
	ts      *schemas.TableSchema
	maxRows int

	// The current row group, columnar.
	lsn, commit, xid []int64
	seq              []int32
	ops              []parquet.ByteArray // point into opBytes
	unch             colBuf
	cols             []colBuf
	rows             int // rows buffered
	bytes            int // value bytes buffered
	ba               []parquet.ByteArray

	stats  Stats
	err    error // sticky: the sink or the Parquet encoder failed
	closed bool
}

// NewWriter starts a segment for rows of ts on w. It writes nothing until
// the first row group is complete (or Close), so that the encodings can be
// chosen from the rows (see the package doc). ts is serialised into the
// file's metadata and must not change while the Writer is in use. It fails
// on invalid opts or when a column name is reserved ("_tw_" prefix) or
// duplicated.
func NewWriter(w io.Writer, ts *schemas.TableSchema, opts Options) (*Writer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	specs, err := layout(ts)
	if err != nil {
		return nil, err
	}
	sc, err := parquetSchema(specs)
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(ts)
	if err != nil {
		return nil, fmt.Errorf("segment: encode table schema: %w", err)
	}
	kv := metadata.NewKeyValueMetadata()
	if err := kv.Append(MetaKeyFormat, FormatVersion); err != nil {
		return nil, fmt.Errorf("segment: %w", err)
	}
	if err := kv.Append(MetaKeyTable, string(js)); err != nil {
		return nil, fmt.Errorf("segment: %w", err)
	}
	sw := &Writer{w: w, sc: sc, kv: kv, opts: opts, ts: ts, maxRows: opts.rowGroupRows(), cols: make([]colBuf, len(ts.Columns))}
	sw.unch.kind = kindText
	for i := range ts.Columns {
		c := &sw.cols[i]
		c.kind = kindOf(ts.Columns[i].TypeOID)
		if c.kind == kindText || c.kind == kindBytea {
			c.data = getData()
		}
	}
	return sw, nil
}

// start begins the Parquet file, with encodings chosen from the buffered
// rows (the first row group, or none).
func (w *Writer) start() error {
	codec, _ := w.opts.codec()
	props := []parquet.WriterProperty{
		parquet.WithCompression(codec),
		parquet.WithDictionaryDefault(true),
		parquet.WithRootRepetition(parquet.Repetitions.Required),
	}
	if w.opts.CompressionLevel != 0 {
		props = append(props, parquet.WithCompressionLevel(w.opts.CompressionLevel))
	}
	for _, name := range []string{colLSN, colSeq, colCommitTS, colXID} {
		props = append(props, deltaInts(name)...)
	}
	for i := range w.cols {
		name := w.ts.Columns[i].Name
		switch c := &w.cols[i]; c.kind {
		case kindInt16, kindInt32, kindInt64, kindOID:
			props = append(props, deltaInts(name)...)
		case kindText, kindBytea:
			if !c.dictionaryPays() {
				path := parquet.ColumnPath{name}
				props = append(props, parquet.WithDictionaryPath(path, false),
					parquet.WithEncodingPath(path, parquet.Encodings.DeltaLengthByteArray))
			}
		}
	}
	fw, err := file.NewParquetWriterWithError(nopCloser{w.w}, w.sc,
		file.WithWriterProps(parquet.NewWriterProperties(props...)), file.WithWriteMetadata(w.kv))
	if err != nil {
		return fmt.Errorf("segment: start file: %w", err)
	}
	w.fw = fw
	return nil
}

// deltaInts are the properties of an integer column: DELTA_BINARY_PACKED,
// no dictionary.
func deltaInts(name string) []parquet.WriterProperty {
	path := parquet.ColumnPath{name}
	return []parquet.WriterProperty{parquet.WithDictionaryPath(path, false),
		parquet.WithEncodingPath(path, parquet.Encodings.DeltaBinaryPacked)}
}

// nopCloser keeps the Parquet writer from closing the caller's io.Writer.
type nopCloser struct{ io.Writer }

// opBytes are the stored texts of the operations.
var opBytes = func() (t [256]parquet.ByteArray) {
	for _, op := range []schemas.Op{schemas.OpInsert, schemas.OpUpdate, schemas.OpDelete, schemas.OpTruncate, schemas.OpSchema, schemas.OpDrop} {
		t[op] = parquet.ByteArray{byte(op)}
	}
	return t
}()

// Write appends one row. len(vals) must equal the number of table columns.
// Write copies what it keeps: vals and their Data may be reused once it
// returns. A value that cannot be stored exactly (see the package doc), an
// unknown Op or Kind, or a wrong value count rejects the row with an error
// and leaves the Writer usable; an error from the sink is sticky.
func (w *Writer) Write(m Meta, vals []schemas.Value) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrClosed
	}
	if len(vals) != len(w.cols) {
		return fmt.Errorf("segment: table %s: row has %d values, the table has %d columns",
			w.ts.QualifiedName(), len(vals), len(w.cols))
	}
	if opBytes[m.Op] == nil {
		return fmt.Errorf("segment: table %s: unknown operation %q", w.ts.QualifiedName(), byte(m.Op))
	}
	unchanged, n := false, 0
	for i := range vals {
		v := &vals[i]
		c := &w.cols[i]
		switch v.Kind {
		case schemas.ValueNull:
			c.defs = append(c.defs, 0)
		case schemas.ValueUnchanged:
			c.defs = append(c.defs, 0)
			unchanged = true
		case schemas.ValueText:
			if !c.appendText(v.Data) {
				w.undo(i)
				return fmt.Errorf("segment: table %s column %q: value is not the canonical %s text PostgreSQL prints, it would not read back identically",
					w.ts.QualifiedName(), w.ts.Columns[i].Name, c.kind)
			}
			n += len(v.Data)
		default:
			w.undo(i)
			return fmt.Errorf("segment: table %s column %q: unknown value kind %q",
				w.ts.QualifiedName(), w.ts.Columns[i].Name, byte(v.Kind))
		}
	}
	if unchanged {
		w.unch.appendUnchanged(vals)
	} else {
		w.unch.defs = append(w.unch.defs, 0)
	}
	micros := m.CommitTime.UnixMicro()
	w.lsn = append(w.lsn, int64(m.LSN))
	w.seq = append(w.seq, int32(m.Seq))
	w.ops = append(w.ops, opBytes[m.Op])
	w.commit = append(w.commit, micros)
	w.xid = append(w.xid, int64(m.XID))
	w.stats.add(&m, micros)
	w.rows++
	w.bytes += n
	if w.rows >= w.maxRows || w.bytes >= maxRowGroupData {
		return w.flush()
	}
	return nil
}

// undo drops the values appended for columns [0, n) of a rejected row.
func (w *Writer) undo(n int) {
	for i := 0; i < n; i++ {
		w.cols[i].undo()
	}
}

// Stats returns the summary of the rows accepted so far; it is also valid
// after Close.
func (w *Writer) Stats() Stats { return w.stats }

// Close writes the buffered rows and the footer. It does not close the
// io.Writer given to NewWriter. Calling Close again returns the first
// result.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	if w.rows > 0 || w.fw == nil {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if err := w.fw.Close(); err != nil {
		w.err = fmt.Errorf("segment: finish file: %w", err)
		return w.err
	}
	// Written: the file references none of the buffers.
	w.fw = nil
	putData(w.unch.data)
	for i := range w.cols {
		putData(w.cols[i].data)
	}
	w.unch, w.cols = colBuf{}, nil
	return nil
}

// maxPooledData is the largest value buffer kept for another Writer.
const maxPooledData = 8 << 20

// dataBufs recycles the byte array value buffers of closed Writers: a
// Writer's buffers otherwise grow from nothing by doubling, copying each
// value about twice (a fifth of the archiver's CPU under big
// transactions).
var dataBufs sync.Pool // of *[]byte

func getData() []byte {
	if p, ok := dataBufs.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return nil
}

func putData(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooledData {
		return
	}
	b = b[:0]
	dataBufs.Put(&b)
}

// flush writes the buffered rows as one row group; it starts the file
// first when it is the first one. With no rows it only starts the file.
func (w *Writer) flush() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("segment: write row group: %v", r)
		}
		if err != nil {
			w.err = err
		}
	}()
	if w.fw == nil {
		if err := w.start(); err != nil {
			return err
		}
	}
	if w.rows == 0 {
		return nil
	}
	rg, err := w.fw.AppendRowGroupChecked()
	if err != nil {
		return fmt.Errorf("segment: start row group: %w", err)
	}
	if err := w.writeMeta(rg); err != nil {
		return err
	}
	for i := range w.cols {
		if err := w.writeColumn(rg, &w.cols[i]); err != nil {
			return fmt.Errorf("segment: write column %q: %w", w.ts.Columns[i].Name, err)
		}
	}
	if err := rg.Close(); err != nil {
		return fmt.Errorf("segment: finish row group: %w", err)
	}
	w.lsn, w.seq, w.ops, w.commit, w.xid = w.lsn[:0], w.seq[:0], w.ops[:0], w.commit[:0], w.xid[:0]
	w.unch.reset()
	for i := range w.cols {
		w.cols[i].reset()
	}
	clear(w.ba)
	w.rows, w.bytes = 0, 0
	return nil
}

func (w *Writer) writeMeta(rg file.SerialRowGroupWriter) error {
	for i := range metaSpecs {
		if i == numMetaColumns-1 {
			if err := w.writeColumn(rg, &w.unch); err != nil {
				return fmt.Errorf("segment: write column %s: %w", metaSpecs[i].name, err)
			}
			break
		}
		cw, err := rg.NextColumn()
		if err != nil {
			return fmt.Errorf("segment: start column %s: %w", metaSpecs[i].name, err)
		}
		switch i {
		case 0:
			err = writeInt64s(cw, w.lsn, nil)
		case 1:
			err = writeInt32s(cw, w.seq, nil)
		case 2:
			err = writeByteArrays(cw, w.ops, nil)
		case 3:
			err = writeInt64s(cw, w.commit, nil)
		case 4:
			err = writeInt64s(cw, w.xid, nil)
		}
		if err != nil {
			return fmt.Errorf("segment: write column %s: %w", metaSpecs[i].name, err)
		}
	}
	return nil
}

// writeColumn writes one buffered optional column as the row group's next
// column chunk.
func (w *Writer) writeColumn(rg file.SerialRowGroupWriter, c *colBuf) error {
	cw, err := rg.NextColumn()
	if err != nil {
		return err
	}
	switch c.kind {
	case kindText, kindBytea:
		w.ba = c.byteArrays(w.ba[:0])
		return writeByteArrays(cw, w.ba, c.defs)
	case kindInt16, kindInt32:
		return writeInt32s(cw, c.i32, c.defs)
	case kindInt64, kindOID:
		return writeInt64s(cw, c.i64, c.defs)
	case kindBool:
		return writeBools(cw, c.bools, c.defs)
	}
	return fmt.Errorf("unknown column kind %d", c.kind)
}

func writeInt32s(cw file.ColumnChunkWriter, v []int32, defs []int16) error {
	tw, ok := cw.(*file.Int32ColumnChunkWriter)
	if !ok {
		return fmt.Errorf("column writer is %T, want INT32", cw)
	}
	_, err := tw.WriteBatch(v, defs, nil)
	return err
}

func writeInt64s(cw file.ColumnChunkWriter, v []int64, defs []int16) error {
	tw, ok := cw.(*file.Int64ColumnChunkWriter)
	if !ok {
		return fmt.Errorf("column writer is %T, want INT64", cw)
	}
	_, err := tw.WriteBatch(v, defs, nil)
	return err
}

func writeBools(cw file.ColumnChunkWriter, v []bool, defs []int16) error {
	tw, ok := cw.(*file.BooleanColumnChunkWriter)
	if !ok {
		return fmt.Errorf("column writer is %T, want BOOLEAN", cw)
	}
	_, err := tw.WriteBatch(v, defs, nil)
	return err
}

func writeByteArrays(cw file.ColumnChunkWriter, v []parquet.ByteArray, defs []int16) error {
	tw, ok := cw.(*file.ByteArrayColumnChunkWriter)
	if !ok {
		return fmt.Errorf("column writer is %T, want BYTE_ARRAY", cw)
	}
	_, err := tw.WriteBatch(v, defs, nil)
	return err
}

// colBuf buffers one optional column of the current row group: a definition
// level per row and the non-null values, densely.
type colBuf struct {
	kind  kind
	defs  []int16
	i32   []int32
	i64   []int64
	bools []bool
	data  []byte // byte array values, concatenated
	ends  []int  // end offset in data of each byte array value
}

// appendText stores PostgreSQL text b, reporting false (and storing
// nothing) when b would not read back identically.
func (c *colBuf) appendText(b []byte) bool {
	switch c.kind {
	case kindText:
		c.data = append(c.data, b...)
		c.ends = append(c.ends, len(c.data))
	case kindBytea:
		d, ok := appendUnhexBytea(c.data, b)
		if !ok {
			return false
		}
		c.data = d
		c.ends = append(c.ends, len(c.data))
	case kindInt16, kindInt32:
		lo, hi := int64(-1<<31), int64(1<<31-1)
		if c.kind == kindInt16 {
			lo, hi = -1<<15, 1<<15-1
		}
		v, ok := parseCanonInt(b, lo, hi)
		if !ok {
			return false
		}
		c.i32 = append(c.i32, int32(v))
	case kindInt64, kindOID:
		lo, hi := int64(-1<<63), int64(1<<63-1)
		if c.kind == kindOID {
			lo, hi = 0, 1<<32-1
		}
		v, ok := parseCanonInt(b, lo, hi)
		if !ok {
			return false
		}
		c.i64 = append(c.i64, v)
	case kindBool:
		if len(b) != 1 || (b[0] != 't' && b[0] != 'f') {
			return false
		}
		c.bools = append(c.bools, b[0] == 't')
	default:
		return false
	}
	c.defs = append(c.defs, 1)
	return true
}

// appendUnchanged stores the indexes of vals' unchanged values as
// "i,j,...".
func (c *colBuf) appendUnchanged(vals []schemas.Value) {
	start := len(c.data)
	for i := range vals {
		if vals[i].Kind == schemas.ValueUnchanged {
			if len(c.data) > start {
				c.data = append(c.data, ',')
			}
			c.data = strconv.AppendInt(c.data, int64(i), 10)
		}
	}
	c.ends = append(c.ends, len(c.data))
	c.defs = append(c.defs, 1)
}

// undo removes the last row's entry.
func (c *colBuf) undo() {
	last := len(c.defs) - 1
	def := c.defs[last]
	c.defs = c.defs[:last]
	if def == 0 {
		return
	}
	switch c.kind {
	case kindText, kindBytea:
		c.ends = c.ends[:len(c.ends)-1]
		end := 0
		if len(c.ends) > 0 {
			end = c.ends[len(c.ends)-1]
		}
		c.data = c.data[:end]
	case kindInt16, kindInt32:
		c.i32 = c.i32[:len(c.i32)-1]
	case kindInt64, kindOID:
		c.i64 = c.i64[:len(c.i64)-1]
	case kindBool:
		c.bools = c.bools[:len(c.bools)-1]
	}
}

// dictionaryPays reports whether dictionary encoding is worth it for the
// buffered byte array values: when at most one in eight is distinct (an
// enum, a status, a country). Otherwise the indexes, nearly one per value,
// are bytes that zstd cannot shrink, while the values themselves, stored
// one after the other (DELTA_LENGTH_BYTE_ARRAY), compress as text does.
func (c *colBuf) dictionaryPays() bool {
	n := len(c.ends)
	limit := n / 8
	seen := make(map[uint64]struct{}, min(limit, 1024)+1)
	seed := dictSeed
	start := 0
	for _, end := range c.ends {
		seen[maphash.Bytes(seed, c.data[start:end])] = struct{}{}
		if len(seen) > limit {
			return false
		}
		start = end
	}
	return true
}

// dictSeed seeds the hashes dictionaryPays counts distinct values by.
var dictSeed = maphash.MakeSeed()

// byteArrays appends views of the buffered byte array values to dst.
func (c *colBuf) byteArrays(dst []parquet.ByteArray) []parquet.ByteArray {
	start := 0
	for _, end := range c.ends {
		dst = append(dst, parquet.ByteArray(c.data[start:end:end]))
		start = end
	}
	return dst
}

func (c *colBuf) reset() {
	c.defs, c.i32, c.i64, c.bools, c.ends = c.defs[:0], c.i32[:0], c.i64[:0], c.bools[:0], c.ends[:0]
	if cap(c.data) > 2*maxRowGroupData {
		c.data = nil // let one huge row group's buffer go
	} else {
		c.data = c.data[:0]
	}
}
