package pgrepl_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tenantwal/tenantwal/capture/pgoutput"
	"github.com/tenantwal/tenantwal/capture/pgrepl"
	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/schemas"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// query returns the first column of the first row of the last statement.
func query(t *testing.T, ctx context.Context, dsn, sql string) string {
	t.Helper()
	conn, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	results, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	for i := len(results) - 1; i >= 0; i-- {
		if len(results[i].Rows) > 0 {
			return string(results[i].Rows[0][0])
		}
	}
	return ""
}

func dbName(t *testing.T, dsn string) string {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Database
}

// receiver reads a replication stream with short per-read deadlines, as
// capture does, answering keepalives that request a reply.
type receiver struct {
	t         *testing.T
	conn      *pgconn.PgConn
	confirmed schemas.LSN
	answered  int // keepalives answered
}

// next returns the next XLogData, answering keepalives on the way.
func (r *receiver) next(ctx context.Context) pgrepl.XLogData {
	r.t.Helper()
	for {
		data := r.copyData(ctx)
		switch data[0] {
		case pgrepl.XLogDataByteID:
			x, err := pgrepl.ParseXLogData(data[1:])
			if err != nil {
				r.t.Fatal(err)
			}
			return x
		case pgrepl.PrimaryKeepaliveByteID:
			r.keepalive(ctx, data[1:])
		default:
			r.t.Fatalf("unexpected CopyData %q", data[0])
		}
	}
}

// waitKeepalives reads until n keepalives requesting a reply have been
// answered; WAL data is not expected.
func (r *receiver) waitKeepalives(ctx context.Context, n int) {
	r.t.Helper()
	for goal := r.answered + n; r.answered < goal; {
		data := r.copyData(ctx)
		if data[0] != pgrepl.PrimaryKeepaliveByteID {
			r.t.Fatalf("unexpected CopyData %q while waiting for keepalives", data[0])
		}
		r.keepalive(ctx, data[1:])
	}
}

func (r *receiver) keepalive(ctx context.Context, b []byte) {
	r.t.Helper()
	k, err := pgrepl.ParsePrimaryKeepalive(b)
	if err != nil {
		r.t.Fatal(err)
	}
	if k.ServerWALEnd == 0 || time.Since(k.ServerTime).Abs() > time.Minute {
		r.t.Errorf("implausible keepalive %+v", k)
	}
	if k.ReplyRequested {
		r.status(ctx)
		r.answered++
	}
}

func (r *receiver) status(ctx context.Context) {
	r.t.Helper()
	s := pgrepl.StandbyStatus{Write: r.confirmed, Flush: r.confirmed, Apply: r.confirmed, ClientTime: time.Now()}
	if err := pgrepl.SendStandbyStatus(ctx, r.conn, s); err != nil {
		r.t.Fatal(err)
	}
}

// copyData returns the next non-empty CopyData payload, id byte first.
func (r *receiver) copyData(ctx context.Context) []byte {
	r.t.Helper()
	for {
		rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		msg, err := r.conn.ReceiveMessage(rctx)
		cancel()
		if pgconn.Timeout(err) && ctx.Err() == nil {
			continue // as capture does: a timeout leaves the connection usable
		}
		if err != nil {
			r.t.Fatalf("receive: %v", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) > 0 {
				return m.Data
			}
		case *pgproto3.ErrorResponse:
			r.t.Fatalf("server error: %v", pgconn.ErrorResponseToPgError(m))
		default:
			r.t.Fatalf("unexpected %T", msg)
		}
	}
}

func TestReplication(t *testing.T) {
	ctx := testContext(t)
	dsn := pgtest.NewDB(t)
	db := dbName(t, dsn)
	pgtest.Exec(t, dsn,
		`CREATE TABLE items (id int PRIMARY KEY, at timestamptz, blob bytea, f float8, iv interval)`,
		`CREATE PUBLICATION pub FOR TABLE items`,
		// Defaults that change the text of values; Connect must override them.
		`ALTER ROLE postgres IN DATABASE `+db+` SET DateStyle = 'SQL, DMY'`,
		`ALTER ROLE postgres IN DATABASE `+db+` SET bytea_output = 'escape'`,
		`ALTER ROLE postgres IN DATABASE `+db+` SET IntervalStyle = 'sql_standard'`,
		`ALTER DATABASE `+db+` SET TimeZone = 'America/New_York'`,
		`ALTER DATABASE `+db+` SET extra_float_digits = 0`,
	)
	// The defaults are in effect for ordinary sessions.
	if got := query(t, ctx, dsn, `SELECT '2024-01-02 03:04:05.123456+00'::timestamptz::text`); got != "01/01/2024 22:04:05.123456 EST" {
		t.Fatalf("role default DateStyle not in effect: %q", got)
	}
	if got := query(t, ctx, dsn, `SELECT '\x0102ff'::bytea::text`); got != `\001\002\377` {
		t.Fatalf("role default bytea_output not in effect: %q", got)
	}

	// A short wal_sender_timeout makes the server request replies quickly.
	rconn, err := pgrepl.Connect(ctx, dsn+"&wal_sender_timeout=2000")
	if err != nil {
		t.Fatal(err)
	}
	defer rconn.Close(context.WithoutCancel(ctx))

	sys, err := pgrepl.IdentifySystem(ctx, rconn)
	if err != nil {
		t.Fatal(err)
	}
	if want := query(t, ctx, dsn, `SELECT system_identifier FROM pg_control_system()`); sys.SystemID != want {
		t.Errorf("SystemID = %q, want %q", sys.SystemID, want)
	}
	if sys.DBName != db || sys.Timeline != 1 || sys.XLogPos == 0 {
		t.Errorf("IdentifySystem = %+v", sys)
	}

	slot := pgtest.RandomName("slot_")
	created, err := pgrepl.CreateReplicationSlot(ctx, rconn, slot, "pgoutput", pgrepl.CreateSlotOptions{Snapshot: "export"})
	if err != nil {
		t.Fatal(err)
	}
	if created.SlotName != slot || created.OutputPlugin != "pgoutput" || created.SnapshotName == "" || created.ConsistentPoint < sys.XLogPos {
		t.Errorf("CreateReplicationSlot = %+v (IdentifySystem %+v)", created, sys)
	}

	pgtest.Exec(t, dsn,
		`INSERT INTO items VALUES (1, '2024-01-02 03:04:05.123456+00', '\x0102ff', 1.0/3, '1 day 02:03:04'), (2, NULL, NULL, NULL, NULL)`,
		`SELECT pg_logical_emit_message(true, 'test', 'hello')`,
	)
	// The exported snapshot predates the inserts and stays importable until
	// the next command on the replication connection.
	if got := query(t, ctx, dsn, `BEGIN ISOLATION LEVEL REPEATABLE READ;
SET TRANSACTION SNAPSHOT '`+created.SnapshotName+`';
SELECT count(*) FROM items;
COMMIT`); got != "0" {
		t.Errorf("rows in the exported snapshot: %s, want 0", got)
	}
	if got := query(t, ctx, dsn, `SELECT count(*) FROM items`); got != "2" {
		t.Errorf("rows now: %s, want 2", got)
	}

	if err := pgrepl.StartReplication(ctx, rconn, slot, 0, pgrepl.PgoutputArgs("pub", true)...); err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, conn: rconn}
	var types []string
	var lastCommit *pgoutput.Commit
	var firstRow []string
	for commits := 0; commits < 2; {
		x := r.next(ctx)
		if len(x.Data) == 0 {
			t.Fatal("empty XLogData")
		}
		msg, err := pgoutput.Parse(x.Data)
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, string(x.Data[0]))
		switch m := msg.(type) {
		case *pgoutput.Insert:
			if firstRow == nil {
				for _, c := range m.New.Columns {
					firstRow = append(firstRow, string(c.Data))
				}
			}
		case *pgoutput.LogicalMessage:
			if m.Prefix != "test" || string(m.Content) != "hello" || !m.Transactional() {
				t.Errorf("logical message %+v", m)
			}
		case *pgoutput.Commit:
			commits++
			lastCommit = m
			if x.WALStart < created.ConsistentPoint {
				t.Errorf("commit at %s before the consistent point %s", x.WALStart, created.ConsistentPoint)
			}
		}
	}
	if got, want := strings.Join(types, ""), "BRIICBMC"; got != want {
		t.Errorf("message types %q, want %q", got, want)
	}
	// Pinned session settings: ISO, UTC, hex, shortest-exact floats, postgres intervals.
	if got, want := strings.Join(firstRow, "|"), `1|2024-01-02 03:04:05.123456+00|\x0102ff|0.3333333333333333|1 day 02:03:04`; got != want {
		t.Errorf("first row %q\nwant          %q", got, want)
	}

	// Confirm the stream: the slot's confirmed position follows.
	r.confirmed = lastCommit.EndLSN
	r.status(ctx)
	waitFor(t, ctx, func() bool {
		got, err := schemas.ParseLSN(query(t, ctx, dsn, `SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '`+slot+`'`))
		return err == nil && got >= lastCommit.EndLSN
	})

	// Answering keepalives keeps the connection alive past wal_sender_timeout.
	start := time.Now()
	r.waitKeepalives(ctx, 3)
	if d := time.Since(start); d < 2*time.Second {
		t.Logf("3 keepalives answered in %s only", d)
	}
	if got := query(t, ctx, dsn, `SELECT count(*) FROM pg_stat_replication WHERE pid = `+fmt.Sprint(rconn.PID())); got != "1" {
		t.Errorf("walsender gone after answering keepalives")
	}

	// Drop the slot from another connection, waiting for the walsender to
	// release it.
	rconn.Close(ctx)
	dconn, err := pgrepl.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer dconn.Close(context.WithoutCancel(ctx))
	if err := pgrepl.DropReplicationSlot(ctx, dconn, slot, true); err != nil {
		t.Fatal(err)
	}
	if got := query(t, ctx, dsn, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = '`+slot+`'`); got != "0" {
		t.Errorf("slot still there")
	}
	err = pgrepl.DropReplicationSlot(ctx, dconn, slot, false)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42704" {
		t.Errorf("dropping a missing slot: %v, want SQLSTATE 42704", err)
	}
}

func TestErrors(t *testing.T) {
	ctx := testContext(t)
	dsn := pgtest.NewDB(t)
	conn, err := pgrepl.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	addr := fmt.Sprintf("127.0.0.1:%d", pgtest.Server().Port())

	err = pgrepl.StartReplication(ctx, conn, "no_such_slot", 0, pgrepl.PgoutputArgs("pub", false)...)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42704" || !strings.Contains(err.Error(), "no_such_slot") || !strings.Contains(err.Error(), addr) {
		t.Errorf("missing slot: %v", err)
	}
	// The connection is usable after the error.
	if _, err := pgrepl.IdentifySystem(ctx, conn); err != nil {
		t.Fatalf("after a failed START_REPLICATION: %v", err)
	}

	slot := pgtest.RandomName("slot_")
	if _, err := pgrepl.CreateReplicationSlot(ctx, conn, slot, "pgoutput", pgrepl.CreateSlotOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = pgrepl.CreateReplicationSlot(ctx, conn, slot, "pgoutput", pgrepl.CreateSlotOptions{})
	if !errors.As(err, &pgErr) || pgErr.Code != "42710" {
		t.Errorf("duplicate slot: %v, want SQLSTATE 42710", err)
	}
	if _, err := pgrepl.CreateReplicationSlot(ctx, conn, "Bad-Name", "pgoutput", pgrepl.CreateSlotOptions{}); err == nil {
		t.Error("invalid slot name accepted")
	}
	if err := pgrepl.DropReplicationSlot(ctx, conn, slot, false); err != nil {
		t.Fatal(err)
	}

	// A temporary slot lives as long as its connection. (An error on the
	// connection drops it too: the walsender's error cleanup does.)
	tmp, err := pgrepl.CreateReplicationSlot(ctx, conn, slot, "pgoutput", pgrepl.CreateSlotOptions{Temporary: true, Snapshot: "nothing"})
	if err != nil {
		t.Fatal(err)
	}
	if tmp.SnapshotName != "" {
		t.Errorf("snapshot %q exported with Snapshot: nothing", tmp.SnapshotName)
	}
	if got := query(t, ctx, dsn, `SELECT temporary FROM pg_replication_slots WHERE slot_name = '`+slot+`'`); got != "t" {
		t.Errorf("temporary = %q", got)
	}
	conn.Close(ctx)
	waitFor(t, ctx, func() bool {
		return query(t, ctx, dsn, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = '`+slot+`'`) == "0"
	})

	// Connection errors name the server.
	stopped := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable&connect_timeout=5", freePort(t))
	if _, err := pgrepl.Connect(ctx, stopped); err == nil || !strings.Contains(err.Error(), "127.0.0.1:") {
		t.Errorf("connect to a closed port: %v", err)
	}
}

// freePort returns a port that nothing listened on a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond until it holds, failing t when ctx ends.
func waitFor(t *testing.T, ctx context.Context, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("condition not met: %v", ctx.Err())
		case <-tick.C:
		}
	}
}
