package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tenantwal/tenantwal/capture"
	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/bus"
	"github.com/tenantwal/tenantwal/internal/objstore"
)

// storeFlags select the archive.
type storeFlags struct {
	url string
	s3  objstore.S3Options
}

func (f *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "store", "file://./tenantwal-archive", "archive location: file://DIR or s3://BUCKET/PREFIX")
	fs.StringVar(&f.s3.Endpoint, "s3-endpoint", "", "S3 endpoint URL for S3-compatible servers, e.g. http://127.0.0.1:9000 (default: AWS)")
	fs.StringVar(&f.s3.Region, "s3-region", "us-east-1", "S3 region")
	fs.BoolVar(&f.s3.PathStyle, "s3-path-style", false, "use path-style S3 addressing (MinIO and most S3-compatible servers)")
	fs.StringVar(&f.s3.AccessKey, "s3-access-key", "", "S3 access key (default: the AWS credential chain, e.g. AWS_ACCESS_KEY_ID)")
	fs.StringVar(&f.s3.SecretKey, "s3-secret-key", "", "S3 secret key")
}

func (f *storeFlags) open(ctx context.Context) (objstore.Store, error) {
	s, err := objstore.Open(ctx, f.url, f.s3)
	if err != nil {
		return nil, fmt.Errorf("open archive %s: %w", f.url, err)
	}
	return s, nil
}

// busFlags select the NATS JetStream server.
type busFlags struct {
	cfg      bus.Config
	storeDir string
}

func (f *busFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cfg.URL, "nats", "", "NATS server URL with JetStream, e.g. nats://127.0.0.1:4222 (default: an embedded server)")
	fs.StringVar(&f.storeDir, "nats-dir", "./tenantwal-nats", "the embedded NATS server's JetStream directory")
	fs.StringVar(&f.cfg.Credentials, "nats-creds", "", "NATS credentials (.creds) file")
	fs.StringVar(&f.cfg.Stream, "stream", bus.DefaultStream, "JetStream stream name")
	fs.IntVar(&f.cfg.Partitions, "partitions", bus.DefaultPartitions, "number of partitions (subjects); fixed once the stream exists")
	fs.DurationVar(&f.cfg.DuplicateWindow, "dedup-window", bus.DefaultDuplicateWindow, "JetStream duplicate window")
}

// open connects to the NATS server given by --nats, or starts the embedded
// one. embeddable says whether the command could run without --nats, which
// the error for an unreachable server then suggests.
func (f *busFlags) open(ctx context.Context, log *slog.Logger, embeddable bool) (*bus.Bus, error) {
	cfg := f.cfg
	if cfg.URL == "" {
		abs, err := filepath.Abs(f.storeDir)
		if err != nil {
			return nil, err
		}
		cfg.StoreDir = abs
		cfg.SyncAlways = true
	}
	b, err := bus.Open(ctx, cfg, log)
	var ce *bus.ConnectError
	switch {
	case err == nil:
		return b, nil
	case cfg.URL != "" && errors.As(err, &ce):
		alt := ""
		if embeddable {
			alt = ", or omit --nats to use the embedded server"
		}
		return nil, fmt.Errorf("connect to NATS at %s: %w; check --nats / %s and that nats-server is running with JetStream (nats-server -js)%s",
			ce.URL, ce.Err, envName("nats"), alt)
	default:
		return nil, fmt.Errorf("open NATS JetStream: %w", err)
	}
}

// routeFlags configure tenant routing.
type routeFlags struct {
	cfg          route.Config
	tableColumns string
}

func (f *routeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cfg.Model, "model", route.Pool, "tenancy model: pool (tenant column), bridge (schema per tenant) or mixed (both)")
	fs.StringVar(&f.cfg.TenantColumn, "tenant-column", "tenant_id", "pool model: the tenant column")
	fs.StringVar(&f.tableColumns, "table-tenant-columns", "", "pool model: per-table tenant columns, schema.table=column[,...]")
	fs.StringVar(&f.cfg.SchemaPattern, "schema-pattern", `^tenant_(.+)$`, "bridge model: schema name pattern; its first group is the tenant id")
	fs.StringVar(&f.cfg.Shared, "shared", route.SharedExclude, "tables without a tenant: exclude, or archive them under the _shared pseudo-tenant")
}

func (f *routeFlags) config() (route.Config, error) {
	cfg := f.cfg
	if f.tableColumns != "" {
		cfg.TableColumns = map[string]string{}
		for _, kv := range strings.Split(f.tableColumns, ",") {
			t, c, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || t == "" || c == "" || !strings.Contains(t, ".") {
				return cfg, fmt.Errorf("--table-tenant-columns %q: use schema.table=column, comma-separated", kv)
			}
			cfg.TableColumns[t] = c
		}
	}
	return cfg, cfg.Validate()
}

// sourceFlags configure the source database and capture.
type sourceFlags struct {
	cfg    capture.Config
	tables string
	route  routeFlags
}

func (f *sourceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cfg.DSN, "dsn", "", "source PostgreSQL connection string, e.g. postgres://user@host:5432/db")
	fs.StringVar(&f.cfg.Slot, "slot", "tenantwal", "logical replication slot name")
	fs.StringVar(&f.cfg.Publication, "publication", "tenantwal", "publication name")
	fs.StringVar(&f.tables, "tables", "", "publish only these schema.table names (comma-separated; default all tables)")
	fs.DurationVar(&f.cfg.Heartbeat, "heartbeat", 10*time.Second, "how often an idle source is nudged so the slot and the archive advance")
	fs.DurationVar(&f.cfg.ReceiveTimeout, "receive-timeout", 0, "reconnect after the replication connection is silent this long (default: the server's wal_sender_timeout)")
	fs.BoolVar(&f.cfg.NoDDLTrigger, "no-ddl-trigger", false, "init: do not install the DDL event triggers (without them a table's new shape is archived with its next change, and DROP TABLE is not recorded)")
	fs.BoolVar(&f.cfg.Rebaseline, "rebaseline", false, "if the source is another cluster than the archive's (system identifier), record the gap and take a fresh baseline instead of stopping")
	f.route.register(fs)
}

func (f *sourceFlags) config() (capture.Config, error) {
	cfg := f.cfg
	if cfg.DSN == "" {
		return cfg, errors.New("no source database: pass --dsn or set TENANTWAL_DSN")
	}
	r, err := f.route.config()
	if err != nil {
		return cfg, err
	}
	cfg.Route = r
	for _, t := range strings.Split(f.tables, ",") {
		if t = strings.TrimSpace(t); t != "" {
			cfg.Tables = append(cfg.Tables, t)
		}
	}
	return cfg, nil
}

// commonFlags are the logging and metrics flags.
type commonFlags struct {
	logLevel    string
	metricsAddr string
}

func (f *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics on this address, e.g. 127.0.0.1:9187 (default off)")
}

// serveMetrics starts the metrics endpoint when asked; the returned
// registerer is nil when metrics are off.
func (f *commonFlags) serveMetrics(ctx context.Context, log *slog.Logger) (prometheus.Registerer, error) {
	if f.metricsAddr == "" {
		return nil, nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", f.metricsAddr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String())
	return reg, nil
}

// connectPG opens a SQL connection with an error that names the server and
// the fix.
func connectPG(ctx context.Context, dsn, flagName string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("--%s: not a PostgreSQL connection string: %w", flagName, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s:%d (database %q): %w; check --%s / %s and that the server is running",
			cfg.Host, cfg.Port, cfg.Database, err, flagName, envName(flagName))
	}
	return conn, nil
}

// pingPG checks that the source accepts connections before a command does
// any work, so an unreachable server is reported, within connectPG's
// timeout, with the flag and variable to fix.
func pingPG(ctx context.Context, dsn, flagName string) error {
	conn, err := connectPG(ctx, dsn, flagName)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}
