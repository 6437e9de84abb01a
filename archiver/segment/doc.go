// Package segment reads and writes tenantwal segment files: one Parquet file
// holding one table's rows for one tenant, in the order they were written.
//
// # Layout (format "1")
//
// The file's key-value metadata holds "tenantwal.format" = "1" and
// "tenantwal.table" = the JSON of the [schemas.TableSchema] the rows follow.
//
// Six meta columns come first:
//
//	_tw_lsn        INT64  UINT_64          required  commit LSN of the transaction
//	_tw_seq        INT32  UINT_32          required  ordinal of the change in its transaction
//	_tw_op         BYTE_ARRAY STRING       required  "I", "U", "D", "T" (truncate), "S" (schema marker) or "X" (drop)
//	_tw_commit_ts  INT64  TIMESTAMP(µs, UTC) required
//	_tw_xid        INT64                   required
//	_tw_unchanged  BYTE_ARRAY STRING       optional  indexes of the unchanged-TOAST values
//
// _tw_unchanged lists, as ascending comma-separated decimal indexes into
// TableSchema.Columns (e.g. "2,5"), the values of the row whose Kind is
// [schemas.ValueUnchanged]; it is null when there are none. Those values are
// stored as nulls in their own columns.
//
// Then comes one optional column per table column, named like the source
// column (a source name starting with "_tw_" is refused). The physical type is
// chosen from the column's TypeOID and is typed only where the text round trip
// is exact:
//
//	int2, int4   INT32 (INT_16 / INT_32)
//	int8, oid    INT64
//	bool         BOOLEAN            ("t" / "f")
//	bytea        BYTE_ARRAY         raw bytes; read back as "\x" + lowercase hex
//	anything else BYTE_ARRAY STRING PostgreSQL's text output, byte for byte
//
// A value that would not read back as the identical text (for example "007"
// in an int4 column, or uppercase hex in a bytea column) makes
// [Writer.Write] fail with an error naming the column; PostgreSQL's own output
// under the pinned session settings never does that.
//
// # Encodings
//
// The encodings are not part of the layout: any Parquet reader decodes them,
// and files of format "1" written with other encodings (before this writer
// chose them per column, every column but booleans was dictionary-encoded)
// read the same. The writer picks them from the first row group it writes:
//
//	integer columns (_tw_lsn, _tw_seq, _tw_commit_ts, _tw_xid, int2, int4,
//	int8, oid)      DELTA_BINARY_PACKED: constant or increasing runs (a
//	                snapshot's positions, serial keys) take almost no space
//	byte array columns (text, bytea)
//	                a dictionary when at most one value in eight is
//	                distinct, else DELTA_LENGTH_BYTE_ARRAY (the values one
//	                after the other, which zstd compresses as text; the
//	                dictionary's indexes would cost about two bytes a row)
//	_tw_op, _tw_unchanged, booleans
//	                the defaults (dictionary; booleans PLAIN)
//
// # Memory and speed
//
// The writer buffers only the current row group, columnar, and hands it to
// Parquet's typed column writers when it reaches [Options.RowGroupRows] rows
// or about 128 MiB of value bytes. The reader decodes a row group in batches
// of rows with the typed column readers. Neither allocates per row in the
// steady state.
package segment
