package natstest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	procReadyTimeout = 30 * time.Second
	procStopTimeout  = 30 * time.Second
)

// ProcOpts configures StartProcess. The zero value is ready to use.
type ProcOpts struct {
	// StoreDir is the JetStream store directory; default a t.TempDir().
	StoreDir string
	// Monitor also serves HTTP monitoring on a free port (MonitorURL).
	Monitor bool
	// Args are extra nats-server command-line arguments.
	Args []string
}

// Proc is a nats-server running as a child process, so that a test can
// SIGKILL it and restart it on the same port and store. It is killed in
// t.Cleanup; its log is printed there if the test failed.
type Proc struct {
	t       testing.TB
	bin     string
	opts    ProcOpts
	workDir string // log and ports files

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	port    int           // -1 until the first start resolved it
	monPort int
}

// StartProcess starts nats-server -js on 127.0.0.1 with a StoreDir under
// t.TempDir() and waits until JetStream answers. It fails the test if the
// binary cannot be found or built (see Binary) or the server does not come
// up within 30 s. The server is killed in t.Cleanup.
func StartProcess(t testing.TB) *Proc {
	t.Helper()
	return StartProcessWith(t, ProcOpts{})
}

// StartProcessWith is StartProcess with options.
func StartProcessWith(t testing.TB, opts ProcOpts) *Proc {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	if opts.StoreDir == "" {
		opts.StoreDir = t.TempDir()
	}
	p := &Proc{t: t, bin: bin, opts: opts, workDir: t.TempDir(), port: -1, monPort: -1}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("natstest: nats-server log:\n%s", p.Log())
		}
	})
	p.start(t)
	return p
}

// URL is the client URL, e.g. "nats://127.0.0.1:34567"; it stays the same
// across restarts.
func (p *Proc) URL() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "nats://127.0.0.1:" + strconv.Itoa(p.port)
}

// MonitorURL is the HTTP monitoring URL, or "" without ProcOpts.Monitor.
func (p *Proc) MonitorURL() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.opts.Monitor {
		return ""
	}
	return "http://127.0.0.1:" + strconv.Itoa(p.monPort)
}

// StoreDir is the JetStream store directory.
func (p *Proc) StoreDir() string { return p.opts.StoreDir }

// Pid is the process id of the running server, or 0 when it is not running.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Log returns everything the server logged so far, across restarts.
func (p *Proc) Log() string {
	b, err := os.ReadFile(p.logPath())
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// Kill sends SIGKILL and waits for the process to exit. It is a no-op when
// the server is not running; it may be called from any goroutine.
func (p *Proc) Kill() { p.signal(syscall.SIGKILL) }

// Stop sends SIGTERM (nats-server shuts down cleanly) and waits for exit,
// falling back to SIGKILL after 30 s.
func (p *Proc) Stop() { p.signal(syscall.SIGTERM) }

// Restart stops the server (SIGTERM) if it is still running, then starts it
// again on the same port and StoreDir and waits until JetStream answers,
// failing t otherwise. After Kill it restarts a server whose store was not
// shut down cleanly, like after a crash.
func (p *Proc) Restart(t testing.TB) {
	t.Helper()
	p.Stop()
	p.start(t)
}

func (p *Proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig) // fails only if it already exited
	select {
	case <-exited:
	case <-time.After(procStopTimeout):
		p.t.Errorf("natstest: nats-server pid %d ignored %v for %v; killing it", cmd.Process.Pid, sig, procStopTimeout)
		_ = cmd.Process.Kill()
		<-exited
	}
}

func (p *Proc) logPath() string { return filepath.Join(p.workDir, "nats-server.log") }

func (p *Proc) start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	port, monPort := p.port, p.monPort
	p.mu.Unlock()
	args := []string{"-js", "-sd", p.opts.StoreDir, "-a", "127.0.0.1", "-p", strconv.Itoa(port),
		"-n", "natstest", "--ports_file_dir", p.workDir}
	if p.opts.Monitor {
		args = append(args, "-m", strconv.Itoa(monPort))
	}
	args = append(args, p.opts.Args...)
	logf, err := os.OpenFile(p.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	defer logf.Close()
	cmd := exec.Command(p.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("natstest: start %s: %v", p.bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	if err := p.waitReady(cmd.Process.Pid, exited); err != nil {
		p.Kill()
		t.Fatalf("natstest: nats-server %v: %v\nlog:\n%s", args, err, p.Log())
	}
}

// waitReady reads the ports file of process pid, then waits until a client
// can reach JetStream on that port.
func (p *Proc) waitReady(pid int, exited <-chan struct{}) error {
	deadline := time.Now().Add(procReadyTimeout)
	portsFile := filepath.Join(p.workDir, fmt.Sprintf("%s_%d.ports", filepath.Base(p.bin), pid))
	var ports struct {
		Nats       []string `json:"nats"`
		Monitoring []string `json:"monitoring"`
	}
	var lastErr error
	for ; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			return fmt.Errorf("exited during startup")
		default:
		}
		if lastErr = readPorts(portsFile, &ports); lastErr != nil {
			continue
		}
		if lastErr = p.setPorts(ports.Nats, ports.Monitoring); lastErr != nil {
			return lastErr
		}
		if lastErr = pingJetStream(p.URL()); lastErr == nil {
			return nil
		}
	}
	return fmt.Errorf("not ready after %v: %w", procReadyTimeout, lastErr)
}

func readPorts(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v) // fails while the file is half written
}

func (p *Proc) setPorts(natsURLs, monURLs []string) error {
	port, err := urlPort(natsURLs)
	if err != nil {
		return fmt.Errorf("client port: %w", err)
	}
	monPort := -1
	if p.opts.Monitor {
		if monPort, err = urlPort(monURLs); err != nil {
			return fmt.Errorf("monitor port: %w", err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.port, p.monPort = port, monPort
	return nil
}

func urlPort(urls []string) (int, error) {
	if len(urls) == 0 {
		return 0, fmt.Errorf("none in ports file")
	}
	u, err := url.Parse(urls[0])
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(u.Port())
}

func pingJetStream(url string) error {
	nc, err := nats.Connect(url, nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}
