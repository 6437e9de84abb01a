package pgrepl

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantwal/tenantwal/schemas"
)

// IdentifySystemResult is the answer to IDENTIFY_SYSTEM.
type IdentifySystemResult struct {
	SystemID string      // unique cluster identifier, decimal
	Timeline int32       // current timeline ID
	XLogPos  schemas.LSN // current WAL flush location
	DBName   string      // database connected to; empty on a physical replication connection
}

// IdentifySystem runs IDENTIFY_SYSTEM on a replication connection.
func IdentifySystem(ctx context.Context, conn *pgconn.PgConn) (IdentifySystemResult, error) {
	r, err := execOne(ctx, conn, "IDENTIFY_SYSTEM")
	if err != nil {
		return IdentifySystemResult{}, fmt.Errorf("identify system on %s: %w", connAddr(conn), err)
	}
	out, err := ParseIdentifySystem(r)
	if err != nil {
		return out, fmt.Errorf("identify system on %s: %w", connAddr(conn), err)
	}
	return out, nil
}

// ParseIdentifySystem parses the result of IDENTIFY_SYSTEM: one row of
// systemid, timeline, xlogpos and dbname, in text format. It returns
// r.Err if set, and an error wrapping ErrMalformed if r has another shape.
func ParseIdentifySystem(r *pgconn.Result) (IdentifySystemResult, error) {
	var out IdentifySystemResult
	row, err := singleRow(r, "IDENTIFY_SYSTEM", 4)
	if err != nil {
		return out, err
	}
	out.SystemID = string(row[0])
	if out.SystemID == "" {
		return out, fmt.Errorf("%w: IDENTIFY_SYSTEM: empty systemid", ErrMalformed)
	}
	tl, err := strconv.ParseInt(string(row[1]), 10, 32)
	if err != nil {
		return out, fmt.Errorf("%w: IDENTIFY_SYSTEM: timeline %q: %w", ErrMalformed, row[1], err)
	}
	out.Timeline = int32(tl)
	if out.XLogPos, err = schemas.ParseLSN(string(row[2])); err != nil {
		return out, fmt.Errorf("%w: IDENTIFY_SYSTEM: xlogpos: %w", ErrMalformed, err)
	}
	out.DBName = string(row[3]) // NULL (nil) on a physical connection
	return out, nil
}

// singleRow returns the only row of r, checking it has cols columns.
func singleRow(r *pgconn.Result, cmd string, cols int) ([][]byte, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: %s: no result", ErrMalformed, cmd)
	}
	if r.Err != nil {
		return nil, r.Err
	}
	if len(r.Rows) != 1 {
		return nil, fmt.Errorf("%w: %s: %d rows, want 1", ErrMalformed, cmd, len(r.Rows))
	}
	if len(r.Rows[0]) != cols {
		return nil, fmt.Errorf("%w: %s: %d columns, want %d", ErrMalformed, cmd, len(r.Rows[0]), cols)
	}
	return r.Rows[0], nil
}

// execOne runs a replication command that returns one result set.
func execOne(ctx context.Context, conn *pgconn.PgConn, sql string) (*pgconn.Result, error) {
	results, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(results) != 1 {
		return nil, fmt.Errorf("%w: %d results, want 1", ErrMalformed, len(results))
	}
	return results[0], nil
}
