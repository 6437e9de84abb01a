// Command tenantwal archives a multi-tenant PostgreSQL database continuously
// per tenant and restores, exports or erases one tenant at any point in time.
// Run `tenantwal help` for the subcommands.
//
// TENANTWAL_CPUPROFILE=FILE writes a CPU profile of the whole run to FILE
// ("%p" in it becomes the process id), to read with `go tool pprof`.
// `tenantwal bench` leaves it to its child processes (capture and archive
// of the memory measure) and has --cpuprofile for its own.
package main

import (
	"context"
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
	stop()
	os.Exit(code)
}

func startProfile() func() {
	name := os.Getenv("TENANTWAL_CPUPROFILE")
	if name == "" || len(os.Args) > 1 && os.Args[1] == "bench" {
		return func() {}
	}
	name = strings.ReplaceAll(name, "%p", strconv.Itoa(os.Getpid()))
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
