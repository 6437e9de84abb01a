// Package pgtest is the PostgreSQL test harness: one throwaway cluster per
// test binary, started by Main from TestMain, and a fresh database per test
// from NewDB. Import it only from _test.go files.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) {
//		dsn := pgtest.NewDB(t)
//		pgtest.Exec(t, dsn, `CREATE TABLE t (id int PRIMARY KEY)`)
//		...
//	}
//
// The binaries are found as pgserver.FindBinDir finds them; when they are
// missing, Main fails the test binary with the error naming
// TENANTWAL_PG_BINDIR. Tests are never skipped for want of PostgreSQL.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantwal/tenantwal/internal/pgserver"
)

// Timeouts of the harness.
const (
	startTimeout   = time.Minute     // Main: initdb and start
	opTimeout      = 2 * time.Minute // NewDB, Exec
	cleanupTimeout = time.Minute     // dropping a test database
)

// server is the cluster Main started; nil before Main and in fuzz workers.
var server *pgserver.Server

// Main starts a PostgreSQL cluster (fsync off, wal_level logical) for the
// test binary, runs the tests, stops the cluster and removes its directory,
// and exits with the tests' code. Call it from TestMain. If the cluster
// cannot be started, Main prints why and exits 1.
//
// Fuzzing worker processes do not start a cluster: fuzz targets must not
// use Server or NewDB.
func Main(m *testing.M) {
	if !flag.Parsed() {
		flag.Parse()
	}
	if isFuzzWorker() {
		os.Exit(m.Run())
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	s, err := pgserver.Start(ctx, pgserver.Options{Settings: map[string]string{
		"fsync":              "off",
		"synchronous_commit": "off",
		"full_page_writes":   "off",
		"max_connections":    "200",
	}})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: start PostgreSQL for the tests: %v\n", err)
		if errors.Is(err, pgserver.ErrNoBinaries) && os.Getenv(pgserver.BinDirEnv) != "" {
			fmt.Fprintf(os.Stderr, "pgtest: fix %s or unset it to search the usual install locations\n", pgserver.BinDirEnv)
		}
		os.Exit(1)
	}
	server = s
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: stop PostgreSQL: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func isFuzzWorker() bool {
	f := flag.Lookup("test.fuzzworker")
	return f != nil && f.Value.String() == "true"
}

// Server returns the cluster Main started, or nil if Main did not run.
// Tests may Shutdown, StopImmediate and Restart it, but must leave it
// running; tests that do so must not run in parallel with others.
func Server() *pgserver.Server { return server }

// mustServer returns the cluster or fails t.
func mustServer(t testing.TB) *pgserver.Server {
	t.Helper()
	if server == nil {
		t.Fatal("pgtest: no PostgreSQL cluster: call pgtest.Main(m) from TestMain")
	}
	return server
}

// RandomName returns prefix followed by 12 random lowercase hex digits: a
// valid unquoted identifier when prefix is one, for slots and publications,
// which must be unique across the cluster.
func RandomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails
	return prefix + hex.EncodeToString(b[:])
}

// NewDB creates a fresh database and returns its DSN (superuser postgres,
// over TCP). On cleanup it terminates the walsenders of the database's
// replication slots, drops the slots, and drops the database WITH (FORCE),
// so that no slot is left to pin WAL.
func NewDB(t testing.TB) string {
	t.Helper()
	s := mustServer(t)
	name := RandomName("t_")
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	admin := connect(t, ctx, s.DSN("postgres"))
	defer admin.Close(context.WithoutCancel(ctx))
	if err := admin.Exec(ctx, "CREATE DATABASE "+name).Close(); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := dropDB(ctx, s, name); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.DSN(name)
}

// dropDB drops the replication slots of database name, then the database.
func dropDB(ctx context.Context, s *pgserver.Server, name string) error {
	admin, err := pgconn.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		left, err := dropSlots(ctx, admin, name)
		if err != nil {
			return err
		}
		if !left {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drop replication slots: %w", ctx.Err())
		case <-tick.C:
		}
	}
	if err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(name)+" WITH (FORCE)").Close(); err != nil {
		return err
	}
	return nil
}

// dropSlots terminates the walsenders holding the slots of database db and
// drops its inactive slots. A terminated walsender releases its slot
// asynchronously, so it reports whether slots are left to retry.
func dropSlots(ctx context.Context, admin *pgconn.PgConn, db string) (left bool, err error) {
	lit := quoteLiteral(db)
	res, err := admin.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = `+lit+` AND active_pid IS NOT NULL;
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = `+lit+` AND NOT active;
SELECT count(*) FROM pg_replication_slots WHERE database = `+lit).ReadAll()
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "55006":
		return true, nil // a slot became active between the statements
	case err != nil:
		return false, fmt.Errorf("drop replication slots: %w", err)
	}
	last := res[len(res)-1]
	return len(last.Rows) != 1 || string(last.Rows[0][0]) != "0", nil
}

// Exec runs each statement (or semicolon-separated script) in sql on dsn,
// over one connection, in order, with the simple query protocol. It fails t
// on the first error.
func Exec(t testing.TB, dsn string, sql ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	conn := connect(t, ctx, dsn)
	defer conn.Close(context.WithoutCancel(ctx))
	for _, q := range sql {
		if _, err := conn.Exec(ctx, q).ReadAll(); err != nil {
			t.Fatalf("pgtest: exec %q: %v", q, err)
		}
	}
}

func connect(t testing.TB, ctx context.Context, dsn string) *pgconn.PgConn {
	t.Helper()
	conn, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	return conn
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }
