package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/internal/pgcheck"
	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// typesDDL is a bridge tenant's table with one column per built-in type
// family; typesRows are edge values, inserted before capture starts (the
// snapshot path) and again after (the change path).
const typesDDL = `
CREATE SCHEMA tenant_types;
CREATE TYPE tenant_types.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN tenant_types.posint AS integer CHECK (VALUE > 0);
CREATE TYPE tenant_types.pair AS (a integer, b text);
CREATE TABLE tenant_types.t (
	id serial PRIMARY KEY,
	i2 smallint, i4 integer, i8 bigint, n numeric, n2 numeric(10,3), f4 real, f8 double precision,
	b boolean, tx text, vc varchar(20), ch char(5), by bytea,
	d date, ts timestamp, tz timestamptz, tm time, ttz timetz, iv interval,
	j json, jb jsonb, u uuid, ip inet, cidr_ cidr, mac macaddr, mac8 macaddr8,
	bits bit(4), vbits bit varying(10), m money, x xml, tsv tsvector,
	ia integer[], ta text[][], md integer[][],
	e tenant_types.mood, dom tenant_types.posint, comp tenant_types.pair,
	r int4range, tr tstzrange, mr int4multirange
);
`

var typesRows = []string{
	`INSERT INTO tenant_types.t (i2, i4, i8, n, n2, f4, f8, b, tx, vc, ch, by, d, ts, tz, tm, ttz, iv, j, jb, u, ip, cidr_, mac, mac8,
		bits, vbits, m, x, tsv, ia, ta, md, e, dom, comp, r, tr, mr) VALUES
	(-32768, -2147483648, -9223372036854775808, 'NaN', -0.001, 'NaN', '-0', false, '', '', 'a', '\x',
	 '4713-01-01 BC', '-infinity', 'infinity', '00:00', '24:00:00+14', '-178000000 years',
	 '{"a": 1, "a": 2}', '{}', '00000000-0000-0000-0000-000000000000', '::1', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
	 B'0000', B'', '-92233720368547758.08', '<a>x &amp; y</a>', 'a:1 b:2', '{NULL,1}', '{{a,NULL},{"b c","d\"e"}}', '[0:1][-1:0]={{1,2},{3,4}}',
	 'sad', 1, ROW(NULL, ''), 'empty', '[2026-01-01,)', '{[1,3),[5,7)}')`,
	`INSERT INTO tenant_types.t (i2, i4, i8, n, n2, f4, f8, b, tx, vc, ch, by, d, ts, tz, tm, ttz, iv, j, jb, u, ip, cidr_, mac, mac8,
		bits, vbits, m, x, tsv, ia, ta, md, e, dom, comp, r, tr, mr) VALUES
	(32767, 2147483647, 9223372036854775807, ('1' || repeat('0', 999) || '.' || repeat('9', 40))::numeric, 1234567.891, 'Infinity', '-Infinity', true,
	 E'tab\there\nnewline \\ backslash ü 🚀 "quotes"', 'x', 'abcde', decode(repeat('00ff7f80', 64), 'hex'),
	 '294276-12-31', '2000-02-29 23:59:59.999999', '1999-12-31 23:59:59.999999+05:30', '23:59:59.999999', '12:00-03', '1 year 2 mons -3 days 04:05:06.789',
	 '[1, 2.50, "x"]', '{"k": [1, {"n": null}], "u": "\u00fc"}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2001:db8::ff/64', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', 'ff:ff:ff:ff:ff:ff:ff:ff',
	 B'1111', B'1010101', '92233720368547758.07', '<?xml version="1.0"?><r/>', 'fat:1A cat:2B', '{1,2,3}', '{{x}}', '{}',
	 'happy', 2147483647, ROW(7, 'p,q'), '[1,10)', '[2026-01-01 00:00+00,2026-02-01 00:00+00)', '{}')`,
	`INSERT INTO tenant_types.t DEFAULT VALUES`,
	`INSERT INTO tenant_types.t (f8, n, tx, by) SELECT 1.0/3, 1e-300::float8::numeric, repeat('ü', 3000), decode(string_agg(lpad(to_hex(g), 2, '0'), ''), 'hex') FROM generate_series(0, 255) g`,
}

// TestValuesRoundTripExactly archives every built-in type family with edge
// values, under unusual session settings of the database, through the
// snapshot and the change path, and restores them with equal checksums.
func TestValuesRoundTripExactly(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDB(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, dsn, typesDDL, strings.Join(typesRows, ";\n"),
		`ALTER DATABASE `+pgx.Identifier{db}.Sanitize()+` SET DateStyle = 'SQL, DMY'`,
		`ALTER DATABASE `+pgx.Identifier{db}.Sanitize()+` SET TimeZone = 'Pacific/Chatham'`,
		`ALTER DATABASE `+pgx.Identifier{db}.Sanitize()+` SET IntervalStyle = 'sql_standard'`,
		`ALTER DATABASE `+pgx.Identifier{db}.Sanitize()+` SET extra_float_digits = -15`,
		`ALTER DATABASE `+pgx.Identifier{db}.Sanitize()+` SET bytea_output = 'escape'`,
		`ALTER DATABASE `+pgx.Identifier{db}.Sanitize()+` SET lc_monetary = 'C'`)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store, err := objstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := startPipeline(t, dsn, store, route.Config{Model: route.Bridge})
	waitFor(t, time.Minute, "the initial snapshot", func() bool {
		_, err := catalog.ReadBaseline(ctx, store)
		return err == nil
	})
	for _, r := range typesRows {
		if _, err := pool.Exec(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Updates that leave the large values unchanged (TOAST) and change others.
	if _, err := pool.Exec(ctx, `UPDATE tenant_types.t SET i4 = coalesce(i4, 0) / 2 WHERE id % 2 = 0`); err != nil {
		t.Fatal(err)
	}
	var lsnText string
	if err := pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsnText); err != nil {
		t.Fatal(err)
	}
	lsn, _ := schemas.ParseLSN(lsnText)
	want, err := pgcheck.Table(ctx, pool, "tenant_types", "t", "", "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the archive to pass the updates", func() bool {
		ten, err := catalog.LoadTenant(ctx, store, "types")
		return err == nil && ten.Range.ToLSN >= lsn
	})
	p.Stop(t)
	restoreAndCompare(t, pool, store, "types", replayer.Target{LSN: lsn}, map[string]pgcheck.Sum{"tenant_types.t": want})
}
