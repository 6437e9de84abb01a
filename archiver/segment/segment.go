package segment

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/tenantwal/tenantwal/schemas"
)

// Key-value metadata keys and the format version written by this package.
const (
	MetaKeyFormat = "tenantwal.format"
	MetaKeyTable  = "tenantwal.table"
	FormatVersion = "1"
)

// Meta column names. Source columns may not use the "_tw_" prefix.
const (
	reservedPrefix  = "_tw_"
	colLSN          = "_tw_lsn"
	colSeq          = "_tw_seq"
	colOp           = "_tw_op"
	colCommitTS     = "_tw_commit_ts"
	colXID          = "_tw_xid"
	colUnchanged    = "_tw_unchanged"
	numMetaColumns  = 6
	defaultRGRows   = 64 * 1024
	maxRowGroupData = 128 << 20 // flush a row group early past this many buffered value bytes
)

// Meta is the identity of one stored row: the change's position, its
// operation and its transaction.
type Meta struct {
	LSN        schemas.LSN // commit LSN of the transaction
	Seq        uint32      // ordinal of the change inside the transaction
	Op         schemas.Op  // 'I', 'U', 'D' or 'T'
	CommitTime time.Time   // stored with microsecond precision, read back in UTC
	XID        uint32
}

// Options tunes a Writer. The zero value is valid.
type Options struct {
	// Compression is "zstd" (default when empty), "snappy" or "none".
	Compression string
	// CompressionLevel is zstd's level, 1 to 22; 0 is the codec's default
	// (3). arrow-go's zstd (klauspost/compress) has four speeds: 1-2, 3-5,
	// 6-9 and 10 or more. Other codecs take only 0.
	CompressionLevel int
	// RowGroupRows is the number of rows per row group (default 65536). A row
	// group is also cut early when its buffered values pass about 128 MiB.
	RowGroupRows int
}

// Validate reports an unknown compression or a negative row group size.
func (o Options) Validate() error {
	if _, err := o.codec(); err != nil {
		return err
	}
	if c, _ := o.codec(); o.CompressionLevel != 0 && (c != compress.Codecs.Zstd || o.CompressionLevel < 1 || o.CompressionLevel > 22) {
		return fmt.Errorf("segment options: compression level %d: zstd takes 1 to 22, other codecs only 0", o.CompressionLevel)
	}
	if o.RowGroupRows < 0 {
		return fmt.Errorf("segment options: RowGroupRows %d is negative", o.RowGroupRows)
	}
	return nil
}

func (o Options) codec() (compress.Compression, error) {
	switch o.Compression {
	case "", "zstd":
		return compress.Codecs.Zstd, nil
	case "snappy":
		return compress.Codecs.Snappy, nil
	case "none":
		return compress.Codecs.Uncompressed, nil
	}
	return 0, fmt.Errorf("segment options: unknown compression %q (want zstd, snappy or none)", o.Compression)
}

func (o Options) rowGroupRows() int {
	if o.RowGroupRows > 0 {
		return o.RowGroupRows
	}
	return defaultRGRows
}

// Stats summarises the rows written so far. First and Last are the smallest
// and largest positions, MinTime and MaxTime the extreme commit times (UTC,
// microsecond precision); all are zero when no row was written.
type Stats struct {
	Rows        int64
	First, Last schemas.Pos
	MinTime     time.Time
	MaxTime     time.Time
}

func (s *Stats) add(m *Meta, micros int64) {
	p := schemas.Pos{LSN: m.LSN, Seq: m.Seq}
	t := time.UnixMicro(micros).UTC()
	if s.Rows == 0 {
		s.First, s.Last, s.MinTime, s.MaxTime = p, p, t, t
	} else {
		if p.Less(s.First) {
			s.First = p
		}
		if s.Last.Less(p) {
			s.Last = p
		}
		if t.Before(s.MinTime) {
			s.MinTime = t
		}
		if t.After(s.MaxTime) {
			s.MaxTime = t
		}
	}
	s.Rows++
}

// kind is how one table column is stored.
type kind uint8

const (
	kindText  kind = iota // BYTE_ARRAY STRING, the text as is
	kindBytea             // BYTE_ARRAY, decoded hex
	kindInt16             // INT32 INT_16
	kindInt32             // INT32 INT_32
	kindInt64             // INT64
	kindOID               // INT64, 0..2^32-1
	kindBool              // BOOLEAN
)

// Built-in PostgreSQL type OIDs (pg_type.dat) with typed storage.
const (
	oidBool  = 16
	oidBytea = 17
	oidInt8  = 20
	oidInt2  = 21
	oidInt4  = 23
	oidOID   = 26
)

func kindOf(typeOID uint32) kind {
	switch typeOID {
	case oidBool:
		return kindBool
	case oidBytea:
		return kindBytea
	case oidInt8:
		return kindInt64
	case oidInt2:
		return kindInt16
	case oidInt4:
		return kindInt32
	case oidOID:
		return kindOID
	}
	return kindText
}

func (k kind) String() string {
	return [...]string{"text", "bytea", "int2", "int4", "int8", "oid", "bool"}[k]
}

// colSpec is one Parquet column of the layout.
type colSpec struct {
	name     string
	phys     parquet.Type
	logical  schema.LogicalType // nil = none
	optional bool
}

var metaSpecs = [numMetaColumns]colSpec{
	{colLSN, parquet.Types.Int64, schema.NewIntLogicalType(64, false), false},
	{colSeq, parquet.Types.Int32, schema.NewIntLogicalType(32, false), false},
	{colOp, parquet.Types.ByteArray, schema.StringLogicalType{}, false},
	{colCommitTS, parquet.Types.Int64, schema.NewTimestampLogicalType(true, schema.TimeUnitMicros), false},
	{colXID, parquet.Types.Int64, nil, false},
	{colUnchanged, parquet.Types.ByteArray, schema.StringLogicalType{}, true},
}

func dataSpec(c *schemas.Column) colSpec {
	s := colSpec{name: c.Name, optional: true}
	switch kindOf(c.TypeOID) {
	case kindText:
		s.phys, s.logical = parquet.Types.ByteArray, schema.StringLogicalType{}
	case kindBytea:
		s.phys = parquet.Types.ByteArray
	case kindInt16:
		s.phys, s.logical = parquet.Types.Int32, schema.NewIntLogicalType(16, true)
	case kindInt32:
		s.phys, s.logical = parquet.Types.Int32, schema.NewIntLogicalType(32, true)
	case kindInt64, kindOID:
		s.phys = parquet.Types.Int64
	case kindBool:
		s.phys = parquet.Types.Boolean
	}
	return s
}

// layout returns the Parquet columns for ts, or an error when a column name
// clashes with the meta columns or another column.
func layout(ts *schemas.TableSchema) ([]colSpec, error) {
	if ts == nil {
		return nil, errors.New("segment: nil table schema")
	}
	specs := make([]colSpec, 0, numMetaColumns+len(ts.Columns))
	specs = append(specs, metaSpecs[:]...)
	seen := make(map[string]bool, len(ts.Columns))
	for i := range ts.Columns {
		c := &ts.Columns[i]
		if strings.HasPrefix(c.Name, reservedPrefix) {
			return nil, fmt.Errorf("segment: table %s column %q: names starting with %q are reserved for tenantwal's meta columns",
				ts.QualifiedName(), c.Name, reservedPrefix)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("segment: table %s has two columns named %q", ts.QualifiedName(), c.Name)
		}
		seen[c.Name] = true
		specs = append(specs, dataSpec(c))
	}
	return specs, nil
}

// parquetSchema builds the file's root group from the layout.
func parquetSchema(specs []colSpec) (*schema.GroupNode, error) {
	fields := make(schema.FieldList, len(specs))
	for i, s := range specs {
		rep := parquet.Repetitions.Required
		if s.optional {
			rep = parquet.Repetitions.Optional
		}
		n, err := schema.NewPrimitiveNodeLogical(s.name, rep, s.logical, s.phys, -1, -1)
		if err != nil {
			return nil, fmt.Errorf("segment: column %q: %w", s.name, err)
		}
		fields[i] = n
	}
	g, err := schema.NewGroupNode("schema", parquet.Repetitions.Required, fields, -1)
	if err != nil {
		return nil, fmt.Errorf("segment: build schema: %w", err)
	}
	return g, nil
}
