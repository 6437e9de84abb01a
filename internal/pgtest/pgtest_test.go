package pgtest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantwal/tenantwal/capture/pgrepl"
	"github.com/tenantwal/tenantwal/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func count(t *testing.T, ctx context.Context, sql string) string {
	t.Helper()
	conn, err := pgconn.Connect(ctx, pgtest.Server().DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	results, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return string(results[0].Rows[0][0])
}

func TestNewDBCleanup(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if got := count(t, ctx, `SHOW wal_level`); got != "logical" {
		t.Fatalf("wal_level = %s", got)
	}
	if got := count(t, ctx, `SHOW fsync`); got != "off" {
		t.Errorf("fsync = %s", got)
	}
	var db string
	t.Run("inner", func(t *testing.T) {
		dsn := pgtest.NewDB(t)
		if !strings.HasPrefix(dsn, "postgres://postgres@127.0.0.1:") {
			t.Errorf("dsn %s", dsn)
		}
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		db = cfg.Database
		pgtest.Exec(t, dsn,
			`CREATE TABLE x (id int PRIMARY KEY)`,
			`CREATE PUBLICATION pub FOR TABLE x`,
			`SELECT pg_create_logical_replication_slot('`+pgtest.RandomName("idle_")+`', 'pgoutput')`,
		)
		// A slot held by a running walsender, and an open session.
		rconn, err := pgrepl.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rconn.Close(context.WithoutCancel(ctx)) }) // runs after pgtest's cleanup
		slot := pgtest.RandomName("busy_")
		if _, err := pgrepl.CreateReplicationSlot(ctx, rconn, slot, "pgoutput", pgrepl.CreateSlotOptions{Snapshot: "nothing"}); err != nil {
			t.Fatal(err)
		}
		if err := pgrepl.StartReplication(ctx, rconn, slot, 0, pgrepl.PgoutputArgs("pub", false)...); err != nil {
			t.Fatal(err)
		}
		session, err := pgconn.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { session.Close(context.WithoutCancel(ctx)) })
		if got := count(t, ctx, `SELECT count(*) FROM pg_replication_slots WHERE database = '`+db+`'`); got != "2" {
			t.Errorf("%s slots before cleanup, want 2", got)
		}
	})
	if db == "" {
		t.Fatal("inner test did not run")
	}
	if got := count(t, ctx, `SELECT count(*) FROM pg_database WHERE datname = '`+db+`'`); got != "0" {
		t.Errorf("database %s not dropped", db)
	}
	if got := count(t, ctx, `SELECT count(*) FROM pg_replication_slots`); got != "0" {
		t.Errorf("%s slots left", got)
	}
}

func TestRandomName(t *testing.T) {
	a, b := pgtest.RandomName("s_"), pgtest.RandomName("s_")
	if a == b || len(a) != 14 || !strings.HasPrefix(a, "s_") {
		t.Errorf("%q %q", a, b)
	}
}
