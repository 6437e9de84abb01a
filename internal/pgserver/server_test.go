package pgserver_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantwal/tenantwal/internal/pgserver"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// query runs sql on db and returns the first column of the first row.
func query(t *testing.T, ctx context.Context, s *pgserver.Server, db, sql string) string {
	t.Helper()
	conn, err := pgconn.Connect(ctx, s.DSN(db))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	res := conn.Exec(ctx, sql)
	results, err := res.ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	last := results[len(results)-1]
	if len(last.Rows) == 0 {
		return ""
	}
	return string(last.Rows[0][0])
}

func TestStartRestartStop(t *testing.T) {
	ctx := testContext(t)
	s, err := pgserver.Start(ctx, pgserver.Options{Settings: map[string]string{"fsync": "off", "application_name": "it's quoted"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() }) // in case of an early failure; idempotent
	if s.Port() == 0 || s.Pid() == 0 {
		t.Fatalf("port %d pid %d", s.Port(), s.Pid())
	}
	for setting, want := range map[string]string{
		"wal_level": "logical", "fsync": "off", "max_replication_slots": "32",
		"listen_addresses": "127.0.0.1", "unix_socket_directories": s.Dir(),
	} {
		if got := query(t, ctx, s, "postgres", "SHOW "+setting); got != want {
			t.Errorf("SHOW %s = %q, want %q", setting, got, want)
		}
	}
	query(t, ctx, s, "postgres", "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")

	port, pid := s.Port(), s.Pid()
	if err := s.Shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if s.Pid() != 0 {
		t.Errorf("pid after shutdown = %d", s.Pid())
	}
	if err := s.Shutdown(); !errors.Is(err, pgserver.ErrNotRunning) {
		t.Errorf("second shutdown: %v, want ErrNotRunning", err)
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if s.Port() != port || s.Pid() == pid {
		t.Errorf("after restart port %d pid %d, before %d %d", s.Port(), s.Pid(), port, pid)
	}
	if got := query(t, ctx, s, "postgres", "SELECT x FROM kept"); got != "42" {
		t.Errorf("after restart: %q, want 42", got)
	}

	// An immediate stop skips the checkpoint: the row survives by WAL replay.
	query(t, ctx, s, "postgres", "INSERT INTO kept VALUES (43)")
	if err := s.StopImmediate(); err != nil {
		t.Fatalf("stop immediate: %v", err)
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatalf("restart after immediate stop: %v", err)
	}
	if got := query(t, ctx, s, "postgres", "SELECT count(*) FROM kept"); got != "2" {
		t.Errorf("after crash recovery: %q rows, want 2", got)
	}

	dir := s.Dir()
	if err := s.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("server directory %s not removed: %v", dir, err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
	if err := s.Restart(ctx); err == nil {
		t.Error("restart after Stop removed the directory: no error")
	}
}

func TestStartReusesDir(t *testing.T) {
	ctx := testContext(t)
	// Not t.TempDir: as root, the postgres user must be able to reach it.
	dir, err := os.MkdirTemp("", "pgserver-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	opts := pgserver.Options{Dir: dir, Settings: map[string]string{"fsync": "off"}}
	s, err := pgserver.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	query(t, ctx, s, "postgres", "CREATE TABLE kept (x int)")
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err != nil {
		t.Fatalf("Stop removed a directory it did not create: %v", err)
	}
	s, err = pgserver.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if got := query(t, ctx, s, "postgres", "SELECT count(*) FROM kept"); got != "0" {
		t.Errorf("table from the first start: %q", got)
	}
}

func TestStartFailureIncludesLog(t *testing.T) {
	ctx := testContext(t)
	_, err := pgserver.Start(ctx, pgserver.Options{Settings: map[string]string{"no_such_setting": "1"}})
	if err == nil {
		t.Fatal("no error for an unknown setting")
	}
	t.Logf("error: %v", err)
	if want := "no_such_setting"; !strings.Contains(err.Error(), want) {
		t.Errorf("error does not include the server log (%q): %v", want, err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []pgserver.Options{
		{Port: -1},
		{Port: 70000},
		{Settings: map[string]string{"": "x"}},
		{Settings: map[string]string{"a = b": "x"}},
		{Settings: map[string]string{"a": "x\ny = z"}},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

func TestBinDirMissing(t *testing.T) {
	t.Setenv(pgserver.BinDirEnv, t.TempDir())
	_, err := pgserver.Start(t.Context(), pgserver.Options{})
	if !errors.Is(err, pgserver.ErrNoBinaries) || !strings.Contains(err.Error(), pgserver.BinDirEnv) {
		t.Fatalf("err = %v, want ErrNoBinaries naming %s", err, pgserver.BinDirEnv)
	}
}
