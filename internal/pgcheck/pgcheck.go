// Package pgcheck computes order-independent checksums of table contents, the
// oracle that restores are compared with: the row count and the MD5 of every
// row's text form, sorted and joined.
package pgcheck

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Sum is a table's (or a tenant's slice of a table's) content checksum.
type Sum struct {
	Rows int64
	MD5  string
}

func (s Sum) String() string { return fmt.Sprintf("%d rows md5 %s", s.Rows, s.MD5) }

// querier is the part of pgx.Conn, pgx.Tx and pgxpool.Pool used here.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Table checksums schema.table restricted to rows whose tenantColumn equals
// tenant; an empty tenantColumn checksums every row. Row text depends on
// the session's output settings, so compare sums taken on connections with
// the same ones.
func Table(ctx context.Context, q querier, schema, table, tenantColumn, tenant string) (Sum, error) {
	where := ""
	var args []any
	if tenantColumn != "" {
		where = pgx.Identifier{tenantColumn}.Sanitize() + ` = $1`
		args = append(args, tenant)
	}
	return Relation(ctx, q, pgx.Identifier{schema, table}.Sanitize(), where, args...)
}

// Relation checksums the rows of rel (an already quoted, qualified name)
// that satisfy where ("" for all rows).
func Relation(ctx context.Context, q querier, rel, where string, args ...any) (Sum, error) {
	sql := `SELECT count(*), coalesce(md5(string_agg(t::text, E'\n' ORDER BY t::text COLLATE "C")), '') FROM ` + rel + ` t`
	if where != "" {
		sql += ` WHERE ` + where
	}
	var s Sum
	if err := q.QueryRow(ctx, sql, args...).Scan(&s.Rows, &s.MD5); err != nil {
		return s, fmt.Errorf("checksum %s: %w", rel, err)
	}
	return s, nil
}
