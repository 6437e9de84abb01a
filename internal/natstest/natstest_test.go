package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantwal/tenantwal/internal/natstest"
)

// publishAndCount publishes one message to a file stream S (creating it) and
// returns the stream's message count.
func publishAndCount(t *testing.T, url string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s", []byte("x")); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestProcKillRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("kill/restart test")
	}
	p := natstest.StartProcess(t)
	url, dir, pid := p.URL(), p.StoreDir(), p.Pid()
	if pid == 0 || dir == "" {
		t.Fatalf("pid %d store %q", pid, dir)
	}
	if n := publishAndCount(t, url); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
	p.Kill()
	if p.Pid() != 0 {
		t.Errorf("Pid after Kill = %d, want 0", p.Pid())
	}
	p.Kill() // no-op
	p.Restart(t)
	if p.URL() != url || p.StoreDir() != dir || p.Pid() == pid {
		t.Errorf("after restart: %s %s pid %d; want same URL and store, new pid", p.URL(), p.StoreDir(), p.Pid())
	}
	if n := publishAndCount(t, url); n != 2 {
		t.Errorf("after SIGKILL and restart: %d messages, want 2", n)
	}
}

func TestRunJetStreamRestart(t *testing.T) {
	s := natstest.RunJetStream(t)
	url := s.URL()
	if n := publishAndCount(t, url); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
	s.Restart()
	if s.URL() != url {
		t.Errorf("URL after restart %s, want %s", s.URL(), url)
	}
	if n := publishAndCount(t, url); n != 2 {
		t.Errorf("after restart: %d messages, want 2", n)
	}
}
