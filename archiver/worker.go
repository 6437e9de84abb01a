package archiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/failpoint"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// ackTimeout bounds the wait for the server to confirm an acknowledgement;
// when it passes the worker starts again from the ack floor (what it had
// archived is skipped as already seen).
const ackTimeout = 10 * time.Second

// worker archives one partition. It runs on one goroutine, except in a
// flush, which commits several tenants at once (commitAll).
type worker struct {
	a    *Archiver
	p    int
	cons jetstream.Consumer
	log  *slog.Logger

	tenants map[schemas.TenantID]*tenantState
	buf     map[schemas.TenantID]*pending
	order   []schemas.TenantID
	bytes   int
	since   time.Time     // arrival of the oldest unflushed message
	lastMsg jetstream.Msg // newest unacknowledged message
	lastDel uint64        // consumer (delivery) sequence of the last message handled
	// startDel is the consumer's delivered sequence when the worker
	// started (after the reset to the ack floor); tailChecked is when
	// checkTail last asked the server.
	startDel    uint64
	tailChecked time.Time
	// pullUntil is when the worker's last pull expires in the server: until
	// then it can still take deliveries, also after the worker stopped.
	pullUntil time.Time
	marker    *schemas.Batch
	// vals holds the buffered values' bytes, copied out of the messages;
	// tables the buffered rows' table schemas, one copy of each (every
	// message carries its own); both dropped at the flush.
	vals   valueArena
	tables map[tableKey]*schemas.TableSchema
	// wm is the partition's watermark in the store (nil: not read yet, or
	// none): a marker replayed after a capture restart can be older than
	// one already archived, and a watermark never moves back.
	wm *schemas.Watermark
}

func newWorker(a *Archiver, p int, cons jetstream.Consumer) *worker {
	w := &worker{a: a, p: p, cons: cons, log: a.log.With(slog.Int("partition", p)),
		tenants: map[schemas.TenantID]*tenantState{}, buf: map[schemas.TenantID]*pending{},
		tables: map[tableKey]*schemas.TableSchema{}}
	if info := cons.CachedInfo(); info != nil {
		w.startDel = info.Delivered.Consumer
	}
	return w
}

func (w *worker) run(ctx context.Context) error {
	cfg := &w.a.cfg
	for {
		wait := time.Second
		if !w.since.IsZero() {
			wait = max(10*time.Millisecond, min(wait, time.Until(w.since.Add(cfg.FlushInterval))))
		}
		w.pullUntil = time.Now().Add(wait)
		batch, err := w.cons.Fetch(cfg.FetchBatch, jetstream.FetchMaxWait(wait), jetstream.FetchMaxBytes(cfg.FetchBytes))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("fetch: %w", err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			if err := w.handle(ctx, msg); err != nil {
				return err
			}
			if w.overBudget() {
				if err := w.flush(ctx); err != nil {
					return err
				}
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("fetch: %w", err)
		}
		if got == 0 {
			if err := w.checkTail(ctx); err != nil {
				return err
			}
		}
		if !w.since.IsZero() && time.Since(w.since) >= cfg.FlushInterval {
			if err := w.flush(ctx); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// errDeliveryGap means a delivered message never reached the worker:
// acknowledging a later one (AckAll) would acknowledge it unarchived.
var errDeliveryGap = errors.New("gap in the consumer's delivery sequence")

// tailCheckInterval spaces checkTail's consumer info requests.
const tailCheckInterval = 2 * time.Second

// checkTail runs when a fetch returned nothing: if the server counts a
// delivery the worker never saw (a pull response lost on the way, seen on
// loaded machines), no later message reveals the gap and the message would
// wait for AckWait (minutes) to be delivered again. The worker then
// restarts from the ack floor at once.
func (w *worker) checkTail(ctx context.Context) error {
	if time.Since(w.tailChecked) < tailCheckInterval {
		return nil
	}
	w.tailChecked = time.Now()
	seen := max(w.lastDel, w.startDel)
	info, err := w.cons.Info(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("consumer info: %w", err)
	}
	if d := info.Delivered.Consumer; d > seen {
		return fmt.Errorf("%w: the server delivered up to %d, the worker saw up to %d", errDeliveryGap, d, seen)
	}
	return nil
}

func (w *worker) handle(ctx context.Context, msg jetstream.Msg) error {
	w.a.metrics.messages.Inc()
	if meta, err := msg.Metadata(); err == nil {
		// The first delivery too must follow the consumer's position at
		// the start: a pull of the worker before a restart can still be
		// waiting in the server and take the first deliveries after the
		// reset, into a fetch nobody reads; acknowledging a later one
		// (AckAll) would acknowledge them unarchived.
		if d, prev := meta.Sequence.Consumer, max(w.lastDel, w.startDel); d != prev+1 {
			return fmt.Errorf("%w: delivery %d after %d", errDeliveryGap, d, prev)
		}
		w.lastDel = meta.Sequence.Consumer
	}
	if w.since.IsZero() {
		w.since = time.Now()
	}
	w.lastMsg = msg
	b, err := schemas.DecodeBatch(msg.Data())
	if err != nil {
		meta, _ := msg.Metadata()
		var seq uint64
		if meta != nil {
			seq = meta.Sequence.Stream
		}
		return fmt.Errorf("message %d on %s: %w", seq, msg.Subject(), err)
	}
	switch b.Kind {
	case schemas.KindMarker:
		w.marker = b
		return nil
	case schemas.KindChanges, schemas.KindSnapshot, schemas.KindSnapshotDone:
	}
	if got := schemas.Partition(b.Tenant, w.a.bus.Partitions()); got != w.p {
		return fmt.Errorf("message for tenant hash %s belongs to partition %d, not %d: capture and archiver disagree on the partition count", b.Tenant.Hash(), got, w.p)
	}
	st, err := w.state(ctx, b.Tenant)
	if err != nil {
		return err
	}
	for i, ts := range b.Tables {
		b.Tables[i] = w.table(ts)
	}
	pd := w.buf[b.Tenant]
	if pd == nil {
		pd = &pending{}
		w.buf[b.Tenant] = pd
		w.order = append(w.order, b.Tenant)
		w.account(bufTenantBytes)
	}
	switch b.Kind {
	case schemas.KindSnapshotDone:
		pos := snapshotDonePos(b.CommitLSN)
		if !st.seen.Less(pos) {
			w.a.metrics.duplicates.Inc()
			return nil
		}
		st.seen = pos
		snap := w.part(pd, schemas.EntrySnapshot)
		snap.last = pos
		if snap.first == (schemas.Pos{}) {
			snap.first = pos
		}
		snap.completeLSN, snap.completeTime = b.CommitLSN, b.CommitTime
		snap.minT, snap.maxT = b.CommitTime, b.CommitTime
		snap.described = append(snap.described, b.Tables...)
		return nil
	case schemas.KindSnapshot:
		return w.addEvents(b, st, pd, schemas.EntrySnapshot)
	default:
		if err := w.addEvents(b, st, pd, schemas.EntrySegment); err != nil {
			return err
		}
		if ch := pd.changes; b.Final && ch != nil && b.CommitLSN > ch.completeLSN {
			ch.completeLSN, ch.completeTime = b.CommitLSN, b.CommitTime
		}
		return nil
	}
}

// part returns pd's part of kind, counting it in the budget when new.
func (w *worker) part(pd *pending, kind string) *part {
	pt, n := pd.part(kind)
	w.account(n)
	return pt
}

// account adds n bytes to what the worker (and the archiver) buffers.
func (w *worker) account(n int) {
	w.bytes += n
	w.a.buffered.Add(int64(n))
}

// addEvents buffers the events of b not archived yet in pd's part of
// kind. A batch whose events were all archived already (or that has none)
// adds no part: a final chunk without rows still marks the transaction
// complete in handle, which needs the changes part, so it is added then.
func (w *worker) addEvents(b *schemas.Batch, st *tenantState, pd *pending, kind string) error {
	var pt *part
	if kind == schemas.EntrySegment && b.Final {
		pt = w.part(pd, kind)
	}
	for i := range b.Events {
		e := &b.Events[i]
		pos := schemas.Pos{LSN: b.CommitLSN, Seq: e.Seq}
		if !st.seen.Less(pos) {
			w.a.metrics.duplicates.Inc()
			continue
		}
		st.seen = pos
		ts := b.Tables[e.Rel]
		for _, r := range eventRows(b, e) {
			if len(r.vals) != len(ts.Columns) {
				return fmt.Errorf("change at %s of %s has %d values for %d columns", pos, ts.QualifiedName(), len(r.vals), len(ts.Columns))
			}
			if pt == nil {
				pt = w.part(pd, kind)
			}
			w.vals.own(r.vals)
			w.account(pt.add(ts, r))
		}
	}
	return nil
}

// tableKey identifies a table schema: Version is a digest of all of it
// but RelID.
type tableKey struct {
	version string
	relID   uint32
}

// table returns the worker's copy of ts, which it keeps (and counts in
// the budget) until the flush: every message decodes a table schema of its
// own, and keeping the one of each tenant's first row cost ~2 KB a tenant.
func (w *worker) table(ts *schemas.TableSchema) *schemas.TableSchema {
	k := tableKey{ts.Version, ts.RelID}
	if have := w.tables[k]; have != nil {
		return have
	}
	w.tables[k] = ts
	w.account(bufTableSchemaBytes(ts))
	return ts
}

// state returns what the manifest says of a tenant, reading only its newest
// entry the first time the tenant is seen.
func (w *worker) state(ctx context.Context, t schemas.TenantID) (*tenantState, error) {
	if st := w.tenants[t]; st != nil {
		return st, nil
	}
	st, err := loadState(ctx, w.a.store, t)
	if err != nil {
		return nil, err
	}
	w.tenants[t] = st
	return st, nil
}

func loadState(ctx context.Context, store objstore.Store, t schemas.TenantID) (*tenantState, error) {
	last, err := catalog.LastSeq(ctx, store, t)
	if err != nil {
		return nil, err
	}
	st := &tenantState{nextSeq: last + 1}
	// The newest entry's Last is the highest archived position (entries
	// written before rowless entries carried it can have a zero Last: look
	// further back for those). Trailing partial snapshot entries are a
	// snapshot in progress.
	var partial []*schemas.ManifestEntry
	trailing := true
	for seq := last; seq > 0; seq-- {
		e, err := catalog.ReadEntry(ctx, store, t, seq)
		if err != nil {
			return nil, err
		}
		if trailing && e.Kind == schemas.EntrySnapshot && e.CompleteLSN == 0 && len(e.Objects) > 0 &&
			(len(partial) == 0 || partial[0].Last.LSN == e.Last.LSN) {
			partial = append([]*schemas.ManifestEntry{e}, partial...)
		} else {
			trailing = false
		}
		if st.seen == (schemas.Pos{}) {
			st.seen = e.Last
		}
		if !trailing && st.seen != (schemas.Pos{}) {
			break
		}
	}
	if len(partial) > 0 {
		st.snap = &snapProgress{lsn: partial[0].Last.LSN, tables: map[string]*schemas.TableSchema{}}
		for _, e := range partial {
			st.snap.add(e)
		}
	}
	return st, nil
}

// flush makes everything buffered durable, then acknowledges it.
func (w *worker) flush(ctx context.Context) error {
	// A stop (ctx cancelled) lets a flush in progress finish, so a clean
	// shutdown leaves no orphan objects behind.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.a.cfg.FlushTimeout)
	defer cancel()
	start := time.Now()
	committed, err := w.commitAll(ctx)
	if err != nil {
		w.a.metrics.failures.Inc()
		return err
	}
	if w.marker != nil && w.wm == nil {
		wms, err := catalog.ReadWatermarks(ctx, w.a.store)
		if err != nil {
			w.a.metrics.failures.Inc()
			return fmt.Errorf("read watermark: %w", err)
		}
		w.wm = wms[w.p]
	}
	if w.marker != nil && w.wm != nil && w.wm.Partitions == w.a.bus.Partitions() && w.marker.EndLSN <= w.wm.EndLSN {
		w.marker = nil // replayed: the stored watermark is already past it
	}
	if w.marker != nil {
		wm := &schemas.Watermark{Partition: w.p, Partitions: w.a.bus.Partitions(), CommitLSN: w.marker.CommitLSN,
			EndLSN: w.marker.EndLSN, CommitTime: w.marker.CommitTime, Updated: time.Now().UTC()}
		if err := catalog.WriteWatermark(ctx, w.a.store, wm); err != nil {
			w.a.metrics.failures.Inc()
			return fmt.Errorf("write watermark: %w", err)
		}
		w.a.metrics.lag.Observe(time.Since(w.marker.CommitTime).Seconds())
		w.wm = wm
	}
	if committed > 0 {
		failpoint.Hit(failpoint.ArchiverBeforeAck)
	}
	if w.lastMsg != nil {
		// The server confirms the ack at once; a confirmation lost with a
		// restarted server must not hold the partition for FlushTimeout.
		actx, cancel := context.WithTimeout(ctx, ackTimeout)
		err := w.lastMsg.DoubleAck(actx)
		cancel()
		if err != nil {
			return fmt.Errorf("acknowledge messages up to %s: %w", w.lastMsg.Subject(), err)
		}
	}
	w.a.metrics.flushes.Inc()
	w.a.metrics.flushTime.Observe(time.Since(start).Seconds())
	clear(w.buf)
	clear(w.tables)
	w.vals.reset()
	w.order = w.order[:0]
	w.a.buffered.Add(-int64(w.bytes))
	w.bytes, w.since, w.lastMsg, w.marker = 0, time.Time{}, nil, nil
	return nil
}

// commitAll commits every buffered tenant: several tenants at once (up to
// CommitConcurrency, within the archiver-wide limit), each tenant's parts
// in order (snapshot, then changes). It returns the number of manifest
// entries written, and the first error once every commit started has
// ended: a failed flush leaves no commit running behind it. The commits of
// one tenant, and the tenant's state, are touched by one goroutine only.
func (w *worker) commitAll(ctx context.Context) (int, error) {
	var committed atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w.a.cfg.CommitConcurrency)
	for _, t := range w.order {
		pd, st := w.buf[t], w.tenants[t]
		g.Go(func() error {
			if err := w.a.acquireCommit(gctx); err != nil {
				return err
			}
			defer w.a.releaseCommit()
			for _, pt := range []*part{pd.snapshot, pd.changes} {
				if pt == nil || pt.empty() {
					continue
				}
				if err := w.commit(gctx, t, st, pt); err != nil {
					return err
				}
				committed.Add(1)
			}
			return nil
		})
	}
	err := g.Wait()
	return int(committed.Load()), err
}

// commit writes one part's objects and its manifest entry.
func (w *worker) commit(ctx context.Context, t schemas.TenantID, st *tenantState, pt *part) error {
	first, last := pt.first, pt.last
	if last == (schemas.Pos{}) {
		// No rows (the final chunk of a transaction flushed earlier, or
		// replayed changes all archived already): the entry still carries
		// the tenant's highest archived position, which a restarted worker
		// reads back as its de-duplication floor.
		first, last = st.seen, st.seen
	}
	e := &schemas.ManifestEntry{Tenant: t, Kind: pt.kind, Created: time.Now().UTC(), Writer: w.a.cfg.Writer,
		First: first, Last: last, MinTime: pt.minT, MaxTime: pt.maxT,
		CompleteLSN: pt.completeLSN, CompleteTime: pt.completeTime, Tables: map[string]*schemas.TableSchema{}}
	for _, ts := range pt.described {
		e.Tables[ts.Version] = ts
	}
	dirKind := "segments"
	if pt.kind == schemas.EntrySnapshot {
		dirKind = "snapshots"
	}
	dir := schemas.ObjectDir(t, dirKind, pt.first.LSN)
	var stretches map[string]int // a version's objects so far (part.table)
	for _, tr := range pt.tables {
		suffix := ""
		if len(pt.tables) > 1 {
			if stretches == nil {
				stretches = map[string]int{}
			}
			if stretches[tr.ts.Version]++; stretches[tr.ts.Version] > 1 {
				suffix = fmt.Sprintf("-%d", stretches[tr.ts.Version])
			}
		}
		ref, err := w.writeObject(ctx, dir, suffix, pt.kind, tr)
		if err != nil {
			return err
		}
		e.Objects = append(e.Objects, ref)
		e.Tables[tr.ts.Version] = tr.ts
	}
	var partialSnap *schemas.ManifestEntry
	if pt.kind == schemas.EntrySnapshot {
		if pt.completeLSN == 0 {
			partialSnap = e
		} else if sp := st.snap; sp != nil && sp.lsn == pt.completeLSN {
			// The complete entry lists the snapshot's earlier objects too.
			e.Objects = append(slices.Clip(sp.objects), e.Objects...)
			for v, ts := range sp.tables {
				e.Tables[v] = ts
			}
			if sp.first.Less(e.First) {
				e.First = sp.first
			}
			if !sp.minT.IsZero() && (e.MinTime.IsZero() || sp.minT.Before(e.MinTime)) {
				e.MinTime = sp.minT
			}
		}
	}
	if len(e.Objects) > 0 {
		failpoint.Hit(failpoint.ArchiverBeforeManifest)
	}
	if err := catalog.Append(ctx, w.a.store, e, st.nextSeq); err != nil {
		if errors.Is(err, objstore.ErrExists) {
			return fmt.Errorf("tenant %s: manifest entry %d was written by another archiver: run one archiver per partition (%w)", t.Hash(), st.nextSeq, err)
		}
		return err
	}
	st.nextSeq++
	switch {
	case partialSnap != nil:
		if st.snap == nil || st.snap.lsn != partialSnap.Last.LSN {
			st.snap = &snapProgress{lsn: partialSnap.Last.LSN, tables: map[string]*schemas.TableSchema{}}
		}
		st.snap.add(partialSnap)
	case pt.kind == schemas.EntrySnapshot:
		st.snap = nil
	}
	w.a.metrics.entries.Inc()
	return nil
}

// overBudget reports whether the worker should flush before taking more:
// its buffer reached FlushBytes, or all partitions together passed
// BufferBytes and this one holds at least its share of it.
func (w *worker) overBudget() bool {
	cfg := &w.a.cfg
	if w.bytes >= cfg.FlushBytes {
		return true
	}
	share := cfg.BufferBytes / max(1, len(cfg.Partitions))
	return w.bytes >= share && w.a.buffered.Load() >= int64(cfg.BufferBytes)
}
