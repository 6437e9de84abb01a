package natstest

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

const readyTimeout = 10 * time.Second

// Server is an in-process nats-server with JetStream, like nats-server's own
// RunBasicJetStreamServer. It shuts down in t.Cleanup.
type Server struct {
	t    testing.TB
	opts *server.Options
	srv  *server.Server
}

// RunJetStream starts an in-process JetStream server on a random 127.0.0.1
// port with a StoreDir under t.TempDir(), no logging and no signal handlers.
// configure functions may adjust the options before the server starts (a
// test of a server without JetStream sets JetStream = false).
func RunJetStream(t testing.TB, configure ...func(*server.Options)) *Server {
	t.Helper()
	opts := &server.Options{
		ServerName: "natstest",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoLog:      true,
		NoSigs:     true,
	}
	for _, f := range configure {
		f(opts)
	}
	s := &Server{t: t, opts: opts}
	s.start()
	t.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	srv, err := server.NewServer(s.opts.Clone())
	if err != nil {
		s.t.Fatalf("natstest: configure server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) || (s.opts.JetStream && !srv.JetStreamEnabled()) {
		srv.Shutdown()
		s.t.Fatalf("natstest: server (JetStream %v) not ready after %v", s.opts.JetStream, readyTimeout)
	}
	s.srv = srv
	// A restart comes back on the same port, so clients reconnect to it.
	if a, ok := srv.Addr().(*net.TCPAddr); ok {
		s.opts.Port = a.Port
	}
}

// URL is the server's client URL, e.g. "nats://127.0.0.1:34567".
func (s *Server) URL() string { return s.srv.ClientURL() }

// NATSServer returns the running server.
func (s *Server) NATSServer() *server.Server { return s.srv }

// StoreDir is the JetStream store directory; it survives Restart.
func (s *Server) StoreDir() string { return s.opts.StoreDir }

// Shutdown stops the server and waits until it is down. It is idempotent.
func (s *Server) Shutdown() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Restart shuts the server down and starts a new one on the same port and
// StoreDir: JetStream recovers its streams and consumers from disk.
func (s *Server) Restart() {
	s.t.Helper()
	s.Shutdown()
	s.start()
}

// Connect returns a client connection to the server, closed in t.Cleanup.
func (s *Server) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	return connect(t, s.URL(), opts...)
}

func connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("natstest: connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}
