package bench

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"
)

// The bench workload: every tenant has one orders table, either its rows in
// the shared pool table public.orders (tenant column tenant_id) or its own
// bridge schema tenant_<id>. A row is about 250 bytes on disk: text, numeric,
// jsonb and timestamptz (rows.go).
const (
	poolTable   = "public.orders"
	tableName   = "orders"
	txnRows     = 100 // rows per generated transaction
	batchTxns   = 10  // transactions sent in one round trip
	tenantCol   = "tenant_id"
	bridgeStart = "tenant_"
)

// orderColumnsDDL are the columns after id of every orders table (and of
// the peak RSS measure's table).
const orderColumnsDDL = `
	status     text NOT NULL,
	customer   text NOT NULL,
	email      text NOT NULL,
	amount     numeric(14,2) NOT NULL,
	attrs      jsonb NOT NULL,
	note       text,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL`

const poolDDL = `CREATE TABLE public.orders (
	tenant_id  text NOT NULL,
	id         bigint NOT NULL,` + orderColumnsDDL + `,
	PRIMARY KEY (tenant_id, id)
);
`

const bridgeDDL = `CREATE SCHEMA %[1]s;
CREATE TABLE %[1]s.orders (
	id         bigint PRIMARY KEY,` + orderColumnsDDL + `
);
`

// orderColumns are the columns rowExpr fills, after the tenant column.
const orderColumns = "id, status, customer, email, amount, attrs, note, created_at, updated_at"

// tenant is one generated tenant and its live id range [lo, hi).
type tenant struct {
	ID     string
	Bridge bool
	lo, hi int64
}

// Schema returns the schema holding the tenant's rows.
func (t *tenant) Schema() string {
	if t.Bridge {
		return bridgeStart + t.ID
	}
	return "public"
}

// seed is the tenant's seed of rowSelect: each tenant has its own
// customers.
func (t *tenant) seed() int64 {
	h := fnv.New32a()
	h.Write([]byte(t.ID))
	return int64(h.Sum32())
}

// table is the tenant's table, quoted.
func (t *tenant) table() string { return pgx.Identifier{t.Schema(), tableName}.Sanitize() }

// where selects the tenant's rows with ids in [a, b].
func (t *tenant) where(a, b int64) string {
	w := fmt.Sprintf("id BETWEEN %d AND %d", a, b)
	if !t.Bridge {
		w = tenantCol + " = " + quoteLiteral(t.ID) + " AND " + w
	}
	return w
}

func (t *tenant) insertSQL(n int64) string {
	a, b := t.hi, t.hi+n-1
	t.hi += n
	cols, sel := orderColumns, rowSelect(t.seed())
	if !t.Bridge {
		cols, sel = tenantCol+", "+cols, quoteLiteral(t.ID)+", "+sel
	}
	return fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM generate_series(%d, %d) g", t.table(), cols, sel, a, b)
}

func (t *tenant) updateSQL(rng *rand.Rand) string {
	a := t.lo + rng.Int64N(t.hi-t.lo-txnRows+1)
	return fmt.Sprintf("UPDATE %s SET status = 'paid', amount = amount + 1, attrs = attrs || jsonb_build_object('v', round(random() * 1000)), updated_at = now() WHERE %s",
		t.table(), t.where(a, a+txnRows-1))
}

func (t *tenant) deleteSQL() string {
	a := t.lo
	t.lo += txnRows
	return fmt.Sprintf("DELETE FROM %s WHERE %s", t.table(), t.where(a, a+txnRows-1))
}

// tenants builds n tenants: half pool, half bridge (at least one bridge).
// The first is the bridge tenant the bench restores and snapshots.
func tenants(n int) []*tenant {
	nb := max(1, n/2)
	out := make([]*tenant, 0, n)
	for i := range nb {
		out = append(out, &tenant{ID: fmt.Sprintf("b%03d", i), Bridge: true, lo: 1, hi: 1})
	}
	for i := range n - nb {
		out = append(out, &tenant{ID: fmt.Sprintf("p%03d", i), lo: 1, hi: 1})
	}
	return out
}

// createSchema creates the pool table and one schema per bridge tenant.
func createSchema(ctx context.Context, conn *pgx.Conn, ts []*tenant) error {
	var b strings.Builder
	b.WriteString(poolDDL)
	for _, t := range ts {
		if t.Bridge {
			fmt.Fprintf(&b, bridgeDDL, pgx.Identifier{t.Schema()}.Sanitize())
		}
	}
	if _, err := conn.Exec(ctx, b.String()); err != nil {
		return fmt.Errorf("create the bench schema: %w", err)
	}
	return nil
}

// preload inserts n rows into t in one transaction.
func preload(ctx context.Context, conn *pgx.Conn, t *tenant, n int64) error {
	if _, err := conn.Exec(ctx, t.insertSQL(n)); err != nil {
		return fmt.Errorf("preload tenant %s: %w", t.ID, err)
	}
	return nil
}

// generator writes transactions of txnRows rows: 80% inserts, 15% updates,
// 5% deletes, each transaction one tenant's; the first tenant gets a tenth
// of them (it is the one restored), the others share the rest evenly.
type generator struct {
	dsn     string
	tenants []*tenant
	workers int
	changes atomic.Int64 // rows inserted, updated or deleted
	txns    atomic.Int64
}

// newGenerator returns a generator over ts with up to workers connections.
func newGenerator(dsn string, ts []*tenant, workers int) *generator {
	workers = max(1, min(workers, len(ts)-1))
	return &generator{dsn: dsn, tenants: ts, workers: workers}
}

// run generates until at least total changes are committed, or, when rate
// is positive, paces itself to rate changes/s until ctx ends. Each worker
// owns a disjoint set of tenants.
func (g *generator) run(ctx context.Context, total int64, rate float64, seed uint64) error {
	eg, ectx := errgroup.WithContext(ctx)
	start := time.Now()
	for w := range g.workers {
		var own []*tenant
		for i, t := range g.tenants[1:] {
			if i%g.workers == w {
				own = append(own, t)
			}
		}
		whale := w == 0
		eg.Go(func() error {
			conn, err := pgconn.Connect(ectx, g.dsn)
			if err != nil {
				return fmt.Errorf("connect workload: %w", err)
			}
			defer conn.Close(context.WithoutCancel(ectx))
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for {
				if total > 0 && g.changes.Load() >= total {
					return nil
				}
				if rate > 0 {
					due := start.Add(time.Duration(float64(g.changes.Load()) / rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						select {
						case <-time.After(d):
						case <-ectx.Done():
							return nil
						}
					}
				}
				if ectx.Err() != nil {
					return nil
				}
				sql := g.batch(rng, own, whale)
				n, err := execCount(ectx, conn, sql)
				if err != nil {
					if ectx.Err() != nil && rate > 0 {
						return nil
					}
					return fmt.Errorf("workload: %w", err)
				}
				g.changes.Add(n)
				g.txns.Add(batchTxns)
			}
		})
	}
	return eg.Wait()
}

// batch builds batchTxns transactions as one simple-protocol string.
func (g *generator) batch(rng *rand.Rand, own []*tenant, whale bool) string {
	var b strings.Builder
	for range batchTxns {
		// Worker 0 owns the first tenant and gives it a tenth of all
		// transactions.
		var t *tenant
		if len(own) == 0 || whale && rng.Float64() < 0.1*float64(g.workers) {
			t = g.tenants[0]
		} else {
			t = own[rng.IntN(len(own))]
		}
		var stmt string
		switch k := rng.IntN(20); {
		case k < 3 && t.hi-t.lo >= 2*txnRows:
			stmt = t.updateSQL(rng)
		case k == 3 && t.hi-t.lo >= 2*txnRows:
			stmt = t.deleteSQL()
		default:
			stmt = t.insertSQL(txnRows)
		}
		b.WriteString("BEGIN; ")
		b.WriteString(stmt)
		b.WriteString("; COMMIT;\n")
	}
	return b.String()
}

// execCount runs sql (several statements) and returns the rows the
// INSERT, UPDATE and DELETE statements affected.
func execCount(ctx context.Context, conn *pgconn.PgConn, sql string) (int64, error) {
	res, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, r := range res {
		if r.Err != nil {
			return n, r.Err
		}
		if r.CommandTag.Insert() || r.CommandTag.Update() || r.CommandTag.Delete() {
			n += r.CommandTag.RowsAffected()
		}
	}
	return n, nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
