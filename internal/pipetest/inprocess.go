package pipetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tenantwal/tenantwal/internal/bus"
)

// Group runs pipeline components (capture, archiver) in the test process
// on one bus until Stop or the test's end.
type Group struct {
	cancel context.CancelFunc
	g      *errgroup.Group
	bus    *bus.Bus
}

// Go runs each of runs until one fails or Stop; the bus is closed when
// they end.
func Go(t testing.TB, b *bus.Bus, runs ...func(context.Context) error) *Group {
	ctx, cancel := context.WithCancel(t.Context())
	g, gctx := errgroup.WithContext(ctx)
	for _, run := range runs {
		g.Go(func() error { return run(gctx) })
	}
	grp := &Group{cancel: cancel, g: g, bus: b}
	t.Cleanup(func() { grp.Stop(t) })
	return grp
}

// Stop stops the components; an error other than the cancellation fails
// the test.
func (p *Group) Stop(t testing.TB) {
	t.Helper()
	if p.cancel == nil {
		return
	}
	p.cancel()
	if err := p.end(t); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("pipeline: %v", err)
	}
}

// Wait waits until a component fails (or all end by themselves), stops the
// others and returns the error.
func (p *Group) Wait(t testing.TB) error {
	t.Helper()
	if p.cancel == nil {
		return nil
	}
	return p.end(t)
}

func (p *Group) end(t testing.TB) error {
	t.Helper()
	err := p.g.Wait()
	p.cancel()
	p.cancel = nil
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cerr := p.bus.Close(ctx); cerr != nil {
		t.Errorf("close bus: %v", cerr)
	}
	return err
}

// Bus is the bus the components share.
func (p *Group) Bus() *bus.Bus { return p.bus }
