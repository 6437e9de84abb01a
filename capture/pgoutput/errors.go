package pgoutput

import (
	"errors"
	"fmt"
)

var (
	// ErrMalformed is wrapped by every error Parse returns for bytes that are
	// not a valid protocol version 1 message: truncated input, an unknown
	// message type, an unknown tuple column kind, a negative or oversized
	// length or count, or bytes left over after the message.
	ErrMalformed = errors.New("malformed pgoutput message")

	// ErrUnsupported is wrapped by the error Parse returns for a message type
	// that PostgreSQL only sends with a newer protocol version or an option
	// tenantwal does not request: streaming of in-progress transactions
	// (protocol version 2) and two-phase commit (protocol version 3).
	ErrUnsupported = errors.New("unsupported pgoutput message")
)

// ParseError describes why Parse rejected a message. It unwraps to
// ErrMalformed or ErrUnsupported.
type ParseError struct {
	// Type is the message type byte (the first byte of the message), or 0
	// when the message was empty.
	Type MessageType
	// Offset is the byte offset into the message of the field that could not
	// be decoded.
	Offset int
	// Reason says what was wrong with that field.
	Reason string

	err error // ErrMalformed or ErrUnsupported
}

func (e *ParseError) Error() string {
	kind := "malformed"
	if e.err == ErrUnsupported {
		kind = "unsupported"
	}
	return fmt.Sprintf("pgoutput: %s %s message at byte %d: %s", kind, e.Type, e.Offset, e.Reason)
}

// Unwrap returns ErrMalformed or ErrUnsupported.
func (e *ParseError) Unwrap() error { return e.err }

// IsUnsupported reports whether err says the server sent a message that
// tenantwal's replication options should have prevented, which points at a
// misconfigured connection rather than corrupt data.
func IsUnsupported(err error) bool { return errors.Is(err, ErrUnsupported) }
