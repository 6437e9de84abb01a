package pgoutput

import (
	"fmt"
	"time"

	"github.com/tenantwal/tenantwal/schemas"
)

// MessageType is the first byte of a logical replication message.
type MessageType byte

// The message types of protocol version 1.
const (
	MessageTypeBegin    MessageType = 'B'
	MessageTypeCommit   MessageType = 'C'
	MessageTypeOrigin   MessageType = 'O'
	MessageTypeRelation MessageType = 'R'
	MessageTypeType     MessageType = 'Y'
	MessageTypeInsert   MessageType = 'I'
	MessageTypeUpdate   MessageType = 'U'
	MessageTypeDelete   MessageType = 'D'
	MessageTypeTruncate MessageType = 'T'
	MessageTypeMessage  MessageType = 'M'
)

var typeNames = [256]string{
	'B': "Begin", 'C': "Commit", 'O': "Origin", 'R': "Relation", 'Y': "Type",
	'I': "Insert", 'U': "Update", 'D': "Delete", 'T': "Truncate", 'M': "Message",
	// Not decoded; named for error messages.
	'S': "StreamStart", 'E': "StreamStop", 'c': "StreamCommit", 'A': "StreamAbort",
	'b': "BeginPrepare", 'P': "Prepare", 'K': "CommitPrepared", 'r': "RollbackPrepared",
	'p': "StreamPrepare",
}

// String returns the protocol's name for t ("Insert"), or its byte value.
func (t MessageType) String() string {
	if s := typeNames[t]; s != "" {
		return s
	}
	return fmt.Sprintf("MessageType(%q)", byte(t))
}

// Message is one decoded logical replication message: a *Begin, *Commit,
// *Origin, *Relation, *TypeMsg, *Insert, *Update, *Delete, *Truncate or
// *LogicalMessage.
type Message interface {
	Type() MessageType
}

// Begin starts a transaction. The changes that follow, up to the matching
// Commit, belong to it.
type Begin struct {
	FinalLSN   schemas.LSN // LSN of the transaction's commit record
	CommitTime time.Time   // UTC
	XID        uint32
}

// Commit ends the transaction the last Begin started.
type Commit struct {
	Flags      uint8 // unused; 0
	CommitLSN  schemas.LSN
	EndLSN     schemas.LSN // end of the commit record: the position to confirm once durable
	CommitTime time.Time   // UTC
}

// Origin names the replication origin a transaction was replayed from. It
// follows Begin, and only when the transaction came from another node.
type Origin struct {
	CommitLSN schemas.LSN // commit LSN on the origin server
	Name      string
}

// Relation describes a table. The server sends it before the first change
// to the table in a session and again after its definition changes; Insert,
// Update, Delete and Truncate refer to it by RelID, and their tuples have
// one column for each of Columns, in order.
type Relation struct {
	RelID           uint32
	Namespace       string // schema; empty for pg_catalog
	Name            string
	ReplicaIdentity uint8 // pg_class.relreplident: 'd' default, 'n' nothing, 'f' full, 'i' index
	Columns         []RelationColumn
}

// RelationColumn is one column of a Relation. Generated columns are not sent.
type RelationColumn struct {
	Flags   uint8 // 1 = part of the replica identity key
	Name    string
	TypeOID uint32
	TypeMod int32 // pg_attribute.atttypmod; -1 when the type has none
}

// IsKey reports whether the column is part of the replica identity key.
func (c *RelationColumn) IsKey() bool { return c.Flags&1 != 0 }

// KeyColumns returns the indexes, into Columns and into the columns of every
// tuple of the relation, of the replica identity key columns. The result is
// a new slice; it is empty for REPLICA IDENTITY NOTHING and for FULL without
// a key.
func (r *Relation) KeyColumns() []int {
	var keys []int
	for i := range r.Columns {
		if r.Columns[i].IsKey() {
			keys = append(keys, i)
		}
	}
	return keys
}

// TypeMsg describes a data type that is not built in, before the first
// Relation that uses it.
type TypeMsg struct {
	TypeID    uint32
	Namespace string // empty for pg_catalog
	Name      string
}

// Insert is one inserted row.
type Insert struct {
	RelID uint32
	New   Tuple
}

// The values of Update.OldKind and Delete.OldKind.
const (
	OldKey  = 'K' // Old holds the replica identity key columns only; the others are null
	OldFull = 'O' // Old holds the whole old row (REPLICA IDENTITY FULL)
)

// Update is one updated row. The old row is sent only when the replica
// identity key changed (OldKind 'K') or the table has REPLICA IDENTITY FULL
// (OldKind 'O'); otherwise OldKind is 0 and Old.Columns is nil, and the key
// is in New.
type Update struct {
	RelID   uint32
	OldKind byte // OldKey, OldFull or 0
	Old     Tuple
	New     Tuple
}

// Delete is one deleted row, identified by its replica identity key (OldKind
// 'K') or, for REPLICA IDENTITY FULL, by the whole old row (OldKind 'O').
type Delete struct {
	RelID   uint32
	OldKind byte // OldKey or OldFull
	Old     Tuple
}

// Truncate options.
const (
	TruncateCascade         = 1
	TruncateRestartIdentity = 2
)

// Truncate is one TRUNCATE of one or more tables.
type Truncate struct {
	Options uint8 // TruncateCascade | TruncateRestartIdentity
	RelIDs  []uint32
}

// LogicalMessage is a message written with pg_logical_emit_message. It
// arrives only when the messages option is on.
type LogicalMessage struct {
	Flags   uint8 // 1 = transactional: inside Begin/Commit
	LSN     schemas.LSN
	Prefix  string
	Content []byte // aliases the input of Parse; see the package doc
}

// Transactional reports whether the message was emitted as part of a
// transaction, as opposed to immediately.
func (m *LogicalMessage) Transactional() bool { return m.Flags&1 != 0 }

func (*Begin) Type() MessageType          { return MessageTypeBegin }
func (*Commit) Type() MessageType         { return MessageTypeCommit }
func (*Origin) Type() MessageType         { return MessageTypeOrigin }
func (*Relation) Type() MessageType       { return MessageTypeRelation }
func (*TypeMsg) Type() MessageType        { return MessageTypeType }
func (*Insert) Type() MessageType         { return MessageTypeInsert }
func (*Update) Type() MessageType         { return MessageTypeUpdate }
func (*Delete) Type() MessageType         { return MessageTypeDelete }
func (*Truncate) Type() MessageType       { return MessageTypeTruncate }
func (*LogicalMessage) Type() MessageType { return MessageTypeMessage }

// Parse decodes one protocol version 1 message: the payload of one XLogData
// message. The returned message's tuple data and content alias data: they
// are valid while data is unchanged, so copy them to retain them past the
// reuse of the buffer. Parse returns a *ParseError wrapping ErrMalformed or
// ErrUnsupported for anything but exactly one well-formed message.
func Parse(data []byte) (Message, error) {
	if len(data) == 0 {
		return nil, &ParseError{Reason: "empty message", err: ErrMalformed}
	}
	d := decoder{typ: MessageType(data[0]), data: data, off: 1}
	var m Message
	switch d.typ {
	case MessageTypeBegin:
		m = d.begin()
	case MessageTypeCommit:
		m = d.commit()
	case MessageTypeOrigin:
		m = d.origin()
	case MessageTypeRelation:
		m = d.relation()
	case MessageTypeType:
		m = d.typeMsg()
	case MessageTypeInsert:
		m = d.insert()
	case MessageTypeUpdate:
		m = d.update()
	case MessageTypeDelete:
		m = d.delete()
	case MessageTypeTruncate:
		m = d.truncate()
	case MessageTypeMessage:
		m = d.message()
	case 'S', 'E', 'c', 'A':
		return nil, &ParseError{Type: d.typ, Reason: "streaming messages need protocol version 2, which tenantwal does not request", err: ErrUnsupported}
	case 'b', 'P', 'K', 'r', 'p':
		return nil, &ParseError{Type: d.typ, Reason: "two-phase commit messages need protocol version 3 and the two_phase option, which tenantwal does not request", err: ErrUnsupported}
	default:
		return nil, &ParseError{Type: d.typ, Reason: "unknown message type", err: ErrMalformed}
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return m, nil
}

func (d *decoder) begin() *Begin {
	return &Begin{
		FinalLSN:   d.lsn("final LSN"),
		CommitTime: d.time("commit timestamp"),
		XID:        d.uint32("xid"),
	}
}

func (d *decoder) commit() *Commit {
	return &Commit{
		Flags:      d.uint8("flags"),
		CommitLSN:  d.lsn("commit LSN"),
		EndLSN:     d.lsn("end LSN"),
		CommitTime: d.time("commit timestamp"),
	}
}

func (d *decoder) origin() *Origin {
	return &Origin{
		CommitLSN: d.lsn("commit LSN"),
		Name:      d.string("origin name"),
	}
}

// minRelationColumn is the smallest encoding of a relation column: flags, an
// empty name's NUL, type OID and type modifier.
const minRelationColumn = 1 + 1 + 4 + 4

func (d *decoder) relation() *Relation {
	r := &Relation{
		RelID:           d.uint32("relation ID"),
		Namespace:       d.string("namespace"),
		Name:            d.string("relation name"),
		ReplicaIdentity: d.uint8("replica identity"),
	}
	at := d.off
	n := d.uint16("column count")
	if !d.fits(uint64(n), minRelationColumn, at, "column count") {
		return r
	}
	r.Columns = make([]RelationColumn, n)
	for i := range r.Columns {
		c := &r.Columns[i]
		c.Flags = d.uint8("column flags")
		c.Name = d.string("column name")
		c.TypeOID = d.uint32("column type OID")
		c.TypeMod = int32(d.uint32("column type modifier"))
	}
	return r
}

func (d *decoder) typeMsg() *TypeMsg {
	return &TypeMsg{
		TypeID:    d.uint32("type ID"),
		Namespace: d.string("namespace"),
		Name:      d.string("type name"),
	}
}

func (d *decoder) truncate() *Truncate {
	t := &Truncate{}
	at := d.off
	n := int32(d.uint32("relation count"))
	t.Options = d.uint8("options")
	if d.err != nil {
		return t
	}
	if n < 0 {
		d.fail(at, "negative relation count %d", n)
		return t
	}
	if !d.fits(uint64(n), 4, at, "relation count") {
		return t
	}
	t.RelIDs = make([]uint32, n)
	for i := range t.RelIDs {
		t.RelIDs[i] = d.uint32("relation ID")
	}
	return t
}

func (d *decoder) message() *LogicalMessage {
	m := &LogicalMessage{
		Flags:  d.uint8("flags"),
		LSN:    d.lsn("LSN"),
		Prefix: d.string("prefix"),
	}
	n := d.length("content length")
	m.Content = d.bytes(n, "content")
	return m
}
