package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"golang.org/x/sync/errgroup"

	"github.com/tenantwal/tenantwal/capture/pgoutput"
	"github.com/tenantwal/tenantwal/capture/pgrepl"
	"github.com/tenantwal/tenantwal/schemas"
)

// The receiver hands WAL messages to the processor in batches: one channel
// operation (and at most one goroutine wake-up) per batch instead of per
// message.
const (
	// batchBytes is the size at which a batch is handed over even though
	// more messages are already received; a smaller batch is handed over
	// as soon as the connection has nothing more buffered.
	batchBytes = 256 << 10
	// batchQueue is how many batches may wait for the processor. With
	// the batch being filled and the one being decoded, it bounds the
	// receiver's memory to about (batchQueue+2) × batchBytes, plus any
	// single message larger than that.
	batchQueue = 4
	// readLinger is how long the receiver waits, once it has read all that
	// arrived while WAL data is streaming, before reading again. The server
	// writes each message separately; reading as they come costs a read,
	// a netpoll wake-up and a hand-over per message (~250 bytes), which
	// on a busy machine takes the CPU the walsender needs. Lingering lets
	// the socket gather a millisecond of messages for one read and one
	// batch. The server never waits for it: the socket buffers far more
	// than a millisecond of WAL.
	readLinger = time.Millisecond
)

// walBatch is a run of XLogData messages copied out of the connection's read
// buffer (which the next ReceiveMessage reuses).
type walBatch struct {
	buf  []byte // the messages after their 'w' byte, back to back
	ends []int  // end offset of each message in buf
}

func (b *walBatch) add(msg []byte) {
	b.buf = append(b.buf, msg...)
	b.ends = append(b.ends, len(b.buf))
}

// stream starts replication and runs the receiver and the processor.
func (c *Capture) stream(ctx context.Context, rconn *pgconn.PgConn, cat *pgx.Conn, pub *publisher, timeout time.Duration) error {
	if err := pgrepl.StartReplication(ctx, rconn, c.cfg.Slot, 0, pgrepl.PgoutputArgs(c.cfg.Publication, true)...); err != nil {
		return fmt.Errorf("start replication on slot %s: %w", c.cfg.Slot, err)
	}
	c.log.Info("streaming", slog.String("slot", c.cfg.Slot))
	full := make(chan *walBatch, batchQueue)
	free := make(chan *walBatch, batchQueue+2)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		r := &receiver{c: c, conn: rconn, out: full, free: free, timeout: timeout}
		return r.run(gctx)
	})
	g.Go(func() error {
		p := newProcessor(cat, c.router, pub, c.cfg, c.log, c.metrics)
		p.store, p.snap = c.store, c.snap
		for {
			var b *walBatch
			select {
			case b = <-full:
			case <-gctx.Done():
				return gctx.Err()
			}
			if err := p.handleBatch(gctx, b); err != nil {
				return err
			}
			if cap(b.buf) > 2*batchBytes {
				continue // one huge message: do not keep its buffer
			}
			b.buf, b.ends = b.buf[:0], b.ends[:0]
			select {
			case free <- b:
			default:
			}
		}
	})
	return g.Wait()
}

// handleBatch decodes and handles every message of b. Nothing it produces
// aliases b: the values are copied out of the decoded tuples.
func (p *processor) handleBatch(ctx context.Context, b *walBatch) error {
	start := 0
	for _, end := range b.ends {
		xld, err := pgrepl.ParseXLogData(b.buf[start:end])
		if err != nil {
			return err
		}
		start = end
		msg, err := pgoutput.Parse(xld.Data)
		if err != nil {
			return fmt.Errorf("decode pgoutput at %s: %w", xld.WALStart, err)
		}
		if err := p.handle(ctx, msg); err != nil {
			return err
		}
	}
	return nil
}

// receiveTimeout returns how long the replication connection may stay
// silent: Config.ReceiveTimeout, else the server's wal_sender_timeout (the
// server drops a silent client after it, and pings an idle one at half of
// it), else 60s.
func (c *Capture) receiveTimeout(ctx context.Context, conn *pgx.Conn) (time.Duration, error) {
	if c.cfg.ReceiveTimeout > 0 {
		return c.cfg.ReceiveTimeout, nil
	}
	var ms int64
	if err := conn.QueryRow(ctx, `SELECT setting::bigint FROM pg_settings WHERE name = 'wal_sender_timeout'`).Scan(&ms); err != nil {
		return 0, fmt.Errorf("read wal_sender_timeout: %w", err)
	}
	if ms <= 0 {
		return time.Minute, nil
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// receiver owns the replication connection while streaming: it reads
// messages, hands WAL data to the processor in batches, answers keepalives
// and sends standby status every StatusInterval, also while the processor
// is blocked. When the connection has delivered nothing for half of
// timeout it asks the server for a keepalive; after timeout of silence it
// gives up, and Run reconnects: a crashed server or a silently dropped
// network path is noticed within timeout.
type receiver struct {
	c       *Capture
	conn    *pgconn.PgConn
	out     chan<- *walBatch
	free    <-chan *walBatch
	timeout time.Duration
	pinged  bool // a keepalive was asked for since lastRecv

	cur        *walBatch // being filled; nil when none
	streaming  bool      // WAL data arrived since the last linger
	nextStatus time.Time // when standby status is due
	deadline   time.Time // the connection's read deadline
	lastRecv   time.Time
}

// run receives until ctx ends or the connection fails. Reads are bounded by
// one read deadline on the connection, moved only when the next standby
// status is due, rather than by a context per message; ctx's cancellation
// moves the deadline into the past.
func (r *receiver) run(ctx context.Context) error {
	nc := r.conn.Conn()
	stop := context.AfterFunc(ctx, func() { _ = nc.SetReadDeadline(time.Unix(1, 0)) })
	defer func() {
		if stop() {
			_ = nc.SetReadDeadline(time.Time{})
		}
	}()
	r.nextStatus, r.lastRecv = time.Now(), time.Now()
	for {
		if !time.Now().Before(r.nextStatus) {
			if err := r.sendStatus(ctx); err != nil {
				return err
			}
		}
		if pgrepl.Buffered(r.conn) == 0 {
			// The next read waits for the server: hand over what we
			// have, and while WAL streams, let more gather first.
			if r.cur != nil {
				if err := r.deliver(ctx); err != nil {
					return err
				}
			}
			if r.streaming {
				r.streaming = false
				time.Sleep(readLinger)
			}
		}
		if !r.deadline.Equal(r.nextStatus) {
			if err := nc.SetReadDeadline(r.nextStatus); err != nil {
				return fmt.Errorf("set read deadline: %w", err)
			}
			r.deadline = r.nextStatus
			if err := ctx.Err(); err != nil {
				return err // cancelled before the deadline was set
			}
		}
		// context.Background: ReceiveMessage then skips its per-call
		// context watch; the read deadline bounds the call.
		msg, err := r.conn.ReceiveMessage(context.Background())
		if err != nil {
			if err := ctx.Err(); err != nil {
				return err
			}
			if pgconn.Timeout(err) {
				if silent := time.Since(r.lastRecv); silent > r.timeout {
					return fmt.Errorf("replication connection to %s silent for %s, not even a keepalive (timeout %s: Config.ReceiveTimeout or the server's wal_sender_timeout)",
						r.conn.Conn().RemoteAddr(), silent.Round(time.Millisecond), r.timeout)
				}
				continue
			}
			return fmt.Errorf("receive replication data: %w", err)
		}
		if err := r.handle(ctx, msg); err != nil {
			return err
		}
	}
}

// handle handles one message of the replication connection.
func (r *receiver) handle(ctx context.Context, msg pgproto3.BackendMessage) error {
	r.lastRecv, r.pinged = time.Now(), false
	switch m := msg.(type) {
	case *pgproto3.CopyData:
		if len(m.Data) == 0 {
			return nil
		}
		switch m.Data[0] {
		case pgrepl.PrimaryKeepaliveByteID:
			ka, err := pgrepl.ParsePrimaryKeepalive(m.Data[1:])
			if err != nil {
				return err
			}
			if ka.ReplyRequested {
				r.nextStatus = time.Time{}
			}
		case pgrepl.XLogDataByteID:
			// m.Data aliases the connection's buffer: add copies it.
			r.batch().add(m.Data[1:])
			r.streaming = true
			if len(r.cur.buf) >= batchBytes {
				return r.deliver(ctx)
			}
		}
	case *pgproto3.ErrorResponse:
		return pgconn.ErrorResponseToPgError(m)
	case *pgproto3.CopyDone:
		return errors.New("the server ended replication")
	}
	return nil
}

// batch returns the batch being filled, taking a free one or a new one.
func (r *receiver) batch() *walBatch {
	if r.cur == nil {
		select {
		case r.cur = <-r.free:
		default:
			r.cur = &walBatch{buf: make([]byte, 0, batchBytes+16<<10), ends: make([]int, 0, 1024)}
		}
	}
	return r.cur
}

// deliver hands the current batch to the processor. While the processor is
// behind it keeps sending standby status when due, so the server does not
// time the connection out.
func (r *receiver) deliver(ctx context.Context) error {
	b := r.cur
	r.cur = nil
	select {
	case r.out <- b:
		return nil
	default:
	}
	// Silence is counted only while reading: the time the processor
	// keeps us waiting is not the server's.
	defer func() { r.lastRecv = time.Now() }()
	for {
		t := time.NewTimer(time.Until(r.nextStatus))
		select {
		case r.out <- b:
			t.Stop()
			return nil
		case <-t.C:
			if err := r.sendStatus(ctx); err != nil {
				return err
			}
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// sendStatus reports the confirmable position and schedules the next
// status. Once the connection has been silent for half the timeout it asks
// the server to answer at once.
func (r *receiver) sendStatus(ctx context.Context) error {
	lsn := schemas.LSN(r.c.confirmed.Load())
	ping := !r.pinged && time.Since(r.lastRecv) > r.timeout/2
	err := pgrepl.SendStandbyStatus(ctx, r.conn, pgrepl.StandbyStatus{Write: lsn, Flush: lsn, Apply: lsn, ClientTime: time.Now(), ReplyRequested: ping})
	if err != nil {
		return fmt.Errorf("send standby status: %w", err)
	}
	r.pinged = r.pinged || ping
	r.nextStatus = time.Now().Add(r.c.cfg.StatusInterval)
	return nil
}
