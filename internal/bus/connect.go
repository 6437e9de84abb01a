package bus

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

const (
	connectTimeout    = 5 * time.Second
	reconnectMinDelay = 100 * time.Millisecond
	reconnectMaxDelay = 5 * time.Second
)

// connect dials the server once, failing fast (no retry on the initial
// connect, at most connectTimeout or ctx's deadline). Once connected, the
// client reconnects forever with capped exponential backoff. onClosed runs
// when the connection is finally closed.
func connect(ctx context.Context, cfg *Config, embedded *server.Server, logger *slog.Logger, onClosed func()) (*nats.Conn, error) {
	timeout := connectTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.Timeout(timeout),
		nats.RetryOnFailedConnect(false),
		nats.MaxReconnects(-1),
		// Publishes while disconnected fail instead of waiting in a buffer
		// to be sent after the reconnect: they could land in the stream
		// behind messages the restarted server lost (see Bus.WatchDisconnect).
		nats.ReconnectBufSize(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err == nil || nc.IsClosed() {
				return // a deliberate close
			}
			logger.Warn("NATS disconnected", slog.String("url", redactURL(nc.ConnectedUrl())), slog.Any("error", err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("NATS reconnected", slog.String("url", redactURL(nc.ConnectedUrl())))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			attrs := []any{slog.Any("error", err)}
			if sub != nil {
				attrs = append(attrs, slog.String("subject", sub.Subject))
			}
			logger.Error("NATS async error", attrs...)
		}),
		nats.ClosedHandler(func(*nats.Conn) { onClosed() }),
	}
	if cfg.Credentials != "" {
		opts = append(opts, nats.UserCredentials(cfg.Credentials))
	}
	target := cfg.URL
	if embedded != nil {
		target = embedded.ClientURL()
		opts = append(opts, nats.InProcessServer(embedded))
	}
	nc, err := nats.Connect(target, opts...)
	if err != nil {
		return nil, &ConnectError{URL: redactURL(target), Err: err}
	}
	return nc, nil
}

// reconnectDelay is 100ms doubling per attempt up to 5s, with ±20% jitter.
func reconnectDelay(attempts int) time.Duration {
	d := reconnectMaxDelay
	if attempts < 6 {
		d = min(reconnectMinDelay<<attempts, reconnectMaxDelay)
	}
	return d - d/5 + rand.N(2*d/5+1)
}

// redactURL hides passwords and tokens in a (comma-separated) server URL list.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		if _, hasPass := u.User.Password(); hasPass {
			parts[i] = u.Redacted()
		} else {
			parts[i] = u.Scheme + "://xxxxx@" + u.Host // a bare token
		}
	}
	return strings.Join(parts, ",")
}
