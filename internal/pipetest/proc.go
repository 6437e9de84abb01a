package pipetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const mainPackage = "github.com/tenantwal/tenantwal/cmd/tenantwal"

var built struct {
	once sync.Once
	path string
	err  error
}

// Binary returns a tenantwal executable built from the module under test,
// once per test binary, into ${XDG_CACHE_HOME:-~/.cache}/tenantwal/bin as
// tenantwal-pipetest-<hash of the module directory> (replaced atomically
// by each build, so runs from other checkouts do not share it; a build
// with a warm cache takes about 10 s).
func Binary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() { built.path, built.err = build() })
	if built.err != nil {
		t.Fatalf("pipetest: %v", built.err)
	}
	return built.path
}

func build() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("build tenantwal: the working directory is not inside the tenantwal module")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("build tenantwal: %w", err)
	}
	dir := filepath.Join(cache, "tenantwal", "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build tenantwal: %w", err)
	}
	root := filepath.Dir(gomod)
	sum := sha256.Sum256([]byte(root))
	path := filepath.Join(dir, "tenantwal-pipetest-"+hex.EncodeToString(sum[:6]))
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	defer os.Remove(tmp)
	cmd := exec.Command("go", "build", "-o", tmp, "./cmd/tenantwal")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s in %s: %w: %s", mainPackage, cmd.Dir, err, strings.TrimSpace(stderr.String()))
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("build tenantwal: %w", err)
	}
	return path, nil
}

// Proc is a tenantwal subcommand running as a child process.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // set before done closes
}

// start runs exe args with extra environment, its output to log.
func start(t testing.TB, exe, log, name string, env []string, args ...string) *Proc {
	t.Helper()
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "=== %s: tenantwal %s (env %v)\n", time.Now().UTC().Format(time.RFC3339Nano), strings.Join(args, " "), env)
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start tenantwal %s: %v", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("tenantwal %s log (%s) ends:\n%s", name, log, tail(p.Log(), 6000))
		}
	})
	return p
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Log returns what the process (and earlier ones of the same name) wrote.
func (p *Proc) Log() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// Running reports whether the process has not exited.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the exit.
func (p *Proc) Kill() {
	if p.Running() {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// Stop sends SIGTERM (a clean shutdown) and waits up to 30 s for the exit,
// which must be successful.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	if !p.Running() {
		t.Fatalf("tenantwal %s had exited before Stop: %v\n%s", p.Name, p.err, tail(p.Log(), 4000))
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.Kill()
		t.Fatalf("tenantwal %s ignored SIGTERM for 30s", p.Name)
	}
	if p.err != nil {
		t.Fatalf("tenantwal %s stopped with %v\n%s", p.Name, p.err, tail(p.Log(), 4000))
	}
}

// WaitKilled waits until the process dies by SIGKILL (a failpoint firing),
// failing t if it exits otherwise or is still running after timeout.
func (p *Proc) WaitKilled(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("tenantwal %s still running after %s: its failpoint did not fire\n%s", p.Name, timeout, tail(p.Log(), 4000))
	case <-t.Context().Done():
		t.Fatal(t.Context().Err())
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("tenantwal %s exited with %v, not by SIGKILL\n%s", p.Name, p.err, tail(p.Log(), 4000))
	}
}

// Exited returns an error naming the process and its log's tail once it has
// exited, nil while it runs.
func (p *Proc) Exited() error {
	if p.Running() {
		return nil
	}
	return fmt.Errorf("tenantwal %s exited (%v); its log ends:\n%s", p.Name, p.err, tail(p.Log(), 4000))
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
