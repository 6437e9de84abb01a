package pgrepl

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/tenantwal/tenantwal/schemas"
)

// The first byte of the CopyData messages of the replication sub-protocol.
const (
	XLogDataByteID            = 'w' // server: WAL data
	PrimaryKeepaliveByteID    = 'k' // server: keepalive
	StandbyStatusUpdateByteID = 'r' // client: standby status update
)

// Message sizes after the ID byte.
const (
	xlogDataHeaderLen   = 24 // WALStart, ServerWALEnd, ServerTime
	primaryKeepaliveLen = 17 // ServerWALEnd, ServerTime, ReplyRequested
	standbyStatusLen    = 33 // Write, Flush, Apply, ClientTime, ReplyRequested
)

// XLogData is a chunk of WAL data; on a logical replication connection,
// one message of the output plugin.
type XLogData struct {
	WALStart     schemas.LSN // position of the start of Data
	ServerWALEnd schemas.LSN // current end of WAL on the server
	ServerTime   time.Time   // server's clock at transmission, UTC
	Data         []byte      // aliases the input of ParseXLogData
}

// ParseXLogData parses an XLogData message: b is the CopyData payload after
// the 'w' byte. Data aliases b: copy it to retain it past the reuse of b.
// A message shorter than its header is an error wrapping ErrMalformed.
func ParseXLogData(b []byte) (XLogData, error) {
	if len(b) < xlogDataHeaderLen {
		return XLogData{}, fmt.Errorf("%w: XLogData is %d bytes, want at least %d", ErrMalformed, len(b), xlogDataHeaderLen)
	}
	return XLogData{
		WALStart:     schemas.LSN(binary.BigEndian.Uint64(b[0:])),
		ServerWALEnd: schemas.LSN(binary.BigEndian.Uint64(b[8:])),
		ServerTime:   pgTime(int64(binary.BigEndian.Uint64(b[16:]))),
		Data:         b[xlogDataHeaderLen:],
	}, nil
}

// PrimaryKeepalive is the server's keepalive.
type PrimaryKeepalive struct {
	ServerWALEnd   schemas.LSN // current end of WAL on the server
	ServerTime     time.Time   // server's clock at transmission, UTC
	ReplyRequested bool        // answer with a standby status update now, or be disconnected on wal_sender_timeout
}

// ParsePrimaryKeepalive parses a Primary keepalive message: b is the
// CopyData payload after the 'k' byte. Bytes past the known fields are
// ignored, for fields later protocol versions may add; fewer is an error
// wrapping ErrMalformed.
func ParsePrimaryKeepalive(b []byte) (PrimaryKeepalive, error) {
	if len(b) < primaryKeepaliveLen {
		return PrimaryKeepalive{}, fmt.Errorf("%w: primary keepalive is %d bytes, want %d", ErrMalformed, len(b), primaryKeepaliveLen)
	}
	return PrimaryKeepalive{
		ServerWALEnd:   schemas.LSN(binary.BigEndian.Uint64(b[0:])),
		ServerTime:     pgTime(int64(binary.BigEndian.Uint64(b[8:]))),
		ReplyRequested: b[16] != 0,
	}, nil
}

// StandbyStatus is a standby status update: the client's progress.
type StandbyStatus struct {
	Write schemas.LSN // last WAL byte + 1 received and written
	// Flush is the last WAL byte + 1 durably processed: on a logical slot,
	// the server advances confirmed_flush_lsn to it and may recycle WAL
	// before it. Never report a position before it is durable.
	Flush          schemas.LSN
	Apply          schemas.LSN // last WAL byte + 1 applied
	ClientTime     time.Time   // client's clock; zero means time.Now()
	ReplyRequested bool        // ask the server for an immediate keepalive
}

// appendStandbyStatus appends the CopyData payload of a standby status
// update, starting with its 'r' byte, to dst.
func appendStandbyStatus(dst []byte, s StandbyStatus) []byte {
	t := s.ClientTime
	if t.IsZero() {
		t = time.Now()
	}
	dst = append(dst, StandbyStatusUpdateByteID)
	dst = binary.BigEndian.AppendUint64(dst, uint64(s.Write))
	dst = binary.BigEndian.AppendUint64(dst, uint64(s.Flush))
	dst = binary.BigEndian.AppendUint64(dst, uint64(s.Apply))
	dst = binary.BigEndian.AppendUint64(dst, uint64(pgMicros(t)))
	reply := byte(0)
	if s.ReplyRequested {
		reply = 1
	}
	return append(dst, reply)
}

// pgEpochUnix is 2000-01-01 00:00:00 UTC, PostgreSQL's epoch, in Unix seconds.
const pgEpochUnix = 946684800

// pgTime converts microseconds since the PostgreSQL epoch to a UTC time.
// It does not overflow: any int64 is within time.Time's range.
func pgTime(us int64) time.Time {
	sec, frac := us/1e6, us%1e6
	if frac < 0 {
		sec, frac = sec-1, frac+1e6
	}
	return time.Unix(pgEpochUnix+sec, frac*1e3).UTC()
}

// pgMicros converts t to microseconds since the PostgreSQL epoch, truncated
// to the microsecond and saturated at the int64 range.
func pgMicros(t time.Time) int64 {
	const (
		us             = 1_000_000
		maxSec, maxFrc = math.MaxInt64/us + pgEpochUnix, math.MaxInt64 % us
		minSec, minFrc = math.MinInt64/us - 1 + pgEpochUnix, math.MinInt64%us + us
	)
	u, frac := t.Unix(), int64(t.Nanosecond()/1000)
	switch {
	case u > maxSec || u == maxSec && frac > maxFrc:
		return math.MaxInt64
	case u < minSec || u == minSec && frac < minFrc:
		return math.MinInt64
	}
	sec := u - pgEpochUnix
	if sec < 0 {
		return (sec+1)*us + frac - us // sec*us alone may overflow
	}
	return sec*us + frac
}
