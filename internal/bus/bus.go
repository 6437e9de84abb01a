package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantwal/tenantwal/schemas"
)

// Bus is an open connection to the tenantwal stream, and the embedded
// server behind it when Config.URL was empty. Its methods are safe for
// concurrent use.
type Bus struct {
	cfg      Config
	logger   *slog.Logger
	embedded *server.Server // nil for an external server
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   jetstream.Stream

	closed    chan struct{} // closed by the connection's ClosedHandler
	closeOnce sync.Once
	closeErr  error
}

// Open validates cfg, starts the embedded server when cfg.URL is empty,
// connects, and creates the stream or updates the limits of an existing one
// (see the package documentation). An unreachable server, or one without
// JetStream, fails within about 5 seconds with a *ConnectError naming the URL
// and the fix. An existing stream with other subjects or storage fails with
// ErrStreamConflict, one with another partition count with
// ErrPartitionsChanged. ctx bounds only the opening; a nil logger discards
// logs.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Bus, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Bus{cfg: cfg, logger: logger, closed: make(chan struct{})}
	if cfg.URL == "" {
		s, err := startEmbedded(&b.cfg, logger)
		if err != nil {
			return nil, err
		}
		b.embedded = s
	}
	if err := b.open(ctx); err != nil {
		if b.nc != nil {
			b.nc.Close()
		}
		if b.embedded != nil {
			b.embedded.Shutdown()
			b.embedded.WaitForShutdown()
		}
		return nil, err
	}
	return b, nil
}

func (b *Bus) open(ctx context.Context) error {
	var once sync.Once
	nc, err := connect(ctx, &b.cfg, b.embedded, b.logger, func() { once.Do(func() { close(b.closed) }) })
	if err != nil {
		return err
	}
	b.nc = nc
	if b.js, err = jetstream.New(nc); err != nil {
		return fmt.Errorf("jetstream client: %w", err)
	}
	actx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if _, err := b.js.AccountInfo(actx); err != nil {
		return &ConnectError{URL: redactURL(nc.ConnectedUrl()), Err: fmt.Errorf("JetStream unavailable: %w", err)}
	}
	b.stream, err = ensureStream(ctx, b.js, &b.cfg, b.logger)
	return err
}

// WatchDisconnect blocks until the connection to the server is lost, then
// returns an error wrapping ErrDisconnected; it returns nil when ctx ends
// first. The client reconnects by itself, but a publisher must not simply
// carry on: a JetStream server acknowledges a message before it is on disk
// (and syncs it only every 2 minutes by default), so a server killed or
// crashed, or a stream block truncated, can come back without messages it
// acknowledged, and the stream's sequence rolls back over them. Capture
// therefore treats a lost connection like a failed publish and resumes
// from the replication slot, which is confirmed only up to what the
// archivers have made durable in the object store: lost messages are
// published again (JetStream's de-duplication and the archiver's position
// check drop the ones that survived), and nothing it published after the
// loss can come before them in the stream, so no marker, and no watermark,
// covers a hole.
func (b *Bus) WatchDisconnect(ctx context.Context) error {
	ch := b.nc.StatusChanged(nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	defer b.nc.RemoveStatusListener(ch)
	if !b.nc.IsConnected() {
		return fmt.Errorf("%w (status %v): resume from a safe position", ErrDisconnected, b.nc.Status())
	}
	select {
	case <-ctx.Done():
		return nil
	case st := <-ch:
		return fmt.Errorf("%w (%v): the server may have lost messages it acknowledged; resume from a safe position", ErrDisconnected, st)
	}
}

// Conn returns the NATS connection. Do not close it; use Bus.Close.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream returns the JetStream client on Conn.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Stream returns the tenantwal stream. Its CachedInfo is from Open; call
// Info for current state.
func (b *Bus) Stream() jetstream.Stream { return b.stream }

// MaxPayload is the largest message (headers plus data) the connected
// server accepts.
func (b *Bus) MaxPayload() int { return int(b.nc.MaxPayload()) }

// ClientURL is a URL other processes can use to reach the server: the
// embedded server's address, or Config.URL as given.
func (b *Bus) ClientURL() string {
	if b.embedded != nil {
		return b.embedded.ClientURL()
	}
	return b.cfg.URL
}

// Config returns the effective configuration (defaults filled in).
func (b *Bus) Config() Config { return b.cfg }

// Partitions is the number of partition subjects.
func (b *Bus) Partitions() int { return b.cfg.Partitions }

// Subject is partition p's subject, e.g. "tw.p0007".
func (b *Bus) Subject(p int) string { return schemas.Subject(b.cfg.SubjectPrefix, p) }

// Close drains the connection (pending publishes and in-flight acks are
// flushed, subscriptions finish their pending messages) and then shuts the
// embedded server down, both bounded by ctx. When ctx ends first the
// connection is closed hard and ctx's error returned; the embedded server
// keeps shutting down in the background. Close is idempotent.
func (b *Bus) Close(ctx context.Context) error {
	b.closeOnce.Do(func() { b.closeErr = b.close(ctx) })
	return b.closeErr
}

func (b *Bus) close(ctx context.Context) error {
	var errs []error
	if err := b.nc.Drain(); err != nil {
		b.nc.Close() // e.g. reconnecting: nothing can be flushed
		if !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrConnectionReconnecting) {
			errs = append(errs, fmt.Errorf("drain NATS connection: %w", err))
		}
	}
	select {
	case <-b.closed:
	case <-ctx.Done():
		b.nc.Close()
		errs = append(errs, fmt.Errorf("drain NATS connection: %w", ctx.Err()))
	}
	if b.embedded != nil {
		done := make(chan struct{})
		go func() {
			b.embedded.Shutdown()
			b.embedded.WaitForShutdown()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("shut down embedded NATS server: %w", ctx.Err()))
		}
	}
	return errors.Join(errs...)
}

// DropClients closes the embedded server's client connections, as the
// server does to a slow consumer: the clients see EOF and reconnect. It
// returns how many it closed. For fault tests; an error for an external
// server.
func (b *Bus) DropClients() (int, error) {
	if b.embedded == nil {
		return 0, errors.New("drop clients: not an embedded server")
	}
	cz, err := b.embedded.Connz(&server.ConnzOptions{})
	if err != nil {
		return 0, err
	}
	for i, c := range cz.Conns {
		if err := b.embedded.DisconnectClientByID(c.Cid); err != nil {
			return i, err
		}
	}
	return len(cz.Conns), nil
}
