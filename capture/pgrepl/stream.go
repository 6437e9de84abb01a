package pgrepl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tenantwal/tenantwal/schemas"
)

// PgoutputArgs returns the START_REPLICATION options for the pgoutput
// plugin: protocol version 1, the publication, and with messages the
// logical decoding messages of pg_logical_emit_message. The publication
// name is quoted, so any name works.
func PgoutputArgs(publication string, messages bool) []string {
	args := []string{
		"proto_version '1'",
		"publication_names " + quoteLiteral(publicationList(publication)),
	}
	if messages {
		args = append(args, "messages 'true'")
	}
	return args
}

// publicationList renders one name for pgoutput's publication_names, a
// comma-separated list of identifiers in which unquoted names are folded to
// lower case: a name that would not survive that is double-quoted.
func publicationList(name string) string {
	plain := name != ""
	for i, r := range name {
		if !(r >= 'a' && r <= 'z' || r == '_' || i > 0 && (r >= '0' && r <= '9' || r == '$')) {
			plain = false
			break
		}
	}
	if plain {
		return name
	}
	return quoteIdent(name)
}

// StartReplication starts logical replication from slot at start (0: from
// the slot's confirmed position) with the output plugin options
// pluginArgs, each a "name 'value'" pair as PgoutputArgs returns. It
// returns once the server has switched to CopyBoth mode; read the stream
// with (*pgconn.PgConn).ReceiveMessage. A server error is returned as a
// *pgconn.PgError, after the connection is ready for queries again.
func StartReplication(ctx context.Context, conn *pgconn.PgConn, slot string, start schemas.LSN, pluginArgs ...string) error {
	sql := "START_REPLICATION SLOT " + quoteIdent(slot) + " LOGICAL " + start.String()
	if len(pluginArgs) > 0 {
		sql += " (" + strings.Join(pluginArgs, ", ") + ")"
	}
	conn.Frontend().SendQuery(&pgproto3.Query{String: sql})
	if err := flush(ctx, conn); err != nil {
		return fmt.Errorf("start replication on %s: send: %w", connAddr(conn), err)
	}
	for {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			return fmt.Errorf("start replication on %s: %w", connAddr(conn), err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyBothResponse:
			return nil
		case *pgproto3.ErrorResponse:
			pgErr := pgconn.ErrorResponseToPgError(m)
			drainErr := drainToReady(ctx, conn)
			return errors.Join(fmt.Errorf("start replication of slot %s on %s: %w", slot, connAddr(conn), pgErr), drainErr)
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		default:
			return fmt.Errorf("start replication on %s: unexpected %T before CopyBothResponse", connAddr(conn), msg)
		}
	}
}

// drainToReady reads up to ReadyForQuery after an error.
func drainToReady(ctx context.Context, conn *pgconn.PgConn) error {
	for {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			return fmt.Errorf("wait for ready after error: %w", err)
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			return nil
		}
	}
}

// SendStandbyStatus sends a standby status update in CopyBoth mode. ctx
// bounds the write. It must not run concurrently with other use of conn.
func SendStandbyStatus(ctx context.Context, conn *pgconn.PgConn, s StandbyStatus) error {
	conn.Frontend().Send(&pgproto3.CopyData{Data: appendStandbyStatus(make([]byte, 0, 1+standbyStatusLen), s)})
	if err := flush(ctx, conn); err != nil {
		return fmt.Errorf("send standby status to %s: %w", connAddr(conn), err)
	}
	return nil
}

// flush writes the messages buffered in conn's frontend, bounded by ctx:
// its deadline, and its cancellation, which sets a past write deadline.
func flush(ctx context.Context, conn *pgconn.PgConn) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	nc := conn.Conn()
	if d, ok := ctx.Deadline(); ok {
		_ = nc.SetWriteDeadline(d) // an error shows in the write
	}
	cancelled := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = nc.SetWriteDeadline(time.Unix(1, 0))
		close(cancelled)
	})
	err := conn.Frontend().Flush()
	if !stop() {
		<-cancelled
	}
	_ = nc.SetWriteDeadline(time.Time{})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return err
}
