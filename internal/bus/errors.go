package bus

import (
	"errors"
	"fmt"
)

// ErrStreamConflict reports that the configured stream exists with subjects
// or storage other than the ones tenantwal would give it. Open never
// rewrites such a stream.
var ErrStreamConflict = errors.New("stream exists with a different configuration")

// ErrPartitionsChanged reports that the configured partition count differs
// from the one the existing stream was written with. Changing it would move
// tenants to other subjects (and archivers), so Open refuses.
var ErrPartitionsChanged = errors.New("partition count differs from the existing stream's")

// ConnectError reports that the initial connection to a NATS server with
// JetStream failed. URL has any password redacted; Err is the cause (for
// example nats.ErrNoServers, a timeout, or JetStream being disabled).
type ConnectError struct {
	URL string
	Err error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("connect to NATS at %s: %v (is nats-server running there with JetStream, -js?)", e.URL, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// IsConnectError reports whether err is (or wraps) a *ConnectError.
func IsConnectError(err error) bool {
	var ce *ConnectError
	return errors.As(err, &ce)
}

// ErrDisconnected reports that the connection to the NATS server was lost
// (see Bus.WatchDisconnect).
var ErrDisconnected = errors.New("NATS connection lost")
