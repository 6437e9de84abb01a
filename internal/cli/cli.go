// Package cli is tenantwal's command line: it reads flags and TENANTWAL_*
// environment variables, builds each package's configuration and runs it.
// It is the only package that prints to the terminal.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"time"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what every command gets: its output streams.
type env struct {
	stdout, stderr io.Writer
}

func commands() []command {
	return []command{
		{"demo", "run the whole pipeline on a throwaway PostgreSQL: workload, accident, restore", runDemo},
		{"init", "check the source and create the publication (and nothing else on failure)", runInit},
		{"run", "capture and archive in one process (embedded NATS unless --nats is given)", runRun},
		{"capture", "stream the source's changes into NATS JetStream (needs --nats)", runCapture},
		{"archive", "write JetStream changes to per-tenant Parquet objects and manifests (needs --nats)", runArchive},
		{"restore", "rebuild one tenant at a time or LSN, side by side", runRestore},
		{"verify", "check every archived object against its manifest; list orphans; exit 1 on damage", runVerify},
		{"ls", "list tenants and their restorable ranges, or one tenant's objects", runLs},
		{"bench", "measure throughput, lag, restore speed and size against PostgreSQL's own ceilings", runBench},
		{"version", "print the version", runVersion},
	}
}

// Main runs the command line args and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		case ctx.Err() != nil && errors.Is(err, context.Canceled):
			fmt.Fprintln(stderr, "tenantwal: interrupted")
			return 130
		}
		printError(stderr, err)
		return 1
	}
	fmt.Fprintf(stderr, "tenantwal: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// errUsage marks a flag error already reported by the flag package.
var errUsage = errors.New("usage error")

func printError(w io.Writer, err error) {
	fmt.Fprintf(w, "tenantwal: %v\n", err)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "tenantwal: per-tenant continuous archive and point-in-time restore for multi-tenant PostgreSQL\n\nUsage: tenantwal <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nEvery flag can also be set by an environment variable: --s3-endpoint is TENANTWAL_S3_ENDPOINT.\nRun `tenantwal <command> -h` for a command's flags.\n")
}

// envName maps a flag name to its environment variable.
func envName(flagName string) string {
	return "TENANTWAL_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse applies TENANTWAL_* variables to fs's flags, then parses args, so a
// flag on the command line wins over the environment.
func parse(fs *flag.FlagSet, args []string) error {
	var bad []string
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			bad = append(bad, fmt.Sprintf("%s=%q: %v; it sets --%s, which wants %s", envName(f.Name), v, err, f.Name, valueKind(f)))
		}
	})
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("bad environment variable: %s", strings.Join(bad, "; "))
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "tenantwal %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return errUsage
	}
	return nil
}

// valueKind describes the values flag f accepts, for error messages.
func valueKind(f *flag.Flag) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return "a string"
	}
	switch g.Get().(type) {
	case time.Duration:
		return "a duration such as 500ms, 10s or 1m30s"
	case bool:
		return "true or false"
	case int, int64, uint, uint64:
		return "an integer"
	case float64:
		return "a number"
	default:
		return "a string"
	}
}

func newFlagSet(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: tenantwal %s\n\nFlags (each also TENANTWAL_<NAME>, e.g. --log-level is TENANTWAL_LOG_LEVEL):\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func runVersion(_ context.Context, e *env, _ []string) error {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		v = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v += " " + s.Value
			}
		}
	}
	fmt.Fprintln(e.stdout, "tenantwal", v)
	return nil
}

// newLogger returns a text logger on stderr at the given level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
