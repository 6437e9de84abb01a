package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantwal/tenantwal/internal/failpoint"
	"github.com/tenantwal/tenantwal/schemas"
)

// txnMark is the end of one source transaction.
type txnMark struct {
	CommitLSN schemas.LSN
	EndLSN    schemas.LSN
	Time      time.Time
}

// pending is one entry of the publisher's FIFO: a publish awaiting its
// PubAck, or the end of a transaction all of whose messages precede it.
type pending struct {
	fut     jetstream.PubAckFuture
	subject string
	mark    *txnMark
}

// publisher publishes batches asynchronously and tracks, in publish order,
// the last transaction all of whose messages the stream has stored.
type publisher struct {
	js         jetstream.JetStream
	prefix     string
	partitions int
	log        *slog.Logger
	metrics    *Metrics

	fifo      chan pending
	published atomic.Pointer[txnMark] // last transaction fully PubAck'ed
}

func newPublisher(nc *nats.Conn, prefix string, partitions int, log *slog.Logger, m *Metrics) (*publisher, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2048))
	if err != nil {
		return nil, fmt.Errorf("open JetStream context: %w", err)
	}
	return &publisher{js: js, prefix: prefix, partitions: partitions, log: log, metrics: m, fifo: make(chan pending, 8192)}, nil
}

// publish sends b to its tenant's partition. It blocks when too many
// publishes await their PubAck (backpressure), never drops.
func (p *publisher) publish(ctx context.Context, b *schemas.Batch) error {
	part := schemas.Partition(b.Tenant, p.partitions)
	return p.publishTo(ctx, part, b)
}

func (p *publisher) publishTo(ctx context.Context, part int, b *schemas.Batch) error {
	data, err := b.AppendEncode(make([]byte, 0, 256))
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: schemas.Subject(p.prefix, part), Data: data}
	for {
		fut, err := p.js.PublishMsgAsync(msg, jetstream.WithMsgID(b.MsgID(part)))
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			select {
			case <-p.js.PublishAsyncComplete():
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("publish to %s: %w", msg.Subject, err)
		}
		p.metrics.published(len(data), len(b.Events))
		failpoint.Hit(failpoint.CapturePublished)
		select {
		case p.fifo <- pending{fut: fut, subject: msg.Subject}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// commit records the end of a transaction after all its publishes.
func (p *publisher) commit(ctx context.Context, m txnMark) error {
	select {
	case p.fifo <- pending{mark: &m}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runAcks waits for PubAcks in publish order. A failed publish ends capture:
// nothing after it may be marked, so the slot is never confirmed past it.
func (p *publisher) runAcks(ctx context.Context) error {
	for {
		var it pending
		select {
		case it = <-p.fifo:
		case <-ctx.Done():
			return ctx.Err()
		}
		if it.mark != nil {
			p.published.Store(it.mark)
			failpoint.Hit(failpoint.CaptureTxnAcked)
			continue
		}
		select {
		case <-it.fut.Ok():
		case err := <-it.fut.Err():
			return fmt.Errorf("publish to %s not acknowledged: %w (is the stream full? see its max bytes; capture will resume from the slot)", it.subject, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// runMarkers publishes, every interval, a marker to every partition for the
// last fully acknowledged transaction, if it moved. Each marker follows all
// data of the transactions it covers in its partition's stream.
func (p *publisher) runMarkers(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	var last txnMark
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		m := p.published.Load()
		if m == nil || m.EndLSN <= last.EndLSN {
			continue
		}
		if err := p.publishMarkers(ctx, *m); err != nil {
			return err
		}
		last = *m
	}
}

func (p *publisher) publishMarkers(ctx context.Context, m txnMark) error {
	b := &schemas.Batch{Kind: schemas.KindMarker, CommitLSN: m.CommitLSN, EndLSN: m.EndLSN, CommitTime: m.Time, Final: true}
	data, err := b.AppendEncode(nil)
	if err != nil {
		return err
	}
	futs := make([]jetstream.PubAckFuture, 0, p.partitions)
	for part := range p.partitions {
		msg := &nats.Msg{Subject: schemas.Subject(p.prefix, part), Data: data}
		fut, err := p.js.PublishMsgAsync(msg, jetstream.WithMsgID(b.MsgID(part)))
		if err != nil {
			return fmt.Errorf("publish marker to %s: %w", msg.Subject, err)
		}
		futs = append(futs, fut)
	}
	for _, fut := range futs {
		select {
		case <-fut.Ok():
		case err := <-fut.Err():
			return fmt.Errorf("publish marker to %s not acknowledged: %w", fut.Msg().Subject, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.metrics.markers.Inc()
	p.log.Debug("markers published", slog.String("lsn", m.EndLSN.String()))
	return nil
}
