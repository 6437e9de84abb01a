package pipetest

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantwal/tenantwal/internal/bus"
	"github.com/tenantwal/tenantwal/schemas"
)

// StreamMsg is one message of the tenantwal stream, decoded.
type StreamMsg struct {
	Seq     uint64
	Subject string
	Batch   *schemas.Batch
}

// StreamMessages returns the stream's messages with sequence from..to
// (0: the last), decoded, skipping deleted ones. The NATS server must be
// running.
func (e *Env) StreamMessages(from, to uint64) []StreamMsg {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(e.T.Context(), time.Minute)
	defer cancel()
	st, closeConn := e.stream(ctx)
	defer closeConn()
	info, err := st.Info(ctx)
	if err != nil {
		e.T.Fatal(err)
	}
	if to == 0 || to > info.State.LastSeq {
		to = info.State.LastSeq
	}
	from = max(from, info.State.FirstSeq)
	var out []StreamMsg
	for seq := from; seq <= to && seq > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			e.T.Fatalf("get stream message %d: %v", seq, err)
		}
		b, err := schemas.DecodeBatch(m.Data)
		if err != nil {
			e.T.Fatalf("stream message %d: %v", seq, err)
		}
		out = append(out, StreamMsg{Seq: seq, Subject: m.Subject, Batch: b})
	}
	return out
}

// stream connects to the NATS server and returns the tenantwal stream and
// a function closing the connection.
func (e *Env) stream(ctx context.Context) (jetstream.Stream, func()) {
	e.T.Helper()
	nc, err := nats.Connect(e.NATS.URL(), nats.Timeout(5*time.Second))
	if err != nil {
		e.T.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		e.T.Fatal(err)
	}
	st, err := js.Stream(ctx, bus.DefaultStream)
	if err != nil {
		nc.Close()
		e.T.Fatal(err)
	}
	return st, nc.Close
}

// StreamLastSeq is the stream's last sequence number.
func (e *Env) StreamLastSeq() uint64 {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(e.T.Context(), 30*time.Second)
	defer cancel()
	st, closeConn := e.stream(ctx)
	defer closeConn()
	info, err := st.Info(ctx)
	if err != nil {
		e.T.Fatal(err)
	}
	return info.State.LastSeq
}

// AckFloors returns each durable consumer's ack floor (stream sequence).
func (e *Env) AckFloors() map[string]uint64 {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(e.T.Context(), 30*time.Second)
	defer cancel()
	st, closeConn := e.stream(ctx)
	defer closeConn()
	out := map[string]uint64{}
	lister := st.ListConsumers(ctx)
	for ci := range lister.Info() {
		out[ci.Name] = ci.AckFloor.Stream
	}
	if err := lister.Err(); err != nil {
		e.T.Fatal(err)
	}
	return out
}
