package pgoutput_test

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/tenantwal/tenantwal/capture/pgoutput"
)

// encode writes m in the byte layout of "Logical Replication Message
// Formats" (PostgreSQL 15), protocol version 1. It is the test oracle for
// Parse: written from the documentation, not from the decoder.
func encode(m pgoutput.Message) []byte {
	var e encoder
	e.u8(byte(m.Type()))
	switch m := m.(type) {
	case *pgoutput.Begin:
		e.u64(uint64(m.FinalLSN))
		e.ts(m.CommitTime)
		e.u32(m.XID)
	case *pgoutput.Commit:
		e.u8(m.Flags)
		e.u64(uint64(m.CommitLSN))
		e.u64(uint64(m.EndLSN))
		e.ts(m.CommitTime)
	case *pgoutput.Origin:
		e.u64(uint64(m.CommitLSN))
		e.str(m.Name)
	case *pgoutput.Relation:
		e.u32(m.RelID)
		e.str(m.Namespace)
		e.str(m.Name)
		e.u8(m.ReplicaIdentity)
		e.u16(uint16(len(m.Columns)))
		for _, c := range m.Columns {
			e.u8(c.Flags)
			e.str(c.Name)
			e.u32(c.TypeOID)
			e.u32(uint32(c.TypeMod))
		}
	case *pgoutput.TypeMsg:
		e.u32(m.TypeID)
		e.str(m.Namespace)
		e.str(m.Name)
	case *pgoutput.Insert:
		e.u32(m.RelID)
		e.u8('N')
		e.tuple(m.New)
	case *pgoutput.Update:
		e.u32(m.RelID)
		if m.OldKind != 0 {
			e.u8(m.OldKind)
			e.tuple(m.Old)
		}
		e.u8('N')
		e.tuple(m.New)
	case *pgoutput.Delete:
		e.u32(m.RelID)
		e.u8(m.OldKind)
		e.tuple(m.Old)
	case *pgoutput.Truncate:
		e.u32(uint32(len(m.RelIDs)))
		e.u8(m.Options)
		for _, id := range m.RelIDs {
			e.u32(id)
		}
	case *pgoutput.LogicalMessage:
		e.u8(m.Flags)
		e.u64(uint64(m.LSN))
		e.str(m.Prefix)
		e.u32(uint32(len(m.Content)))
		e.b = append(e.b, m.Content...)
	default:
		panic(fmt.Sprintf("encode: unknown message %T", m))
	}
	return e.b
}

type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }

// str writes a String: the bytes followed by a NUL.
func (e *encoder) str(s string) { e.b = append(append(e.b, s...), 0) }

// ts writes a TimestampTz: microseconds since 2000-01-01 00:00:00 UTC. The
// arithmetic wraps for times near the ends of the int64 range and the wraps
// cancel, so every time Parse can return encodes back to its micros.
func (e *encoder) ts(t time.Time) {
	const pgEpochUnix = 946684800
	e.u64(uint64((t.Unix()-pgEpochUnix)*1e6 + int64(t.Nanosecond()/1e3)))
}

func (e *encoder) tuple(t pgoutput.Tuple) {
	e.u16(uint16(len(t.Columns)))
	for _, c := range t.Columns {
		e.u8(c.Kind)
		if c.Kind == pgoutput.ColumnText || c.Kind == pgoutput.ColumnBinary {
			e.u32(uint32(len(c.Data)))
			e.b = append(e.b, c.Data...)
		}
	}
}
