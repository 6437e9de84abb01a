package pgrepl

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
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
func Connect(ctx context.Context, dsn string) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse replication DSN: %w", err)
	}
	cfg.RuntimeParams["replication"] = "database"
	for k, v := range sessionParams {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open replication connection to %s: %w", addr(cfg), err)
	}
	return conn, nil
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
