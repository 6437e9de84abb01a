package pgrepl

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantwal/tenantwal/schemas"
)

// CreateSlotOptions are the options of CreateReplicationSlot.
type CreateSlotOptions struct {
	// Temporary makes the slot live only as long as the connection.
	Temporary bool
	// Snapshot is what to do with the snapshot the slot is created at:
	//   - "export": export it until the next command on the connection, for
	//     SET TRANSACTION SNAPSHOT on another connection; SnapshotName names it.
	//   - "use": use it for the current transaction of the connection.
	//   - "nothing": discard it.
	//   - "": the server default ("export").
	Snapshot string
}

// CreateSlotResult is the answer to CREATE_REPLICATION_SLOT.
type CreateSlotResult struct {
	SlotName        string
	ConsistentPoint schemas.LSN // streaming from the slot starts after this position
	SnapshotName    string      // exported snapshot; empty unless Snapshot was "export" (or "")
	OutputPlugin    string
}

// CreateReplicationSlot creates the logical replication slot slot with the
// output plugin plugin (usually "pgoutput"). It uses the PostgreSQL 15
// syntax, and the older keywords on older servers. A slot that exists
// already is an error (SQLSTATE 42710).
func CreateReplicationSlot(ctx context.Context, conn *pgconn.PgConn, slot, plugin string, opts CreateSlotOptions) (CreateSlotResult, error) {
	sql, err := createSlotSQL(slot, plugin, opts, serverMajor(conn))
	if err != nil {
		return CreateSlotResult{}, err
	}
	r, err := execOne(ctx, conn, sql)
	if err != nil {
		return CreateSlotResult{}, fmt.Errorf("create replication slot %s on %s: %w", slot, connAddr(conn), err)
	}
	row, err := singleRow(r, "CREATE_REPLICATION_SLOT", 4)
	if err != nil {
		return CreateSlotResult{}, fmt.Errorf("create replication slot %s on %s: %w", slot, connAddr(conn), err)
	}
	out := CreateSlotResult{SlotName: string(row[0]), SnapshotName: string(row[2]), OutputPlugin: string(row[3])}
	if out.ConsistentPoint, err = schemas.ParseLSN(string(row[1])); err != nil {
		return out, fmt.Errorf("create replication slot %s: %w: consistent_point: %w", slot, ErrMalformed, err)
	}
	return out, nil
}

// createSlotSQL builds CREATE_REPLICATION_SLOT for a server of major
// version major (0 if unknown: assume current syntax).
func createSlotSQL(slot, plugin string, opts CreateSlotOptions, major int) (string, error) {
	var b strings.Builder
	b.WriteString("CREATE_REPLICATION_SLOT ")
	b.WriteString(quoteIdent(slot))
	if opts.Temporary {
		b.WriteString(" TEMPORARY")
	}
	b.WriteString(" LOGICAL ")
	b.WriteString(quoteIdent(plugin))
	switch opts.Snapshot {
	case "":
	case "export", "use", "nothing":
		if major > 0 && major < 15 {
			b.WriteString(map[string]string{"export": " EXPORT_SNAPSHOT", "use": " USE_SNAPSHOT", "nothing": " NOEXPORT_SNAPSHOT"}[opts.Snapshot])
		} else {
			b.WriteString(" (SNAPSHOT '" + opts.Snapshot + "')")
		}
	default:
		return "", fmt.Errorf("create replication slot %s: snapshot option %q is not export, use or nothing", slot, opts.Snapshot)
	}
	return b.String(), nil
}

// serverMajor returns the server's major version, or 0 if unknown.
func serverMajor(conn *pgconn.PgConn) int {
	v := conn.ParameterStatus("server_version") // "15.8 (Debian 15.8-1)", "9.6.24"
	end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(v)
	}
	major, err := strconv.Atoi(v[:end])
	if err != nil {
		return 0
	}
	return major
}

// DropReplicationSlot drops the replication slot slot. With wait, it waits
// for the slot to become inactive if another connection is using it;
// without, that is an error (SQLSTATE 55006). A missing slot is an error
// (SQLSTATE 42704).
func DropReplicationSlot(ctx context.Context, conn *pgconn.PgConn, slot string, wait bool) error {
	sql := "DROP_REPLICATION_SLOT " + quoteIdent(slot)
	if wait {
		sql += " WAIT"
	}
	if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
		return fmt.Errorf("drop replication slot %s on %s: %w", slot, connAddr(conn), err)
	}
	return nil
}

// quoteIdent quotes s as an SQL identifier: "s", with " doubled.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// quoteLiteral quotes s as an SQL string literal with standard conforming
// strings, the only kind the replication command parser knows: 's', with '
// doubled.
func quoteLiteral(s string) string {
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}
