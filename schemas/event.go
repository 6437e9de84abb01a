package schemas

import "time"

// Op is the kind of a change.
type Op byte

const (
	OpInsert   Op = 'I'
	OpUpdate   Op = 'U'
	OpDelete   Op = 'D'
	OpTruncate Op = 'T'
	// OpSchema marks the moment a table's version changed (DDL) for a
	// tenant that had no change of its own then: it carries no row, only
	// the table version in effect from its position on.
	OpSchema Op = 'S'
	// OpDrop marks a DROP TABLE (recorded from the event trigger): the
	// table does not exist from its position on, until a change of a new
	// generation of the same name. It carries no row; its table version is
	// the last one the table had.
	OpDrop Op = 'X'
)

func (o Op) String() string { return string(rune(o)) }

// ValueKind tells how a Value's Data is to be read.
type ValueKind byte

const (
	ValueNull      ValueKind = 'n' // SQL NULL
	ValueUnchanged ValueKind = 'u' // unchanged TOASTed value: not sent, resolve from the prior version
	ValueText      ValueKind = 't' // Data is PostgreSQL's text output of the value
)

// Value is one column value. Text values are PostgreSQL's text output under
// the pinned session settings (DateStyle ISO, IntervalStyle postgres,
// extra_float_digits 3, bytea_output hex, TimeZone UTC).
type Value struct {
	Kind ValueKind
	Data []byte
}

// Truncate flags, as in pgoutput's Truncate message.
const (
	TruncateCascade         = 1
	TruncateRestartIdentity = 2
)

// Event is one change inside a Batch. Rel indexes Batch.Tables.
// New holds the new row (insert, update) and Old the old key or old row
// (delete; update when the key changed or REPLICA IDENTITY FULL).
type Event struct {
	Seq   uint32
	Op    Op
	Rel   uint32
	Flags uint8 // truncate flags
	Old   []Value
	New   []Value
}

// ChangeEvent is one change with its full identity, as a reader of a batch
// sees it.
type ChangeEvent struct {
	Tenant     TenantID
	CommitLSN  LSN
	CommitTime time.Time
	XID        uint32
	Table      *TableSchema
	Event
}

// Pos returns the identity of the change.
func (e *ChangeEvent) Pos() Pos { return Pos{e.CommitLSN, e.Seq} }
