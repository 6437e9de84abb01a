package bus_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantwal/tenantwal/internal/bus"
	"github.com/tenantwal/tenantwal/internal/natstest"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openEmbedded opens a Bus on an embedded server, closed in t.Cleanup.
func openEmbedded(t *testing.T, cfg bus.Config) *bus.Bus {
	t.Helper()
	if cfg.StoreDir == "" {
		cfg.StoreDir = t.TempDir()
	}
	return open(t, cfg)
}

func open(t *testing.T, cfg bus.Config) *bus.Bus {
	t.Helper()
	b, err := bus.Open(testCtx(t), cfg, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func publishN(t *testing.T, b *bus.Bus, p, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := range n {
		ack, err := b.JetStream().Publish(testCtx(t), b.Subject(p), fmt.Appendf(nil, "p%d-%d", p, i),
			jetstream.WithMsgID(fmt.Sprintf("p%d-%d", p, i)))
		if err != nil {
			t.Fatalf("publish %d to %s: %v", i, b.Subject(p), err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

func streamMsgs(t *testing.T, b *bus.Bus) uint64 {
	t.Helper()
	info, err := b.Stream().Info(testCtx(t))
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

func fetchAll(t *testing.T, c jetstream.Consumer, want int) []jetstream.Msg {
	t.Helper()
	var got []jetstream.Msg
	for len(got) < want {
		batch, err := c.Fetch(want-len(got), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		n := len(got)
		for m := range batch.Messages() {
			got = append(got, m)
		}
		if err := batch.Error(); err != nil {
			t.Fatalf("fetch batch: %v", err)
		}
		if len(got) == n {
			t.Fatalf("fetch: got %d of %d messages", len(got), want)
		}
	}
	return got
}

func TestOpenEmbeddedDefaults(t *testing.T) {
	b := openEmbedded(t, bus.Config{})
	cfg := b.Stream().CachedInfo().Config
	if cfg.Name != "TENANTWAL" || len(cfg.Subjects) != 1 || cfg.Subjects[0] != "tw.>" {
		t.Errorf("stream %s subjects %v, want TENANTWAL [tw.>]", cfg.Name, cfg.Subjects)
	}
	if cfg.Discard != jetstream.DiscardNew || cfg.Retention != jetstream.LimitsPolicy ||
		cfg.Storage != jetstream.FileStorage || cfg.Duplicates != 2*time.Minute {
		t.Errorf("stream config %+v: want DiscardNew, Limits, File, 2m duplicates", cfg)
	}
	if got := b.Subject(7); got != "tw.p0007" {
		t.Errorf("Subject(7) = %q", got)
	}
	if got := b.MaxPayload(); got != 8<<20 {
		t.Errorf("MaxPayload = %d, want 8 MiB", got)
	}
	if !strings.HasPrefix(b.ClientURL(), "nats://127.0.0.1:") {
		t.Errorf("ClientURL = %q", b.ClientURL())
	}
	// Another process-like client can use ClientURL over TCP.
	nc, err := nats.Connect(b.ClientURL())
	if err != nil {
		t.Fatalf("connect to ClientURL: %v", err)
	}
	nc.Close()
}

func TestDedupByMsgID(t *testing.T) {
	ctx := testCtx(t)
	b := openEmbedded(t, bus.Config{})
	first, err := b.JetStream().Publish(ctx, b.Subject(1), []byte("a"), jetstream.WithMsgID("tx1/t1/0"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.JetStream().Publish(ctx, b.Subject(1), []byte("a"), jetstream.WithMsgID("tx1/t1/0"))
	if err != nil {
		t.Fatalf("duplicate publish: %v", err)
	}
	if first.Duplicate || !again.Duplicate || again.Sequence != first.Sequence {
		t.Errorf("acks %+v then %+v: want the second flagged Duplicate with the first's sequence", first, again)
	}
	if n := streamMsgs(t, b); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
}

func TestPartitionConsumerAckAll(t *testing.T) {
	ctx := testCtx(t)
	b := openEmbedded(t, bus.Config{Partitions: 8})
	seqs := publishN(t, b, 3, 10)
	publishN(t, b, 4, 5)

	c, err := b.Consumer(ctx, 3, "archiver-p0003")
	if err != nil {
		t.Fatal(err)
	}
	msgs := fetchAll(t, c, 10)
	for i, m := range msgs {
		if m.Subject() != "tw.p0003" || string(m.Data()) != fmt.Sprintf("p3-%d", i) {
			t.Fatalf("message %d: %s %q", i, m.Subject(), m.Data())
		}
	}
	if err := msgs[9].DoubleAck(ctx); err != nil {
		t.Fatalf("ack last: %v", err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Consumer != 10 || info.AckFloor.Stream != seqs[9] || info.NumAckPending != 0 {
		t.Errorf("after acking the 10th: ack floor %+v, pending %d; want consumer 10, stream %d, pending 0",
			info.AckFloor, info.NumAckPending, seqs[9])
	}
	if cfg := info.Config; cfg.AckPolicy != jetstream.AckAllPolicy || cfg.MaxDeliver != -1 ||
		cfg.AckWait != 5*time.Minute || cfg.FilterSubject != "tw.p0003" {
		t.Errorf("consumer config %+v", cfg)
	}

	// Re-creating the durable keeps its position: nothing is redelivered.
	c, err = b.Consumer(ctx, 3, "archiver-p0003")
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.FetchNoWait(10)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		t.Errorf("redelivered after AckAll: %s %q", m.Subject(), m.Data())
	}

	// The other partition is untouched.
	c4, err := b.Consumer(ctx, 4, "archiver-p0004")
	if err != nil {
		t.Fatal(err)
	}
	fetchAll(t, c4, 5)

	if _, err := b.Consumer(ctx, 8, "x"); err == nil {
		t.Error("Consumer(8) on 8 partitions: want an error")
	}
}

// TestUnackedRedeliveredAfterReopen: a new owner of the partition (after a
// restart) gets the previous owner's unacknowledged messages first and in
// order, not after AckWait behind newer ones, where an AckAll on a newer
// message would acknowledge them unarchived.
func TestUnackedRedeliveredAfterReopen(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	b, err := bus.Open(ctx, bus.Config{StoreDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, b, 0, 6)
	c, err := b.Consumer(ctx, 0, "a0")
	if err != nil {
		t.Fatal(err)
	}
	msgs := fetchAll(t, c, 6)
	if err := msgs[3].DoubleAck(ctx); err != nil { // acks 1..4
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}

	b = openEmbedded(t, bus.Config{StoreDir: dir})
	if n := streamMsgs(t, b); n != 6 {
		t.Fatalf("after reopen: %d messages, want 6", n)
	}
	publishN(t, b, 0, 8) // p0-6, p0-7 are new; p0-0..5 are deduplicated
	if n := streamMsgs(t, b); n != 8 {
		t.Fatalf("after publishing 2 more: %d messages, want 8", n)
	}
	c, err = b.Consumer(ctx, 0, "a0")
	if err != nil {
		t.Fatal(err)
	}
	if info := c.CachedInfo(); info.AckFloor.Stream != 4 || info.NumAckPending != 0 {
		t.Errorf("after taking over: ack floor %+v, ack pending %d; want stream 4, none pending",
			info.AckFloor, info.NumAckPending)
	}
	msgs = fetchAll(t, c, 4)
	for i, m := range msgs {
		if want := fmt.Sprintf("p0-%d", 4+i); string(m.Data()) != want {
			t.Errorf("delivery %d after reopen: %q, want %q", i, m.Data(), want)
		}
	}
}

func TestDiscardNewRejectsWhenFull(t *testing.T) {
	ctx := testCtx(t)
	b := openEmbedded(t, bus.Config{MaxBytes: 16 << 10})
	payload := make([]byte, 1<<10)
	var err error
	n := 0
	for ; n < 100; n++ {
		if _, err = b.JetStream().Publish(ctx, b.Subject(0), payload); err != nil {
			break
		}
	}
	if err == nil {
		t.Fatal("100 KiB into a 16 KiB stream: no publish error")
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || !strings.Contains(err.Error(), "maximum bytes") {
		t.Errorf("publish error %v (%T): want an APIError about maximum bytes", err, err)
	}
	t.Logf("stream full after %d messages: %v (code %d)", n, err, apiErr.ErrorCode)
	info, err := b.Stream().Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.FirstSeq != 1 || info.State.Msgs != uint64(n) {
		t.Errorf("state %+v: want the first %d messages kept, first seq 1", info.State, n)
	}
}

func TestMaxPayloadEnforced(t *testing.T) {
	b := openEmbedded(t, bus.Config{MaxPayload: 64 << 10})
	if b.MaxPayload() != 64<<10 {
		t.Fatalf("MaxPayload = %d", b.MaxPayload())
	}
	_, err := b.JetStream().Publish(testCtx(t), b.Subject(0), make([]byte, 64<<10+1))
	if !errors.Is(err, nats.ErrMaxPayload) {
		t.Errorf("oversized publish: %v, want nats.ErrMaxPayload", err)
	}
}

func TestStreamConflict(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.RunJetStream(t)
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TENANTWAL", Subjects: []string{"other.>"}}); err != nil {
		t.Fatal(err)
	}
	_, err = bus.Open(ctx, bus.Config{URL: srv.URL()}, nil)
	if !errors.Is(err, bus.ErrStreamConflict) {
		t.Fatalf("Open over a foreign stream: %v, want ErrStreamConflict", err)
	}
	st, err := js.Stream(ctx, "TENANTWAL")
	if err != nil || st.CachedInfo().Config.Subjects[0] != "other.>" {
		t.Errorf("foreign stream changed: %v %v", err, st.CachedInfo().Config.Subjects)
	}
	// A different stream name and prefix coexist.
	open(t, bus.Config{URL: srv.URL(), Stream: "TW2", SubjectPrefix: "acme.tw"})
}

func TestReopenUpdatesLimits(t *testing.T) {
	srv := natstest.RunJetStream(t)
	open(t, bus.Config{URL: srv.URL()})
	b := open(t, bus.Config{URL: srv.URL(), MaxBytes: 1 << 30, DuplicateWindow: time.Minute})
	info, err := b.Stream().Info(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxBytes != 1<<30 || info.Config.Duplicates != time.Minute {
		t.Errorf("limits not updated: %+v", info.Config)
	}
}

// consumerInfo polls c.Info until the (reconnecting) client gets an answer.
func consumerInfo(t *testing.T, c jetstream.Consumer) *jetstream.ConsumerInfo {
	t.Helper()
	ctx := testCtx(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		info, err := c.Info(rctx)
		cancel()
		if err == nil {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer info after restart: %v", err)
		}
		select { // poll interval
		case <-ctx.Done():
			t.Fatalf("consumer info after restart: %v", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestExternalServerKillRestart SIGKILLs the server under an open Bus.
// Stored messages and de-duplication state survive; the consumer's ack
// floor may move back (nats-server writes consumer state asynchronously,
// even with sync_interval: always) but never forward, and taking the
// partition over again delivers everything after it, in order, without gaps.
func TestExternalServerKillRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("kill/restart test")
	}
	ctx := testCtx(t)
	proc := natstest.StartProcess(t)
	b := open(t, bus.Config{URL: proc.URL(), Name: "bus-test"})
	if b.ClientURL() != proc.URL() || b.MaxPayload() != 1<<20 {
		t.Errorf("ClientURL %q MaxPayload %d; want %q and the 1 MiB server default", b.ClientURL(), b.MaxPayload(), proc.URL())
	}
	publishN(t, b, 2, 50)
	c, err := b.Consumer(ctx, 2, "a2")
	if err != nil {
		t.Fatal(err)
	}
	msgs := fetchAll(t, c, 20)
	if err := msgs[19].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}

	proc.Kill()
	proc.Restart(t)

	// The same Bus reconnects by itself.
	info := consumerInfo(t, c)
	floor := info.AckFloor.Stream
	t.Logf("ack floor after SIGKILL: %+v (acked 20 before the kill)", info.AckFloor)
	if floor > 20 {
		t.Errorf("ack floor after restart %+v, beyond the 20 acknowledged", info.AckFloor)
	}
	if n := streamMsgs(t, b); n != 50 {
		t.Errorf("after kill+restart: %d messages, want 50", n)
	}
	// An archiver taking the partition over resumes right after the floor.
	c, err = b.Consumer(ctx, 2, "a2")
	if err != nil {
		t.Fatal(err)
	}
	rest := fetchAll(t, c, 50-int(floor))
	for i, m := range rest {
		if want := fmt.Sprintf("p2-%d", int(floor)+i); string(m.Data()) != want {
			t.Fatalf("delivery %d after restart: %q, want %q", i, m.Data(), want)
		}
	}
	// Publishing continues, and dedup state survived too.
	ack, err := b.JetStream().Publish(ctx, b.Subject(2), []byte("again"), jetstream.WithMsgID("p2-49"))
	if err != nil || !ack.Duplicate {
		t.Errorf("republish p2-49 after restart: %+v %v, want Duplicate", ack, err)
	}
}

// TestExternalServerStopRestart: a clean server shutdown keeps the exact
// ack floor, and the same consumer handle continues after it.
func TestExternalServerStopRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restart test")
	}
	ctx := testCtx(t)
	proc := natstest.StartProcess(t)
	b := open(t, bus.Config{URL: proc.URL()})
	publishN(t, b, 5, 30)
	c, err := b.Consumer(ctx, 5, "a5")
	if err != nil {
		t.Fatal(err)
	}
	msgs := fetchAll(t, c, 20)
	if err := msgs[19].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}

	proc.Restart(t) // SIGTERM, then start on the same port and store

	if info := consumerInfo(t, c); info.AckFloor.Consumer != 20 || info.AckFloor.Stream != 20 {
		t.Errorf("ack floor after clean restart %+v, want 20/20", info.AckFloor)
	}
	rest := fetchAll(t, c, 10)
	if string(rest[0].Data()) != "p5-20" {
		t.Errorf("first after restart %q, want p5-20", rest[0].Data())
	}
}

func TestUnreachableURL(t *testing.T) {
	// A closed port is refused at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "nats://" + l.Addr().String()
	l.Close()

	// A port that accepts but never speaks NATS hits the connect timeout.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()

	for _, url := range []string{refused, "nats://user:secret@" + silent.Addr().String()} {
		start := time.Now()
		_, err := bus.Open(testCtx(t), bus.Config{URL: url}, nil)
		took := time.Since(start)
		t.Logf("%s: %v after %v", url, err, took.Round(time.Millisecond))
		if !bus.IsConnectError(err) {
			t.Errorf("Open(%s) = %v, want a ConnectError", url, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "is nats-server running there with JetStream, -js?") ||
			strings.Contains(msg, "secret") || !strings.Contains(msg, "127.0.0.1:") {
			t.Errorf("error %q: want the URL (password redacted) and the fix", msg)
		}
		if took > 6*time.Second {
			t.Errorf("Open(%s) took %v, want <= 6s", url, took)
		}
	}
}

func TestNoJetStream(t *testing.T) {
	srv := natstest.RunJetStream(t, func(o *server.Options) { o.JetStream = false })
	start := time.Now()
	_, err := bus.Open(testCtx(t), bus.Config{URL: srv.URL()}, nil)
	took := time.Since(start)
	t.Logf("%v after %v", err, took.Round(time.Millisecond))
	if !bus.IsConnectError(err) || !strings.Contains(err.Error(), srv.URL()) ||
		!strings.Contains(err.Error(), "is nats-server running there with JetStream, -js?") {
		t.Errorf("Open on a server without JetStream: %v, want a ConnectError naming the URL and the fix", err)
	}
	if took > 6*time.Second {
		t.Errorf("Open took %v, want <= 6s", took)
	}
}

func TestPartitionsChangeRefused(t *testing.T) {
	srv := natstest.RunJetStream(t)
	b := open(t, bus.Config{URL: srv.URL()})
	if got := b.Stream().CachedInfo().Config.Metadata["tenantwal.partitions"]; got != "16" {
		t.Errorf("partitions recorded in stream metadata: %q, want 16", got)
	}
	_, err := bus.Open(testCtx(t), bus.Config{URL: srv.URL(), Partitions: 32}, nil)
	if !errors.Is(err, bus.ErrPartitionsChanged) || !strings.Contains(err.Error(), "set Partitions to 16") {
		t.Errorf("reopen with 32 partitions: %v, want ErrPartitionsChanged naming 16", err)
	}
	open(t, bus.Config{URL: srv.URL(), Partitions: 16})
}

func TestAdoptStreamWithoutPartitionRecord(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.RunJetStream(t)
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TENANTWAL", Subjects: []string{"tw.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "tw.p0011", []byte("x")); err != nil {
		t.Fatal(err)
	}
	_, err = bus.Open(ctx, bus.Config{URL: srv.URL(), Partitions: 8}, nil)
	if !errors.Is(err, bus.ErrPartitionsChanged) || !strings.Contains(err.Error(), "tw.p0011") {
		t.Errorf("adopting a stream with tw.p0011 as 8 partitions: %v, want ErrPartitionsChanged", err)
	}
	b := open(t, bus.Config{URL: srv.URL(), Partitions: 12})
	if got := b.Stream().CachedInfo().Config.Metadata["tenantwal.partitions"]; got != "12" {
		t.Errorf("partitions recorded on adoption: %q, want 12", got)
	}
}

func TestMemoryStreamConflict(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.RunJetStream(t)
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TENANTWAL", Subjects: []string{"tw.>"},
		Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	_, err = bus.Open(ctx, bus.Config{URL: srv.URL()}, nil)
	if !errors.Is(err, bus.ErrStreamConflict) || !strings.Contains(err.Error(), "file storage") {
		t.Errorf("Open over a memory stream: %v, want ErrStreamConflict about file storage", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  bus.Config
		want string
	}{
		{"no store", bus.Config{}, "StoreDir"},
		{"port", bus.Config{StoreDir: "x", Port: 70000}, "Port"},
		{"stream dot", bus.Config{URL: "u", Stream: "a.b"}, "Stream"},
		{"prefix wildcard", bus.Config{URL: "u", SubjectPrefix: "tw.*"}, "SubjectPrefix"},
		{"prefix empty token", bus.Config{URL: "u", SubjectPrefix: "tw..x"}, "SubjectPrefix"},
		{"partitions", bus.Config{URL: "u", Partitions: 10001}, "Partitions"},
		{"max bytes", bus.Config{URL: "u", MaxBytes: -1}, "MaxBytes"},
		{"dup > age", bus.Config{URL: "u", MaxAge: time.Minute}, "DuplicateWindow"},
		{"payload", bus.Config{URL: "u", MaxPayload: 65 << 20}, "MaxPayload"},
		{"creds", bus.Config{URL: "u", Credentials: "/nonexistent.creds"}, "Credentials"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want an error about %s", tc.name, err, tc.want)
		}
	}
	cfg := bus.Config{URL: "nats://x", SubjectPrefix: "acme.tw"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Stream != "TENANTWAL" || cfg.Partitions != 16 || cfg.Replicas != 1 ||
		cfg.DuplicateWindow != 2*time.Minute || cfg.MaxPayload != 8<<20 {
		t.Errorf("defaults not filled: %+v", cfg)
	}
}
