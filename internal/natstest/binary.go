package natstest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

const (
	serverModule = "github.com/nats-io/nats-server/v2"
	binaryEnv    = "TENANTWAL_NATS_SERVER"
)

var binary struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of a nats-server executable: $TENANTWAL_NATS_SERVER,
// else the cached build of the version pinned in go.mod, building it first
// if needed. The lookup runs once per test binary.
func Binary() (string, error) {
	binary.once.Do(func() { binary.path, binary.err = findBinary() })
	return binary.path, binary.err
}

func findBinary() (string, error) {
	if p := os.Getenv(binaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: %w", binaryEnv, err)
		}
		return p, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find nats-server: %w; set %s", err, binaryEnv)
	}
	dir := filepath.Join(cache, "tenantwal", "bin")
	path := filepath.Join(dir, "nats-server")
	version, err := pinnedVersion()
	if err != nil {
		return "", err
	}
	if binaryVersion(path) == version {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build nats-server: %w", err)
	}
	// Serialise builds across test binaries running in parallel.
	lock, err := os.OpenFile(filepath.Join(dir, ".nats-server.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("build nats-server: %w", err)
	}
	defer lock.Close()
	if err := lockFile(lock); err != nil {
		return "", fmt.Errorf("build nats-server: lock: %w", err)
	}
	defer unlockFile(lock)
	if binaryVersion(path) == version {
		return path, nil // built by another test binary meanwhile
	}
	if err := build(path, version); err != nil {
		return "", err
	}
	return path, nil
}

// pinnedVersion is the nats-server module version this test binary was
// built with, which is the one go.mod pins.
func pinnedVersion() (string, error) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == serverModule {
				if m.Replace != nil {
					m = m.Replace
				}
				return m.Version, nil
			}
		}
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", serverModule).Output()
	if err != nil {
		return "", fmt.Errorf("find pinned %s version: %w; set %s", serverModule, err, binaryEnv)
	}
	return strings.TrimSpace(string(out)), nil
}

// binaryVersion returns "v2.x.y" as printed by path --version, or "".
func binaryVersion(path string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return ""
	}
	_, v, _ := strings.Cut(strings.TrimSpace(string(out)), "nats-server: ")
	return v
}

func build(path, version string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	defer os.Remove(tmp)
	cmd := exec.Command("go", "build", "-o", tmp, serverModule)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build nats-server %s in %s: %w: %s; or set %s to a nats-server binary",
			version, root, err, strings.TrimSpace(stderr.String()), binaryEnv)
	}
	if got := binaryVersion(tmp); got != version {
		return fmt.Errorf("built nats-server reports version %q, want %q", got, version)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("build nats-server: %w", err)
	}
	return nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("build nats-server: not inside the tenantwal module; set %s", binaryEnv)
	}
	return filepath.Dir(gomod), nil
}
