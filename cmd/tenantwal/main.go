// Command tenantwal archives a multi-tenant PostgreSQL database continuously
// per tenant and restores, exports or erases one tenant at any point in time.
// Run `tenantwal help` for the subcommands.
//
// TENANTWAL_CPUPROFILE=FILE writes a CPU profile of the whole run to FILE,
// and TENANTWAL_MEMPROFILE=FILE a heap profile at its end ("%p" in either
// becomes the process id), to read with `go tool pprof`.
// `tenantwal bench` leaves it to its child processes (capture and archive
// of the memory measure) and has --cpuprofile for its own.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/tenantwal/tenantwal/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile()
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	writeHeapProfile()
	stop()
	os.Exit(code)
}

// profileFile is the file named by environment variable env, with "%p"
// replaced; "" when unset or for `tenantwal bench`.
func profileFile(env string) string {
	name := os.Getenv(env)
	if name == "" || len(os.Args) > 1 && os.Args[1] == "bench" {
		return ""
	}
	return strings.ReplaceAll(name, "%p", strconv.Itoa(os.Getpid()))
}

func writeHeapProfile() {
	name := profileFile("TENANTWAL_MEMPROFILE")
	if name == "" {
		return
	}
	f, err := os.Create(name)
	if err == nil {
		err = errors.Join(pprof.Lookup("heap").WriteTo(f, 0), f.Close())
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tenantwal: TENANTWAL_MEMPROFILE: %v\n", err)
	}
}

func startProfile() func() {
	name := profileFile("TENANTWAL_CPUPROFILE")
	if name == "" {
		return func() {}
	}
	f, err := os.Create(name)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tenantwal: TENANTWAL_CPUPROFILE: %v\n", err)
		os.Exit(2)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "tenantwal: TENANTWAL_CPUPROFILE: %v\n", err)
		}
	}
}
