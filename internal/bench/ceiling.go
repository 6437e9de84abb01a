package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantwal/tenantwal/schemas"
)

// The PostgreSQL ceilings, measured with PostgreSQL's own tools against the
// same server in the same run.

// toolRun is one run of a PostgreSQL client binary.
type toolRun struct {
	Wall, CPU time.Duration
}

// runTool runs a PostgreSQL client binary and returns its wall and CPU
// time. The tools connect over TCP as the postgres superuser, which works
// as root.
func runTool(ctx context.Context, binDir, name string, args ...string) (toolRun, error) {
	path := name
	if binDir != "" {
		path = filepath.Join(binDir, name)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	run := toolRun{Wall: time.Since(start)}
	if cmd.ProcessState != nil {
		run.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return run, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tailString(out.String(), 2000))
	}
	return run, nil
}

// recvlogical decodes slot from its position to end with pg_recvlogical
// and pgoutput (protocol 1, the publication tenantwal reads), writing to
// /dev/null.
func recvlogical(ctx context.Context, binDir, dsn, slot, publication string, end schemas.LSN) (toolRun, error) {
	return runTool(ctx, binDir, "pg_recvlogical", "-d", dsn, "--slot", slot, "--start",
		"-o", "proto_version=1", "-o", "publication_names="+publication,
		"--endpos", end.String(), "--no-loop", "-F", "0", "-f", "/dev/null")
}

// dumpSchema writes pg_dump -Fc of one schema to file and returns its size.
func dumpSchema(ctx context.Context, binDir, dsn, schema, file string) (int64, error) {
	if _, err := runTool(ctx, binDir, "pg_dump", "-d", dsn, "-Fc", "-n", schema, "-f", file); err != nil {
		return 0, err
	}
	fi, err := os.Stat(file)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// copyOut returns t's rows in COPY binary format and how many there are.
func copyOut(ctx context.Context, conn *pgconn.PgConn, t *tenant) ([]byte, int64, error) {
	q := "SELECT * FROM " + t.table()
	if !t.Bridge {
		q += " WHERE " + tenantCol + " = " + quoteLiteral(t.ID)
	}
	var buf bytes.Buffer
	tag, err := conn.CopyTo(ctx, &buf, "COPY ("+q+") TO STDOUT (FORMAT binary)")
	if err != nil {
		return nil, 0, fmt.Errorf("copy out tenant %s: %w", t.ID, err)
	}
	return buf.Bytes(), tag.RowsAffected(), nil
}

// copyIn loads data (copyOut's) into a new table shaped like t's, the way
// a restore would: in one transaction, create the table, COPY FROM STDIN
// binary, add the primary key. It returns the wall time of the transaction
// and drops the table afterwards.
func copyIn(ctx context.Context, conn *pgx.Conn, t *tenant, data []byte) (time.Duration, error) {
	const schema = "bench_copy_ceiling"
	target := pgx.Identifier{schema, tableName}.Sanitize()
	key := "id"
	if !t.Bridge {
		key = tenantCol + ", id"
	}
	start := time.Now()
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf("CREATE SCHEMA %s; CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS)",
			pgx.Identifier{schema}.Sanitize(), target, t.table())); err != nil {
			return err
		}
		if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(data), "COPY "+target+" FROM STDIN (FORMAT binary)"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD PRIMARY KEY (%s)", target, key))
		return err
	})
	took := time.Since(start)
	if err != nil {
		return took, fmt.Errorf("copy in tenant %s: %w", t.ID, err)
	}
	if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		return took, err
	}
	return took, nil
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
