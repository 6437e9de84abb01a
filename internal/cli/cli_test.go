package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantwal/tenantwal/internal/cli"
	"github.com/tenantwal/tenantwal/internal/pgcheck"
	"github.com/tenantwal/tenantwal/internal/pgserver"
	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/internal/s3test"
	"github.com/tenantwal/tenantwal/internal/workload"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// syncBuffer is a bytes.Buffer safe for a command running in a goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// result is one finished command.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// tenantwal runs the command line args with a timeout.
func tenantwal(t testing.TB, timeout time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var stdout, stderr syncBuffer
	start := time.Now()
	code := cli.Main(ctx, args, &stdout, &stderr)
	r := result{code: code, stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	if testing.Verbose() {
		t.Logf("tenantwal %s: exit %d in %s\n%s%s", strings.Join(args, " "), code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
	}
	if ctx.Err() != nil {
		t.Fatalf("tenantwal %s: still running after %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), timeout, r.stdout, r.stderr)
	}
	return r
}

// want fails t unless r exited with code and stderr (or stdout for code 0)
// contains every one of subs.
func (r result) want(t testing.TB, code int, subs ...string) {
	t.Helper()
	out := r.stderr
	if code == 0 {
		out = r.stdout
	}
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range subs {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

// closedPort returns a 127.0.0.1 port nothing listens on.
func closedPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// queryInt runs a query returning one integer.
func queryInt(t testing.TB, dsn, sql string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestUsage(t *testing.T) {
	t.Parallel()
	tenantwal(t, 10*time.Second).want(t, 2)
	r := tenantwal(t, 10*time.Second)
	for _, s := range []string{"Usage: tenantwal <command>", "restore", "TENANTWAL_"} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("usage lacks %q:\n%s", s, r.stderr)
		}
	}
	tenantwal(t, 10*time.Second, "frobnicate").want(t, 2, `unknown command "frobnicate"`, "Usage: tenantwal")
	tenantwal(t, 10*time.Second, "help").want(t, 0)
	tenantwal(t, 10*time.Second, "version").want(t, 0, "tenantwal ")
	tenantwal(t, 10*time.Second, "ls", "--no-such-flag").want(t, 2, "-no-such-flag")
	tenantwal(t, 10*time.Second, "ls", "-h").want(t, 0)
	tenantwal(t, 10*time.Second, "ls", "--store", "file://"+t.TempDir(), "extra").want(t, 2, `unexpected argument "extra"`)
}

func TestInitWalLevelReplica(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, pgserver.Options{Settings: map[string]string{"wal_level": "replica", "fsync": "off"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	dsn := srv.DSN("postgres")
	tenantwal(t, 30*time.Second, "init", "--dsn", dsn).want(t, 1,
		`wal_level is "replica"`, "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL", "nothing was created")
	if n := queryInt(t, dsn, "SELECT count(*)::int FROM pg_publication"); n != 0 {
		t.Errorf("%d publication(s) created", n)
	}
}

func TestInitReplicaIdentity(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDB(t)
	pgtest.Exec(t, dsn, `CREATE TABLE public.items (id bigint PRIMARY KEY, tenant_id text NOT NULL, v text)`)
	tenantwal(t, 30*time.Second, "init", "--dsn", dsn, "--model", "pool").want(t, 1,
		`the tenant column "tenant_id" is not in the replica identity`,
		`ALTER TABLE "public"."items" REPLICA IDENTITY FULL;`,
		"nothing was created")
	if n := queryInt(t, dsn, "SELECT count(*)::int FROM pg_publication"); n != 0 {
		t.Errorf("%d publication(s) created", n)
	}
	// The fix works.
	pgtest.Exec(t, dsn, `ALTER TABLE "public"."items" REPLICA IDENTITY FULL`)
	tenantwal(t, 30*time.Second, "init", "--dsn", dsn, "--model", "pool", "--publication", "tw_items").want(t, 0, `publication "tw_items" exists`)
	if n := queryInt(t, dsn, "SELECT count(*)::int FROM pg_publication WHERE pubname = 'tw_items'"); n != 1 {
		t.Errorf("%d publication(s) tw_items", n)
	}
}

func TestUnreachablePostgres(t *testing.T) {
	t.Parallel()
	port := closedPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	dsn := fmt.Sprintf("postgres://postgres@%s/x", addr)
	store := "file://" + t.TempDir()
	for _, args := range [][]string{
		{"init", "--dsn", dsn},
		{"restore", "--store", store, "--tenant", "acme", "--at", "2026-01-02T03:04:05Z", "--dsn", dsn},
		{"run", "--store", store, "--nats-dir", t.TempDir(), "--dsn", dsn},
	} {
		t.Run(args[0], func(t *testing.T) {
			r := tenantwal(t, 30*time.Second, args...)
			r.want(t, 1, "connect to PostgreSQL at "+addr, "--dsn", "TENANTWAL_DSN", "that the server is running")
			if r.took > 20*time.Second {
				t.Errorf("took %s", r.took)
			}
		})
	}
	t.Run("target-dsn", func(t *testing.T) {
		tenantwal(t, 30*time.Second, "restore", "--store", store, "--tenant", "acme", "--at", "2026-01-02T03:04:05Z",
			"--dsn", pgtest.Server().DSN("postgres"), "--target-dsn", dsn).want(t, 1, "connect to PostgreSQL at "+addr, "--target-dsn", "TENANTWAL_TARGET_DSN")
	})
	t.Run("not a dsn", func(t *testing.T) {
		tenantwal(t, 30*time.Second, "init", "--dsn", "postgres://x:notaport/db").want(t, 1, "--dsn")
	})
}

// TestEnvironment runs without t.Parallel: it sets TENANTWAL_* variables.
func TestEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TENANTWAL_STORE", "file://"+dir)
	tenantwal(t, 10*time.Second, "ls").want(t, 0, "no tenants archived in file://"+filepath.ToSlash(dir)+" yet")
	other := t.TempDir()
	tenantwal(t, 10*time.Second, "ls", "--store", "file://"+other).want(t, 0, "no tenants archived in file://"+filepath.ToSlash(other)+" yet")

	addr := fmt.Sprintf("127.0.0.1:%d", closedPort(t))
	t.Setenv("TENANTWAL_DSN", "postgres://postgres@"+addr+"/x")
	tenantwal(t, 30*time.Second, "init").want(t, 1, "connect to PostgreSQL at "+addr)

	// The brief's command line: credentials from the AWS variables, the
	// endpoint from TENANTWAL_S3_ENDPOINT.
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", closedPort(t))
	t.Setenv("AWS_ACCESS_KEY_ID", "k")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	t.Setenv("TENANTWAL_S3_ENDPOINT", endpoint)
	tenantwal(t, time.Minute, "ls", "--store", "s3://b/p", "--s3-path-style").want(t, 1, `open s3 bucket "b" at `+endpoint, "--s3-endpoint")

	t.Setenv("TENANTWAL_HEARTBEAT", "soon")
	tenantwal(t, 10*time.Second, "init").want(t, 1, `TENANTWAL_HEARTBEAT="soon"`, "--heartbeat", "a duration such as 500ms")
}

func TestUnreachableNATS(t *testing.T) {
	t.Parallel()
	store := "file://" + t.TempDir()
	dsn := pgtest.Server().DSN("postgres")
	url := fmt.Sprintf("nats://127.0.0.1:%d", closedPort(t))
	for _, args := range [][]string{
		{"capture", "--dsn", dsn},
		{"archive"},
		{"run", "--dsn", dsn},
	} {
		t.Run(args[0], func(t *testing.T) {
			r := tenantwal(t, 30*time.Second, append(args, "--store", store, "--nats", url)...)
			r.want(t, 1, "connect to NATS at "+url, "check --nats / TENANTWAL_NATS", "nats-server -js")
			// Only run can do without an external server.
			if omit := strings.Contains(r.stderr, "omit --nats"); omit != (args[0] == "run") {
				t.Errorf("suggests omitting --nats: %v, want %v", omit, args[0] == "run")
			}
			if r.took > 10*time.Second {
				t.Errorf("took %s", r.took)
			}
		})
	}
	tenantwal(t, 30*time.Second, "capture", "--dsn", dsn, "--store", store).want(t, 1, "pass --nats nats://", "`tenantwal run`")
	tenantwal(t, 30*time.Second, "archive", "--store", store).want(t, 1, "pass --nats nats://", "`tenantwal run`")
}

func TestUnreachableS3(t *testing.T) {
	t.Parallel()
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", closedPort(t))
	r := tenantwal(t, 60*time.Second, "ls", "--store", "s3://b/p", "--s3-endpoint", endpoint, "--s3-path-style",
		"--s3-access-key", "k", "--s3-secret-key", "s")
	r.want(t, 1, `open s3 bucket "b" at `+endpoint, "--s3-endpoint")
	if r.took > 20*time.Second {
		t.Errorf("took %s", r.took)
	}
}

func TestS3(t *testing.T) {
	t.Parallel()
	endpoint, key, secret := s3test.Start(t)
	bucket := s3test.Bucket(t)
	s3 := []string{"--s3-endpoint", endpoint, "--s3-path-style", "--s3-access-key", key, "--s3-secret-key", secret}
	tenantwal(t, 30*time.Second, append([]string{"ls", "--store", "s3://" + bucket + "/archive"}, s3...)...).
		want(t, 0, "no tenants archived in s3://"+bucket+"/archive yet")
	r := tenantwal(t, 30*time.Second, append([]string{"ls", "--json", "--store", "s3://" + bucket + "/archive"}, s3...)...)
	r.want(t, 0)
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("ls --json on an empty archive: %q", r.stdout)
	}
	tenantwal(t, 30*time.Second, append([]string{"ls", "--store", "s3://no-such-bucket-tw/archive"}, s3...)...).
		want(t, 1, `open s3 bucket "no-such-bucket-tw" at `+endpoint, "that the bucket exists")
}

// lsEntry is the part of `ls --json` the tests read.
type lsEntry struct {
	Tenant    string    `json:"tenant"`
	FromTime  time.Time `json:"from_time"`
	ToTime    time.Time `json:"to_time"`
	Snapshots int       `json:"snapshots"`
	Segments  int       `json:"segments"`
	Error     string    `json:"error"`
}

func lsJSON(t testing.TB, store string) map[string]lsEntry {
	t.Helper()
	r := tenantwal(t, 30*time.Second, "ls", "--json", "--store", store)
	r.want(t, 0)
	var list []lsEntry
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("ls --json: %v\n%s", err, r.stdout)
	}
	out := map[string]lsEntry{}
	for _, e := range list {
		out[e.Tenant] = e
	}
	return out
}

// poll calls cond until it holds, failing t after timeout.
func poll(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("waiting for %s: %v", what, t.Context().Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var roundTripSpec = workload.Spec{Pool: []string{"acme", "globex", "umbrella corp/eu.west"}, Bridge: []string{"hooli"}}

// sums checksums every table of tenant.
func sums(t testing.TB, ctx context.Context, pool *pgxpool.Pool, tenant string) map[string]pgcheck.Sum {
	t.Helper()
	out := map[string]pgcheck.Sum{}
	for _, tb := range roundTripSpec.Tables(tenant) {
		s, err := pgcheck.Table(ctx, pool, tb.Schema, tb.Name, tb.TenantColumn, tenant)
		if err != nil {
			t.Fatal(err)
		}
		out[tb.QualifiedName()] = s
	}
	return out
}

// restoredLine is "  public.accounts  ->  "tw_..."."accounts"  12 rows".
var restoredLine = regexp.MustCompile(`(?m)^  (\S+)\s+-> (\S+)\s+(\d+) rows$`)

// checkRestore checks a restore's output against the tenant's checksums.
func checkRestore(t testing.TB, ctx context.Context, pool *pgxpool.Pool, r result, tenant string, want map[string]pgcheck.Sum) {
	t.Helper()
	m := regexp.MustCompile(`into schema (\S+): (\d+) table\(s\), (\d+) row\(s\)`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("restore output names no schema and row count:\n%s", r.stdout)
	}
	lines := restoredLine.FindAllStringSubmatch(r.stdout, -1)
	if len(lines) != len(want) || m[2] != strconv.Itoa(len(want)) {
		t.Fatalf("restored %s tables (%d lines), want %d:\n%s", m[2], len(lines), len(want), r.stdout)
	}
	var total int64
	for _, l := range lines {
		w, ok := want[l[1]]
		if !ok {
			t.Errorf("restored an unexpected table %s", l[1])
			continue
		}
		if !strings.HasPrefix(l[2], pgx.Identifier{m[1]}.Sanitize()+".") {
			t.Errorf("table %s restored to %s, outside schema %s", l[1], l[2], m[1])
		}
		got, err := pgcheck.Relation(ctx, pool, l[2], "")
		if err != nil {
			t.Fatal(err)
		}
		if got != w {
			t.Errorf("tenant %q: %s restored as %s, source had %s", tenant, l[1], got, w)
		}
		if l[3] != strconv.FormatInt(w.Rows, 10) {
			t.Errorf("tenant %q: %s: output says %s rows, source had %d", tenant, l[1], l[3], w.Rows)
		}
		total += w.Rows
	}
	if m[3] != strconv.FormatInt(total, 10) {
		t.Errorf("output says %s rows in all, want %d", m[3], total)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	dsn := pgtest.NewDB(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := workload.Setup(ctx, conn, roundTripSpec); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// MaxTxns counts the transactions in Stats, so each run gets its own.
	writes := func(n int64, seed uint64) {
		t.Helper()
		if err := workload.Run(ctx, pool, roundTripSpec, workload.Options{MaxTxns: n, Seed: seed}, &workload.Stats{}); err != nil {
			t.Fatal(err)
		}
	}
	writes(100, 1)

	dir := t.TempDir()
	store := "file://" + dir
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var runOut, runErr syncBuffer
	runDone := make(chan int, 1)
	go func() {
		runDone <- cli.Main(runCtx, []string{"run", "--dsn", dsn, "--store", store, "--nats-dir", t.TempDir(),
			"--slot", pgtest.RandomName("tw_"), "--model", "mixed", "--heartbeat", "200ms", "--flush-interval", "200ms",
			"--spill-dir", t.TempDir(), "--log-level", "warn"}, &runOut, &runErr)
	}()
	running := func() {
		t.Helper()
		select {
		case code := <-runDone:
			t.Fatalf("tenantwal run exited with %d\nstderr:\n%s", code, runErr.String())
		default:
		}
	}
	poll(t, time.Minute, "the initial snapshot of acme", func() bool {
		running()
		e, ok := lsJSON(t, store)["acme"]
		return ok && e.Error == "" && !e.FromTime.IsZero()
	})

	writes(100, 2)
	want := map[string]map[string]pgcheck.Sum{"acme": sums(t, ctx, pool, "acme"), "hooli": sums(t, ctx, pool, "hooli")}
	var at time.Time
	if err := pool.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&at); err != nil {
		t.Fatal(err)
	}
	writes(50, 3)
	if now := sums(t, ctx, pool, "acme"); fmt.Sprint(now) == fmt.Sprint(want["acme"]) {
		t.Fatal("the writes after the restore point did not change acme: the restore would prove nothing")
	}
	var rng lsEntry
	poll(t, time.Minute, "the archive to pass the restore point", func() bool {
		running()
		ls := lsJSON(t, store)
		rng = ls["acme"]
		return rng.ToTime.After(at) && ls["hooli"].ToTime.After(at)
	})
	if rng.FromTime.After(at) {
		t.Fatalf("acme is restorable from %s, after the restore point %s", rng.FromTime, at)
	}
	// While run archives: a sample restore of acme at a fresh snapshot
	// equals the source.
	tenantwal(t, 2*time.Minute, "verify", "--store", store, "--sample-restore", "--dsn", dsn, "--model", "mixed", "--tenant", "acme").
		want(t, 0, `sample restore of tenant "acme" at LSN `, "ok   public.accounts", "OK: the sample restore equals the source row for row")
	tenantwal(t, 30*time.Second, "verify", "--store", store, "--sample-restore").want(t, 1, "--sample-restore needs the source database", "--dsn")
	stopRun()
	select {
	case code := <-runDone:
		if code != 0 {
			t.Fatalf("tenantwal run stopped with %d\nstderr:\n%s", code, runErr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tenantwal run did not stop within 30s of cancellation")
	}

	atText := at.UTC().Format(time.RFC3339Nano)
	restore := func(args ...string) result {
		return tenantwal(t, time.Minute, append([]string{"restore", "--store", store, "--dsn", dsn}, args...)...)
	}
	for _, tenant := range []string{"acme", "hooli"} {
		r := restore("--tenant", tenant, "--at", atText)
		r.want(t, 0, fmt.Sprintf("restored tenant %q at %s into schema ", tenant, atText))
		checkRestore(t, ctx, pool, r, tenant, want[tenant])
	}

	t.Run("schema exists", func(t *testing.T) {
		restore("--tenant", "acme", "--at", atText).want(t, 1, "already exists", "drop it or choose another with --schema")
	})
	t.Run("explicit schema", func(t *testing.T) {
		r := restore("--tenant", "acme", "--at", atText, "--schema", "acme_again")
		r.want(t, 0, "into schema acme_again:")
		checkRestore(t, ctx, pool, r, "acme", want["acme"])
	})
	t.Run("unknown tenant", func(t *testing.T) {
		restore("--tenant", "nobody", "--at", atText).want(t, 1, `unknown tenant "nobody"`, "tenantwal ls")
	})
	t.Run("no tenant", func(t *testing.T) {
		restore("--at", atText).want(t, 1, "pass --tenant", "tenantwal ls")
	})
	t.Run("out of range", func(t *testing.T) {
		early := rng.FromTime.Add(-time.Hour).UTC().Format(time.RFC3339Nano)
		restore("--tenant", "acme", "--at", early).want(t, 1, "outside the restorable range",
			"can be restored to "+rng.FromTime.UTC().Format(time.RFC3339Nano)+" (LSN ", "tenantwal ls --tenant acme")
		late := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
		restore("--tenant", "acme", "--at", late).want(t, 1, "outside the restorable range", "can be restored to ")
	})
	t.Run("bad time", func(t *testing.T) {
		restore("--tenant", "acme", "--at", "yesterday").want(t, 1, `--at "yesterday": not a time`, "RFC 3339", "2026-11-23T10:15:00Z")
	})
	t.Run("no restore point", func(t *testing.T) {
		restore("--tenant", "acme").want(t, 1, "--at TIME", "--lsn X/Y")
	})
	t.Run("no database", func(t *testing.T) {
		tenantwal(t, 30*time.Second, "restore", "--store", store, "--tenant", "acme", "--at", atText).want(t, 1, "pass --dsn")
	})
	t.Run("ls tenant", func(t *testing.T) {
		r := tenantwal(t, 30*time.Second, "ls", "--store", store, "--tenant", "acme")
		r.want(t, 0, "TENANT", "RESTORABLE FROM", "SEQ", "KIND", "LSN RANGE", "COMPLETE TO")
		if !regexp.MustCompile(`(?m)^\d+\s+snapshot\s+\S+ \.\. \S+`).MatchString(r.stdout) {
			t.Errorf("ls --tenant acme shows no snapshot line:\n%s", r.stdout)
		}
		if !regexp.MustCompile(`(?m)^\d+\s+segment\s+\S+ \.\. \S+\s+\S+ \.\. \S+`).MatchString(r.stdout) {
			t.Errorf("ls --tenant acme shows no segment line with commit times:\n%s", r.stdout)
		}
		tenantwal(t, 30*time.Second, "ls", "--store", store, "--tenant", "nobody").want(t, 1, `unknown tenant "nobody"`)
	})
	t.Run("ls", func(t *testing.T) {
		r := tenantwal(t, 30*time.Second, "ls", "--store", store)
		r.want(t, 0, "TENANT", "acme", "globex", "hooli", "umbrella corp/eu.west")
		ls := lsJSON(t, store)
		for _, tenant := range roundTripSpec.Tenants() {
			e, ok := ls[tenant]
			if !ok || e.Error != "" || e.FromTime.IsZero() || e.ToTime.Before(e.FromTime) || e.Snapshots == 0 {
				t.Errorf("ls --json: tenant %q: %+v (present %v)", tenant, e, ok)
			}
		}
		r = tenantwal(t, 30*time.Second, "ls", "--json", "--store", store, "--tenant", "acme")
		r.want(t, 0)
		var one struct {
			lsEntry
			Entries []json.RawMessage `json:"entries"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &one); err != nil {
			t.Fatalf("ls --json --tenant acme: %v\n%s", err, r.stdout)
		}
		if one.Tenant != "acme" || len(one.Entries) != one.Snapshots+one.Segments || one.Segments == 0 {
			t.Errorf("ls --json --tenant acme: %+v with %d entries", one.lsEntry, len(one.Entries))
		}
	})
}

func TestDemo(t *testing.T) {
	t.Parallel()
	tenantwal(t, 2*time.Minute, "demo", "--duration", "2s").want(t, 0,
		"every restored table equals", "timings:")
}
