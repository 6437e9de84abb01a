// Package pgserver runs a throwaway PostgreSQL cluster as a child process:
// initdb into a directory, postgres on 127.0.0.1 with wal_level=logical, and
// fast, immediate or killed shutdowns. The tenantwal demo command and the
// test harness internal/pgtest use it. It never touches a server it did not
// start.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Timeouts of the server's life cycle.
const (
	readyTimeout = 30 * time.Second // Start and Restart: until connections are accepted
	stopTimeout  = 30 * time.Second // Stop and Shutdown: fast shutdown before SIGKILL
)

// Names inside the server directory.
const (
	dataDirName  = "data"
	logFileName  = "postgres.log"
	confFileName = "tenantwal.conf" // in the data directory, included from postgresql.conf
)

// ErrNotRunning is returned by Shutdown and StopImmediate when the
// postmaster is not running.
var ErrNotRunning = errors.New("postgres is not running")

// Options configures Start. The zero value is a throwaway server in a new
// temporary directory on a free port.
type Options struct {
	// BinDir holds the postgres and initdb binaries. Default: FindBinDir().
	BinDir string
	// Dir is the server directory: it holds the data directory "data", the
	// log file "postgres.log" and the Unix socket. If Dir/data already holds
	// a cluster, Start reuses it instead of running initdb. Default: a new
	// directory from os.MkdirTemp, removed by Stop. When running as root,
	// Start hands Dir to the postgres user.
	Dir string
	// Port is the TCP port on 127.0.0.1. Default (0): a free port, kept
	// across Restart.
	Port int
	// Settings are extra postgresql.conf settings, such as "fsync": "off".
	// They are applied after, and so override, the settings Start makes:
	// listen_addresses, port, unix_socket_directories, wal_level=logical,
	// max_replication_slots=32 and max_wal_senders=32.
	Settings map[string]string
	// Logger receives life cycle events. Default: discard.
	Logger *slog.Logger
}

// Validate reports whether the options are usable.
func (o *Options) Validate() error {
	if o.Port < 0 || o.Port > 65535 {
		return fmt.Errorf("pgserver: port %d out of range", o.Port)
	}
	for k, v := range o.Settings {
		if k == "" || strings.ContainsAny(k, "=#'\n\r \t") {
			return fmt.Errorf("pgserver: invalid setting name %q", k)
		}
		if strings.ContainsAny(v, "\n\r") {
			return fmt.Errorf("pgserver: setting %s: value contains a line break", k)
		}
	}
	return nil
}

// Server is a PostgreSQL cluster run as a child process. Its methods are
// safe for concurrent use.
type Server struct {
	binDir  string
	dir     string
	ownsDir bool // dir came from os.MkdirTemp; Stop removes it
	port    int
	cred    *syscall.Credential // non-nil when running as root
	log     *slog.Logger

	mu   sync.Mutex
	proc *process // nil when not running
}

// process is one run of the postmaster.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait returns
	err  error         // cmd.Wait's result, set before done is closed
}

// Start initialises a cluster (unless Options.Dir already holds one), starts
// postgres on it and waits, bounded by ctx and 30 seconds, until it accepts
// connections. On failure it stops what it started, removes a temporary
// directory it created, and returns an error that includes the tail of the
// server log. The error wraps ErrNoBinaries when the binaries are missing.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Server{binDir: opts.BinDir, dir: opts.Dir, port: opts.Port, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.binDir == "" {
		dir, err := FindBinDir()
		if err != nil {
			return nil, err
		}
		s.binDir = dir
	} else if err := checkBinDir(s.binDir); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNoBinaries, s.binDir, err)
	}
	if err := s.prepare(ctx, opts.Settings); err != nil {
		s.removeOwnDir()
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		err := s.launch(ctx)
		if err == nil {
			return s, nil
		}
		// Another process may take a free port before postgres binds it.
		if opts.Port != 0 || attempt == portAttempts || !errors.Is(err, errPortInUse) {
			s.removeOwnDir()
			return nil, err
		}
		s.log.Debug("port taken; trying another", slog.Int("port", s.port))
		if s.port, err = freePort(); err == nil {
			err = s.writeConf(opts.Settings)
		}
		if err != nil {
			s.removeOwnDir()
			return nil, err
		}
	}
}

// portAttempts is how many free ports Start tries when Options.Port is 0.
const portAttempts = 3

// errPortInUse marks a start that failed because the port was taken.
var errPortInUse = errors.New("port in use")

// prepare creates the directory, runs initdb if needed and writes the
// configuration.
func (s *Server) prepare(ctx context.Context, settings map[string]string) error {
	if s.dir == "" {
		dir, err := os.MkdirTemp("", "tenantwal-pg-")
		if err != nil {
			return fmt.Errorf("create server directory: %w", err)
		}
		s.dir, s.ownsDir = dir, true
	} else if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("create server directory: %w", err)
	}
	if abs, err := filepath.Abs(s.dir); err == nil {
		s.dir = abs
	}
	if os.Geteuid() == 0 {
		cred, err := postgresCredential()
		if err != nil {
			return err
		}
		s.cred = cred
		if err := os.Chown(s.dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("hand %s to the postgres user: %w", s.dir, err)
		}
	}
	if s.port == 0 {
		port, err := freePort()
		if err != nil {
			return err
		}
		s.port = port
	}
	if _, err := os.Stat(filepath.Join(s.DataDir(), "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := s.initdb(ctx); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("inspect data directory: %w", err)
	}
	return s.writeConf(settings)
}

// postgresCredential returns the identity to run the binaries as when we
// are root: initdb and postgres refuse to run as root.
func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a postgres user to run the server as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse uid of the postgres user: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse gid of the postgres user: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// freePort asks the kernel for a free TCP port on 127.0.0.1. Another
// process may take it before postgres binds it; Start then fails.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}

// setup makes cmd run in the server directory, in its own process group,
// and as the postgres user when we are root. It uses the credential
// directly rather than runuser, whose supervisor process would turn our
// SIGINT and SIGQUIT into SIGTERM and hide the postmaster's pid.
func (s *Server) setup(cmd *exec.Cmd) *exec.Cmd {
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cred}
	return cmd
}

func (s *Server) initdb(ctx context.Context) error {
	cmd := s.setup(exec.CommandContext(ctx, filepath.Join(s.binDir, "initdb"), "--no-sync",
		"-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "-D", s.DataDir()))
	// initdb runs postgres in bootstrap and single-user mode: on
	// cancellation kill the whole group, not just initdb.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb %s: %w\n%s", s.DataDir(), err, tail(out, 20))
	}
	s.log.Debug("initdb done", slog.String("dir", s.DataDir()))
	return nil
}

// writeConf writes our settings to tenantwal.conf and makes sure
// postgresql.conf includes it, last.
func (s *Server) writeConf(settings map[string]string) error {
	var b strings.Builder
	b.WriteString("# Written by tenantwal pgserver on every start; edits are lost.\n")
	set := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, quoteConf(v)) }
	set("listen_addresses", "127.0.0.1")
	set("port", strconv.Itoa(s.port))
	set("unix_socket_directories", s.dir)
	set("wal_level", "logical")
	set("max_replication_slots", "32")
	set("max_wal_senders", "32")
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		set(k, settings[k])
	}
	conf := filepath.Join(s.DataDir(), confFileName)
	if err := os.WriteFile(conf, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", conf, err)
	}
	if s.cred != nil {
		if err := os.Chown(conf, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("hand %s to the postgres user: %w", conf, err)
		}
	}
	main := filepath.Join(s.DataDir(), "postgresql.conf")
	old, err := os.ReadFile(main)
	if err != nil {
		return fmt.Errorf("read postgresql.conf: %w", err)
	}
	include := "include '" + confFileName + "'\n"
	if strings.Contains(string(old), include) {
		return nil
	}
	f, err := os.OpenFile(main, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open postgresql.conf: %w", err)
	}
	if _, err := f.WriteString("\n" + include); err != nil {
		f.Close()
		return fmt.Errorf("append to postgresql.conf: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("append to postgresql.conf: %w", err)
	}
	return nil
}

// quoteConf quotes a postgresql.conf value; every value may be quoted.
func quoteConf(v string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", "''") + "'"
}

// launch starts the postmaster and waits until it accepts connections.
func (s *Server) launch(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		select {
		case <-s.proc.done: // it died on its own
			s.log.Warn("postgres had exited", slog.Int("port", s.port), slog.String("err", fmt.Sprint(s.proc.err)))
			s.proc = nil
		default:
			return errors.New("pgserver: postgres is already running")
		}
	}
	logf, err := os.OpenFile(s.LogPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("open server log: %w", err)
	}
	var logStart int64 // this run's part of the log
	if fi, err := logf.Stat(); err == nil {
		logStart = fi.Size()
	}
	// Not CommandContext: the server outlives ctx.
	cmd := s.setup(exec.Command(filepath.Join(s.binDir, "postgres"), "-D", s.DataDir()))
	setDeathSignal(cmd.SysProcAttr)
	cmd.Stdout, cmd.Stderr = logf, logf
	err = cmd.Start()
	logf.Close() // the child holds its own descriptor
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := s.waitReady(ctx, p); err != nil {
		p.kill()
		logText := s.logTail(logStart)
		if strings.Contains(logText, "could not bind IPv4 address") {
			err = fmt.Errorf("%w: %w", errPortInUse, err)
		}
		return fmt.Errorf("start postgres on 127.0.0.1:%d: %w\n%s", s.port, err, logText)
	}
	s.proc = p
	s.log.Info("postgres started", slog.Int("port", s.port), slog.Int("pid", cmd.Process.Pid), slog.String("dir", s.dir))
	return nil
}

// waitReady polls until the server accepts a connection, the postmaster
// exits, ctx is done or readyTimeout passes.
func (s *Server) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		conn, err := s.tryConnect(ctx, p)
		if err == nil {
			return conn.Close(ctx)
		}
		lastErr = err
		select {
		case <-p.done:
			return fmt.Errorf("postgres exited: %w", p.err)
		case <-ctx.Done():
			return fmt.Errorf("not accepting connections: %w (last attempt: %w)", ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

// tryConnect makes one connection attempt, abandoned after 2 seconds or
// when the postmaster exits.
func (s *Server) tryConnect(ctx context.Context, p *process) (*pgconn.PgConn, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return pgconn.Connect(ctx, s.DSN("postgres"))
}

// stop sends sig to the postmaster and waits up to timeout for it to exit;
// then it kills the process group. The postmaster waits for its children
// before it exits, so a clean exit leaves nothing behind.
func (p *process) stop(sig syscall.Signal, timeout time.Duration) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal postgres: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		p.kill()
		return fmt.Errorf("postgres did not stop within %s after %v; killed it", timeout, sig)
	}
}

// kill SIGKILLs the postmaster's process group and waits for the
// postmaster to be reaped. Until then its pid, and so the group id, cannot
// be reused.
func (p *process) kill() {
	select {
	case <-p.done:
		return // reaped: the pid may belong to another process by now
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) // the group may be gone already
	<-p.done
}

// Port returns the TCP port the server listens on, on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// DSN returns a URL connecting as the superuser postgres to database db
// over TCP, without TLS.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, url.PathEscape(db))
}

// Pid returns the postmaster's process id, or 0 after Stop, Shutdown or
// StopImmediate.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Dir returns the server directory: it holds the data directory, the log
// file and the Unix socket.
func (s *Server) Dir() string { return s.dir }

// DataDir returns the cluster's data directory.
func (s *Server) DataDir() string { return filepath.Join(s.dir, dataDirName) }

// LogPath returns the path of the server log, which collects postgres's
// stdout and stderr across restarts.
func (s *Server) LogPath() string { return filepath.Join(s.dir, logFileName) }

// Stop shuts the server down fast (SIGINT: active transactions are rolled
// back, then a checkpoint), killing it after 30 seconds, and removes the
// server directory if Start created it. Stop is idempotent; after it the
// Server must not be restarted if the directory was removed.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.proc != nil {
		err = s.proc.stop(syscall.SIGINT, stopTimeout)
		s.proc = nil
		s.log.Info("postgres stopped", slog.Int("port", s.port))
	}
	if s.ownsDir {
		if rerr := os.RemoveAll(s.dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove server directory: %w", rerr))
		} else {
			s.ownsDir = false
		}
	}
	return err
}

// Shutdown shuts the server down fast, like Stop, but keeps the server
// directory so that Restart can start it again. It returns ErrNotRunning
// if the server is not running.
func (s *Server) Shutdown() error {
	return s.halt(syscall.SIGINT, "fast")
}

// StopImmediate shuts the server down immediately (SIGQUIT: no checkpoint;
// the next start runs crash recovery), for fault tests. It keeps the server
// directory, so Restart can start it again. It returns ErrNotRunning if the
// server is not running.
func (s *Server) StopImmediate() error {
	return s.halt(syscall.SIGQUIT, "immediate")
}

func (s *Server) halt(sig syscall.Signal, mode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return ErrNotRunning
	}
	err := s.proc.stop(sig, stopTimeout)
	s.proc = nil
	s.log.Info("postgres stopped", slog.Int("port", s.port), slog.String("mode", mode))
	return err
}

// Restart starts the server again on the same data directory and port
// after Shutdown or StopImmediate (or after the postmaster died), and waits
// like Start until it accepts connections. It fails if the server is
// running or its directory was removed by Stop.
func (s *Server) Restart(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(s.DataDir(), "PG_VERSION")); err != nil {
		return fmt.Errorf("restart postgres: data directory: %w", err)
	}
	return s.launch(ctx)
}

// logTail returns the last lines of the server log from offset from on, for
// error messages.
func (s *Server) logTail(from int64) string {
	f, err := os.Open(s.LogPath())
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	defer f.Close()
	const window = 8 << 10
	if fi, err := f.Stat(); err == nil {
		_, _ = f.Seek(max(from, fi.Size()-window), io.SeekStart) // best effort: read from the start otherwise
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(read server log: %v)", err)
	}
	return "server log " + s.LogPath() + ":\n" + tail(b, 20)
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// removeOwnDir removes the directory if Start created it.
func (s *Server) removeOwnDir() {
	if s.ownsDir {
		_ = os.RemoveAll(s.dir) // best effort on a failed start
		s.ownsDir = false
	}
}
