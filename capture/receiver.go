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

// stream starts replication and runs the receiver and the processor.
func (c *Capture) stream(ctx context.Context, rconn *pgconn.PgConn, cat *pgx.Conn, pub *publisher, timeout time.Duration) error {
	if err := pgrepl.StartReplication(ctx, rconn, c.cfg.Slot, 0, pgrepl.PgoutputArgs(c.cfg.Publication, true)...); err != nil {
		return fmt.Errorf("start replication on slot %s: %w", c.cfg.Slot, err)
	}
	c.log.Info("streaming", slog.String("slot", c.cfg.Slot))
	ch := make(chan []byte, 4096)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.receive(gctx, rconn, ch, timeout) })
	g.Go(func() error {
		p := newProcessor(cat, c.router, pub, c.cfg, c.log, c.metrics)
		p.store = c.store
		for {
			var data []byte
			select {
			case data = <-ch:
			case <-gctx.Done():
				return gctx.Err()
			}
			xld, err := pgrepl.ParseXLogData(data)
			if err != nil {
				return err
			}
			msg, err := pgoutput.Parse(xld.Data)
			if err != nil {
				return fmt.Errorf("decode pgoutput at %s: %w", xld.WALStart, err)
			}
			if err := p.handle(gctx, msg); err != nil {
				return err
			}
		}
	})
	return g.Wait()
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

// receive owns the replication connection: it reads messages, hands WAL
// data to the processor, and sends standby status on a timer even while the
// processor is blocked. When the connection has delivered nothing for half
// of timeout it asks the server for a keepalive; after timeout of silence
// it gives up, and Run reconnects: a crashed server or a silently dropped
// network path is noticed within timeout.
func (c *Capture) receive(ctx context.Context, conn *pgconn.PgConn, out chan<- []byte, timeout time.Duration) error {
	nextStatus := time.Now()
	lastRecv := time.Now()
	pinged := false
	sendStatus := func(ping bool) error {
		lsn := schemas.LSN(c.confirmed.Load())
		err := pgrepl.SendStandbyStatus(ctx, conn, pgrepl.StandbyStatus{Write: lsn, Flush: lsn, Apply: lsn, ClientTime: time.Now(), ReplyRequested: ping})
		if err != nil {
			return fmt.Errorf("send standby status: %w", err)
		}
		nextStatus = time.Now().Add(c.cfg.StatusInterval)
		return nil
	}
	for {
		if !time.Now().Before(nextStatus) {
			ping := !pinged && time.Since(lastRecv) > timeout/2
			if err := sendStatus(ping); err != nil {
				return err
			}
			pinged = pinged || ping
		}
		rctx, cancel := context.WithDeadline(ctx, nextStatus)
		msg, err := conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if pgconn.Timeout(err) && ctx.Err() == nil {
				if silent := time.Since(lastRecv); silent > timeout {
					return fmt.Errorf("replication connection to %s silent for %s, not even a keepalive (timeout %s: Config.ReceiveTimeout or the server's wal_sender_timeout)",
						conn.Conn().RemoteAddr(), silent.Round(time.Millisecond), timeout)
				}
				continue
			}
			return fmt.Errorf("receive replication data: %w", err)
		}
		lastRecv, pinged = time.Now(), false
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pgrepl.PrimaryKeepaliveByteID:
				ka, err := pgrepl.ParsePrimaryKeepalive(m.Data[1:])
				if err != nil {
					return err
				}
				if ka.ReplyRequested {
					nextStatus = time.Time{}
				}
			case pgrepl.XLogDataByteID:
				data := append([]byte(nil), m.Data[1:]...)
				if err := c.deliver(ctx, out, data, func() error { return sendStatus(false) }); err != nil {
					return err
				}
				// Silence is counted only while reading: the time the
				// processor kept us waiting is not the server's.
				lastRecv = time.Now()
			}
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(m)
		case *pgproto3.CopyDone:
			return errors.New("the server ended replication")
		}
	}
}

func (c *Capture) deliver(ctx context.Context, out chan<- []byte, data []byte, sendStatus func() error) error {
	for {
		t := time.NewTimer(c.cfg.StatusInterval)
		select {
		case out <- data:
			t.Stop()
			return nil
		case <-t.C:
			if err := sendStatus(); err != nil {
				return err
			}
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}
