package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"
)

// Options shape a workload run.
type Options struct {
	// Workers is the number of concurrent connections. Default 2.
	Workers int
	// OpsPerTxn is the number of row operations in one transaction.
	// Default 4.
	OpsPerTxn int
	// MultiTenant is the share of transactions that write to two tenants.
	// Default 0.2.
	MultiTenant float64
	// Seed makes the run repeatable per worker. Default 1.
	Seed uint64
	// Gate, when set, is read-locked around every transaction, so a caller
	// that takes the write lock sees a moment where no workload transaction
	// is open (a checkpoint).
	Gate *sync.RWMutex
	// Tenants restricts the run to these tenants (default all of spec).
	Tenants []string
	// MaxTxns stops the run after this many transactions of this call
	// (0: until ctx ends).
	MaxTxns int64
}

// Stats count what a run did.
type Stats struct {
	Txns, Inserts, Updates, Deletes atomic.Int64
}

// Run writes random transactions until ctx is done or opts.MaxTxns is
// reached. It returns nil when stopped by ctx.
func Run(ctx context.Context, pool *pgxpool.Pool, spec Spec, opts Options, st *Stats) error {
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.OpsPerTxn <= 0 {
		opts.OpsPerTxn = 4
	}
	if opts.MultiTenant == 0 {
		opts.MultiTenant = 0.2
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	tenants := opts.Tenants
	if tenants == nil {
		tenants = spec.Tenants()
	}
	if len(tenants) == 0 {
		return errors.New("workload: no tenants")
	}
	var done atomic.Int64 // this run's transactions
	g, gctx := errgroup.WithContext(ctx)
	for w := range opts.Workers {
		g.Go(func() error {
			rng := rand.New(rand.NewPCG(opts.Seed, uint64(w)))
			for gctx.Err() == nil {
				if opts.MaxTxns > 0 && done.Add(1) > opts.MaxTxns {
					return nil
				}
				picks := []string{tenants[rng.IntN(len(tenants))]}
				if rng.Float64() < opts.MultiTenant {
					picks = append(picks, tenants[rng.IntN(len(tenants))])
				}
				if err := txn(gctx, pool, spec, rng, picks, opts, st); err != nil {
					if gctx.Err() != nil {
						return nil
					}
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

func txn(ctx context.Context, pool *pgxpool.Pool, spec Spec, rng *rand.Rand, tenants []string, opts Options, st *Stats) error {
	if opts.Gate != nil {
		opts.Gate.RLock()
		defer opts.Gate.RUnlock()
	}
	for attempt := 0; ; attempt++ {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			for i := range opts.OpsPerTxn {
				if err := Step(ctx, tx, spec, rng, tenants[i%len(tenants)], st); err != nil {
					return err
				}
			}
			return nil
		})
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001" || pgErr.Code == "23503") && attempt < 10 {
			continue // a deadlock, or a row another worker deleted meanwhile: retry
		}
		if err == nil {
			st.Txns.Add(1)
		}
		return err
	}
}

// Step runs one random row operation for tenant in tx.
func Step(ctx context.Context, tx pgx.Tx, spec Spec, rng *rand.Rand, tenant string, st *Stats) error {
	for _, b := range spec.Bridge {
		if b == tenant {
			return bridgeStep(ctx, tx, rng, pgx.Identifier{BridgeSchema(b)}.Sanitize(), st)
		}
	}
	return poolStep(ctx, tx, rng, tenant, st)
}

func poolStep(ctx context.Context, tx pgx.Tx, rng *rand.Rand, tenant string, st *Stats) error {
	var acct int64
	err := tx.QueryRow(ctx, `SELECT id FROM public.accounts WHERE tenant_id = $1 ORDER BY random() LIMIT 1`, tenant).Scan(&acct)
	if errors.Is(err, pgx.ErrNoRows) {
		acct = 0
	} else if err != nil {
		return fmt.Errorf("pick account: %w", err)
	}
	r := rng.IntN(100)
	switch {
	case acct == 0 || r < 15:
		st.Inserts.Add(1)
		return exec(ctx, tx, `INSERT INTO public.accounts (tenant_id, name, status, plan_id, balance, tags, profile) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			tenant, name(rng), pick(rng, "trial", "active", "suspended"), 1+rng.IntN(3), money(rng), tags(rng), profile(rng))
	case r < 55:
		st.Inserts.Add(1)
		return exec(ctx, tx, `INSERT INTO public.invoices (tenant_id, account_id, amount, lines, due, paid, note) VALUES ($1, $2, $3, $4, current_date + $5::int, $6, $7)`,
			tenant, acct, money(rng), lines(rng), rng.IntN(60), rng.IntN(4) == 0, note(rng))
	case r < 70:
		st.Updates.Add(1)
		return exec(ctx, tx, `UPDATE public.invoices SET paid = NOT paid, amount = amount + 1.25, note = $3
			WHERE tenant_id = $1 AND id = (SELECT id FROM public.invoices WHERE tenant_id = $1 AND account_id = $2 ORDER BY random() LIMIT 1)`,
			tenant, acct, note(rng))
	case r < 85:
		st.Updates.Add(1)
		return exec(ctx, tx, `UPDATE public.accounts SET balance = balance + $3, status = $4, tags = array_append(tags, $5),
			profile = jsonb_set(coalesce(profile, '{}'), '{seats}', to_jsonb($6::int)) WHERE tenant_id = $1 AND id = $2`,
			tenant, acct, money(rng), pick(rng, "trial", "active", "suspended"), pick(rng, "vip", "eu", "beta", "tax-exempt"), rng.IntN(500))
	case r < 97:
		st.Deletes.Add(1)
		return exec(ctx, tx, `DELETE FROM public.invoices WHERE tenant_id = $1 AND id = (SELECT id FROM public.invoices WHERE tenant_id = $1 ORDER BY random() LIMIT 1)`, tenant)
	default:
		st.Deletes.Add(1)
		return exec(ctx, tx, `DELETE FROM public.accounts WHERE tenant_id = $1 AND id = $2`, tenant, acct)
	}
}

func bridgeStep(ctx context.Context, tx pgx.Tx, rng *rand.Rand, schema string, st *Stats) error {
	var proj int64
	err := tx.QueryRow(ctx, `SELECT id FROM `+schema+`.projects ORDER BY random() LIMIT 1`).Scan(&proj)
	if errors.Is(err, pgx.ErrNoRows) {
		proj = 0
	} else if err != nil {
		return fmt.Errorf("pick project: %w", err)
	}
	r := rng.IntN(100)
	switch {
	case proj == 0 || r < 10:
		st.Inserts.Add(1)
		return exec(ctx, tx, `INSERT INTO `+schema+`.projects (title, budget, labels, meta) VALUES ($1, $2, $3, $4)`,
			name(rng), money(rng), tags(rng), profile(rng))
	case r < 55:
		st.Inserts.Add(1)
		return exec(ctx, tx, `INSERT INTO `+schema+`.tasks (project_id, state, estimate, points, payload) VALUES ($1, $2, make_interval(hours => $3), $4, $5)`,
			proj, pick(rng, "todo", "doing", "done"), rng.IntN(40), rng.Float64()*13, lines(rng))
	case r < 75:
		st.Updates.Add(1)
		state := pick(rng, "todo", "doing", "done")
		return exec(ctx, tx, `UPDATE `+schema+`.tasks SET state = $2, done_at = CASE WHEN $4::text = 'done' THEN clock_timestamp() END, points = $3
			WHERE id = (SELECT id FROM `+schema+`.tasks WHERE project_id = $1 ORDER BY random() LIMIT 1)`,
			proj, state, rng.Float64()*21, state)
	case r < 85:
		st.Updates.Add(1)
		return exec(ctx, tx, `UPDATE `+schema+`.projects SET budget = budget * 1.1, labels = array_append(labels, $2), updated_at = clock_timestamp() WHERE id = $1`,
			proj, pick(rng, "q1", "q2", "urgent", "später"))
	case r < 98:
		st.Deletes.Add(1)
		return exec(ctx, tx, `DELETE FROM `+schema+`.tasks WHERE id = (SELECT id FROM `+schema+`.tasks ORDER BY random() LIMIT 1)`)
	default:
		st.Deletes.Add(1)
		return exec(ctx, tx, `DELETE FROM `+schema+`.projects WHERE id = $1`, proj)
	}
}

func exec(ctx context.Context, tx pgx.Tx, sql string, args ...any) error {
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("workload: %s: %w", strings.Fields(sql)[0], err)
	}
	return nil
}

func pick(rng *rand.Rand, s ...string) string { return s[rng.IntN(len(s))] }

func name(rng *rand.Rand) string {
	return pick(rng, "Northwind", "Contoso", "Fabrikam", "Zoë's Café", "Müller & Söhne", "O'Brien Ltd", "東京商事") +
		fmt.Sprintf(" %d", rng.IntN(10000))
}

func money(rng *rand.Rand) string { return fmt.Sprintf("%d.%02d", rng.IntN(100000), rng.IntN(100)) }

func tags(rng *rand.Rand) []string {
	n := rng.IntN(4)
	out := make([]string, n)
	for i := range out {
		out[i] = pick(rng, "vip", "eu", "us", "beta", "has space", `quo"te`, "comma,inside")
	}
	return out
}

func profile(rng *rand.Rand) string {
	return fmt.Sprintf(`{"seats": %d, "contact": {"email": "ops%d@example.com", "phone": null}, "flags": [%t, %t], "score": %d.%d}`,
		rng.IntN(500), rng.IntN(1000), rng.IntN(2) == 0, rng.IntN(2) == 0, rng.IntN(100), rng.IntN(1000))
}

func lines(rng *rand.Rand) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range 1 + rng.IntN(3) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"sku": "SKU-%05d", "qty": %d, "price": %d.%02d, "desc": "line\twith \"escapes\" \\ and ünicode"}`,
			rng.IntN(99999), 1+rng.IntN(9), rng.IntN(1000), rng.IntN(100))
	}
	b.WriteByte(']')
	return b.String()
}

func note(rng *rand.Rand) *string {
	if rng.IntN(3) == 0 {
		return nil
	}
	s := pick(rng, "", "net 30", "multi\nline\nnote", `back\slash`, "tab\there", "emoji 🚀", strings.Repeat("long text ", 40))
	return &s
}
