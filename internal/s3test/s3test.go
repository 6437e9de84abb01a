// Package s3test runs a real S3-compatible server for tests: versitygw
// (github.com/versity/versitygw, v1.8.0) with its posix backend, on a free
// 127.0.0.1 port with a temp data dir. Never a mock.
//
// The server starts lazily, once per test binary, at the first Start or
// Bucket call, and needs no TestMain: on Linux it runs with a parent-death
// signal (SIGKILL), so it dies with the test binary; its data dir is
// removed by the next test binary that starts a server (stale dirs whose
// owner process is gone). Elsewhere the server is left to exit with the
// process group.
//
// Bucket gives each test a fresh bucket (emptied and deleted in
// t.Cleanup), so tests can use any keys and run in parallel.
//
// The binary is $TENANTWAL_VERSITYGW, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/tenantwal/bin/versitygw, as built by
// scripts/install-test-deps.sh. A missing binary fails the test (never a
// skip) with a message naming that script.
package s3test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Credentials of the test server's root account.
const (
	AccessKey = "tenantwal-test"
	SecretKey = "tenantwal-test-secret"
)

// Region is the region to sign requests for.
const Region = "us-east-1"

// startTimeout bounds the wait for the server to answer.
const startTimeout = 30 * time.Second

// dirPattern names the server's temp dirs, so stale ones can be found.
const dirPattern = "tenantwal-versitygw-*"

var (
	once           sync.Once
	serverEndpoint string
	startErr       error
	buckets        atomic.Int64
)

// Start returns the endpoint (http://127.0.0.1:PORT) and the credentials
// of the test binary's S3 server, starting it on first use. Use
// path-style addressing.
func Start(t testing.TB) (endpoint, accessKey, secretKey string) {
	t.Helper()
	once.Do(func() { serverEndpoint, startErr = start() })
	if startErr != nil {
		t.Fatalf("s3test: %v", startErr)
	}
	return serverEndpoint, AccessKey, SecretKey
}

// Bucket creates a fresh, empty bucket on the test server for t and
// returns its name; t.Cleanup empties and deletes it.
func Bucket(t testing.TB) string {
	t.Helper()
	ep, _, _ := Start(t)
	name := bucketName(t.Name(), buckets.Add(1))
	client := newClient(ep)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("s3test: create bucket %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := removeBucket(ctx, client, name); err != nil {
			t.Errorf("s3test: remove bucket %s: %v", name, err)
		}
	})
	return name
}

var notBucketChars = regexp.MustCompile(`[^a-z0-9]+`)

// bucketName makes a valid, unique bucket name (3-63 of [a-z0-9-]) from a
// test name and a counter.
func bucketName(test string, n int64) string {
	s := strings.Trim(notBucketChars.ReplaceAllString(strings.ToLower(test), "-"), "-")
	name := fmt.Sprintf("tw%d-%s", n, s)
	if len(name) > 63 {
		name = name[:63]
	}
	return strings.TrimRight(name, "-")
}

func newClient(ep string) *s3.Client {
	return s3.New(s3.Options{
		Region:                     Region,
		BaseEndpoint:               aws.String(ep),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

func removeBucket(ctx context.Context, client *s3.Client, name string) error {
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(name)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]types.ObjectIdentifier, 0, len(page.Contents))
		for _, o := range page.Contents {
			ids = append(ids, types.ObjectIdentifier{Key: o.Key})
		}
		if _, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(name),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		}); err != nil {
			return err
		}
	}
	_, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
	return err
}

// binary finds the versitygw executable.
func binary() (string, error) {
	var tried []string
	if p := os.Getenv("TENANTWAL_VERSITYGW"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		tried = append(tried, p+" ($TENANTWAL_VERSITYGW)")
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache")
		}
	}
	if cache != "" {
		p := filepath.Join(cache, "tenantwal", "bin", "versitygw")
		if isExecutable(p) {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", fmt.Errorf("versitygw binary not found (tried %s); run scripts/install-test-deps.sh "+
		"to build it, or set TENANTWAL_VERSITYGW", strings.Join(tried, ", "))
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func start() (string, error) {
	bin, err := binary()
	if err != nil {
		return "", err
	}
	removeStaleDirs()
	dir, err := os.MkdirTemp("", dirPattern)
	if err != nil {
		return "", fmt.Errorf("start versitygw: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return "", fmt.Errorf("start versitygw: %w", err)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		return "", fmt.Errorf("start versitygw: %w", err)
	}
	// The free port may be taken between probing and binding; retry.
	for attempt := 1; ; attempt++ {
		ep, err := launch(bin, dir, data)
		if err == nil || attempt == 3 {
			return ep, err
		}
	}
}

// launch runs versitygw on a free port and waits until it answers HTTP.
func launch(bin, dir, data string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", fmt.Errorf("start versitygw: %w", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logPath := filepath.Join(dir, "versitygw-"+strconv.Itoa(port)+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return "", fmt.Errorf("start versitygw: %w", err)
	}
	cmd, exited, err := run(bin, addr, data, logf)
	if err != nil {
		return "", err
	}
	ep := "http://" + addr
	if err := waitReady(ep, exited); err != nil {
		_ = cmd.Process.Kill()
		out, _ := os.ReadFile(logPath)
		return "", fmt.Errorf("start %s on %s: %w; output:\n%s", bin, addr, err, out)
	}
	return ep, nil
}

// run starts versitygw serving data on addr, logging to logf (closed when
// it exits); exited is closed when the process ends.
func run(bin, addr, data string, logf *os.File) (*exec.Cmd, <-chan struct{}, error) {
	cmd := exec.Command(bin, "--access", AccessKey, "--secret", SecretKey, "--port", addr, "posix", data)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		// The parent-death signal fires when the thread that started the
		// child exits, so keep this thread alive as long as the child.
		runtime.LockOSThread()
		defer logf.Close()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return nil, nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return cmd, exited, nil
}

// waitReady polls the server until it answers any HTTP response.
func waitReady(ep string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get(ep + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer after %v: %w", startTimeout, err)
		}
		select {
		case <-exited:
			return errors.New("server exited")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// removeStaleDirs removes the data dirs of test binaries that are gone.
func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPattern))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || processAlive(pid) {
			continue
		}
		_ = os.RemoveAll(d)
	}
}
