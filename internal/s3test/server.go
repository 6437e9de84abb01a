package s3test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Server is a versitygw process of one test, apart from the shared one of
// Start, so that the test can stop it (an object store outage) and start it
// again on the same port and data. It is killed in t.Cleanup.
type Server struct {
	t    testing.TB
	bin  string
	data string
	dir  string
	addr string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited <-chan struct{}
}

// StartServer runs versitygw on a free 127.0.0.1 port with a data dir under
// t.TempDir() and waits until it answers.
func StartServer(t testing.TB) *Server {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), addr: "127.0.0.1:" + strconv.Itoa(port)}
	s.data = filepath.Join(s.dir, "data")
	if err := os.Mkdir(s.data, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	s.start(t)
	return s
}

// Endpoint is the server's URL (path-style addressing); it stays the same
// across restarts.
func (s *Server) Endpoint() string { return "http://" + s.addr }

// Bucket creates a bucket on this server and returns its name.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	name := bucketName(t.Name(), buckets.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := newClient(s.Endpoint()).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("s3test: create bucket %s: %v", name, err)
	}
	return name
}

// Kill stops the server with SIGKILL and waits for it to exit; a no-op when
// it is not running.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// Restart starts the server again on the same port and data (after Kill,
// or killing it first).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	s.start(t)
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(s.dir, "versitygw.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd, exited, err := run(s.bin, s.addr, s.data, logf)
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	if err := waitReady(s.Endpoint(), exited); err != nil {
		s.Kill()
		out, _ := os.ReadFile(filepath.Join(s.dir, "versitygw.log"))
		t.Fatalf("s3test: start %s on %s: %v; output:\n%s", s.bin, s.addr, err, out)
	}
}

func (s *Server) String() string { return fmt.Sprintf("versitygw at %s", s.Endpoint()) }
