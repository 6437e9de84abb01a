package bus

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

const embeddedReadyTimeout = 10 * time.Second

// startEmbedded starts an in-process nats-server with JetStream listening on
// 127.0.0.1 only, and waits until it accepts connections.
func startEmbedded(cfg *Config, logger *slog.Logger) (*server.Server, error) {
	port := cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "tenantwal-embedded",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		MaxPayload: cfg.MaxPayload,
		MaxPending: embeddedMaxPending(cfg),
		NoSigs:     true,
		SyncAlways: cfg.SyncAlways,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("configure embedded NATS server: %w", err)
	}
	sl := &serverLog{l: logger}
	s.SetLoggerV2(sl, false, false, false)
	s.Start() // returns once listeners and JetStream are set up
	if !s.ReadyForConnections(embeddedReadyTimeout) || !s.JetStreamEnabled() {
		s.Shutdown()
		return nil, fmt.Errorf("start embedded NATS server on 127.0.0.1:%d (store %s): %s",
			cfg.Port, cfg.StoreDir, sl.failure())
	}
	logger.Info("embedded NATS server started (plaintext, 127.0.0.1 only)",
		slog.String("url", s.ClientURL()), slog.String("store_dir", cfg.StoreDir))
	return s, nil
}

// serverLog routes nats-server log lines to slog: notices at debug level,
// warnings and errors at their own level. Server debug and trace output
// stays off.
type serverLog struct {
	l *slog.Logger

	mu    sync.Mutex
	fatal string // first fatal message, reported by startEmbedded
}

func (s *serverLog) failure() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fatal == "" {
		return "not ready with JetStream after " + embeddedReadyTimeout.String()
	}
	return s.fatal
}

func (s *serverLog) logf(level slog.Level, format string, v ...any) {
	if s.l.Enabled(context.Background(), level) {
		s.l.Log(context.Background(), level, fmt.Sprintf(format, v...), slog.String("component", "nats-server"))
	}
}

// PullBytes is the most bytes one archiver partition's pull asks the
// server for: 4 MiB, or a message of max_payload with its headers when that
// is more (a message bigger than the pull could never be delivered).
func PullBytes(maxPayload int) int { return max(4<<20, maxPayload+64<<10) }

// embeddedMaxPending is what the server may queue for one client before it
// drops it as a slow consumer: nats-server's 64 MiB, or room for every
// partition's pull twice over when that is more. Capture and archiver of
// `tenantwal run` share one connection; at 16 partitions and 8 MiB the
// pulls alone can ask for 129 MiB while they catch up.
func embeddedMaxPending(cfg *Config) int64 {
	return max(64<<20, 2*int64(cfg.Partitions)*int64(PullBytes(int(cfg.MaxPayload))))
}

// Noticef logs at debug level, except a slow consumer (a dropped client
// connection), which is a warning.
func (s *serverLog) Noticef(format string, v ...any) {
	level := slog.LevelDebug
	if strings.Contains(format, "Slow Consumer") {
		level = slog.LevelWarn
	}
	s.logf(level, format, v...)
}
func (s *serverLog) Warnf(format string, v ...any) { s.logf(slog.LevelWarn, format, v...) }
func (s *serverLog) Fatalf(format string, v ...any) {
	s.mu.Lock()
	if s.fatal == "" {
		s.fatal = fmt.Sprintf(format, v...)
	}
	s.mu.Unlock()
	s.logf(slog.LevelError, format, v...)
}
func (s *serverLog) Errorf(format string, v ...any) { s.logf(slog.LevelError, format, v...) }
func (s *serverLog) Debugf(format string, v ...any) { s.logf(slog.LevelDebug, format, v...) }
func (s *serverLog) Tracef(format string, v ...any) { s.logf(slog.LevelDebug-4, format, v...) }
