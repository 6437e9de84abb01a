// Command tenantwal archives a multi-tenant PostgreSQL database continuously
// per tenant and restores, exports or erases one tenant at any point in time.
// Run `tenantwal help` for the subcommands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tenantwal/tenantwal/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
