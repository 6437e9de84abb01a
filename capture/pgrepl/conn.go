package pgrepl

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// sessionParams pin the walsender session's settings that shape the text
// output of types, whatever ALTER ROLE or ALTER DATABASE set. Startup
// packet settings override role and database defaults.
var sessionParams = map[string]string{
	"DateStyle":          "ISO",
	"IntervalStyle":      "postgres",
	"TimeZone":           "UTC",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	"client_encoding":    "UTF8",
}

// Connect opens a logical replication connection (replication=database) to
// the database dsn names, with the session settings DateStyle=ISO,
// IntervalStyle=postgres, TimeZone=UTC, extra_float_digits=3,
// bytea_output=hex and client_encoding=UTF8, overriding any in dsn. The
// user needs the REPLICATION attribute. ctx bounds the connect only.
//
// The connection reads the socket through a ReadBufferSize buffer, so a
// backlog of small WAL messages costs one read syscall per buffer rather
// than one per 8 KiB (pgproto3's own buffer); Buffered reports what it holds.
func Connect(ctx context.Context, dsn string) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse replication DSN: %w", err)
	}
	cfg.RuntimeParams["replication"] = "database"
	for k, v := range sessionParams {
		cfg.RuntimeParams[k] = v
	}
	// BuildFrontend runs once per connection attempt; the last one built is
	// the connection's.
	var rd *bufio.Reader
	cfg.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		rd = bufio.NewReaderSize(r, ReadBufferSize)
		return pgproto3.NewFrontend(rd, w)
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open replication connection to %s: %w", addr(cfg), err)
	}
	conn.CustomData()[readerKey] = rd
	return conn, nil
}

// ReadBufferSize is the size of the read buffer of a connection Connect
// opens.
const ReadBufferSize = 256 << 10

// readerKey holds a Connect connection's read buffer in its CustomData.
const readerKey = "tenantwal/pgrepl.reader"

// Buffered returns the number of bytes received on conn and not yet
// returned by ReceiveMessage: when it is 0, the next ReceiveMessage waits
// for the socket. For a connection Connect did not open it counts
// pgproto3's buffer only.
func Buffered(conn *pgconn.PgConn) int {
	n := conn.Frontend().ReadBufferLen()
	if rd, ok := conn.CustomData()[readerKey].(*bufio.Reader); ok {
		n += rd.Buffered()
	}
	return n
}

// addr names the server cfg connects to, for error messages.
func addr(cfg *pgconn.Config) string {
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

// connAddr names the server conn is connected to, for error messages.
func connAddr(conn *pgconn.PgConn) string {
	if nc := conn.Conn(); nc != nil && nc.RemoteAddr() != nil {
		return nc.RemoteAddr().String()
	}
	return "the server"
}
