package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// mainPackage is the import path of the tenantwal command.
const mainPackage = "github.com/tenantwal/tenantwal/cmd/tenantwal"

// executable returns a tenantwal binary for child processes and how it was
// found: Options.Executable; this process when it is tenantwal (`tenantwal
// bench`, also under `go run`); else one built with `go build` from the
// module root, which `go env GOMOD` finds from the working directory (any
// directory of the module, as under `go test`).
func (r *runner) executable(ctx context.Context) (path, how string, err error) {
	if r.opts.Executable != "" {
		return r.opts.Executable, "Options.Executable", nil
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Path == mainPackage {
		if exe, err := os.Executable(); err == nil {
			return exe, "this process's binary", nil
		}
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", "", fmt.Errorf("find the tenantwal module to build the binary (go env GOMOD): %w; pass Options.Executable or run `tenantwal bench`", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull || !isTenantwalModule(gomod) {
		return "", "", fmt.Errorf("the working directory is not in the tenantwal module (go env GOMOD: %q): run from the repository, pass Options.Executable, or run `tenantwal bench`", gomod)
	}
	path = filepath.Join(r.dir, "bin", "tenantwal")
	build := exec.CommandContext(ctx, "go", "build", "-o", path, "./cmd/tenantwal")
	build.Dir = filepath.Dir(gomod)
	if out, err := build.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build ./cmd/tenantwal in %s: %w\n%s", build.Dir, err, tailString(string(out), 2000))
	}
	return path, "go build ./cmd/tenantwal", nil
}

// isTenantwalModule reports whether the go.mod at path declares the
// tenantwal module.
func isTenantwalModule(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return strings.TrimSpace(string(line)) == "module github.com/tenantwal/tenantwal"
}

// child is a tenantwal subcommand running as a process of its own, so
// that its memory is its own.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string // its stderr
	done chan struct{}
	err  error // set before done closes
}

// startChild runs exe with args, stderr (and stdout) to dir/<name>.log.
func startChild(exe, dir, name string, args ...string) (*child, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start tenantwal %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	return c, nil
}

// exited returns an error naming the child and the tail of its log once
// it has exited, nil while it runs.
func (c *child) exited() error {
	select {
	case <-c.done:
		b, _ := os.ReadFile(c.log)
		return fmt.Errorf("tenantwal %s exited (%v); its log ends:\n%s", c.name, c.err, tailString(string(b), 2000))
	default:
		return nil
	}
}

// stop sends SIGTERM (tenantwal's clean shutdown) and waits up to 30s,
// then kills it. An exit caused by the signal is not an error.
func (c *child) stop() error {
	if c == nil {
		return nil
	}
	select {
	case <-c.done:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("tenantwal %s did not stop within 30s of SIGTERM; killed", c.name)
	}
}

// memory is a child's resident set from /proc/<pid>/status: VmRSS now and
// VmHWM, the peak since it started.
type memory struct {
	RSS, HWM int64 // bytes
}

func (c *child) memory() (memory, error) {
	return procMemory(c.cmd.Process.Pid)
}

func procMemory(pid int) (memory, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return memory{}, fmt.Errorf("read peak RSS: %w (needs Linux /proc)", err)
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return m, fmt.Errorf("parse /proc/%d/status %s %q: %w", pid, k, v, err)
		}
		if k == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if m.HWM == 0 {
		return m, errors.New("no VmHWM in /proc/" + strconv.Itoa(pid) + "/status")
	}
	return m, nil
}

// poll calls cond every interval until it holds, ctx ends or timeout
// passes; it fails early when a child has exited.
func poll(ctx context.Context, timeout, interval time.Duration, what string, children []*child, cond func() (bool, error)) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		for _, c := range children {
			if err := c.exited(); err != nil {
				return fmt.Errorf("waiting for %s: %w", what, err)
			}
		}
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}
