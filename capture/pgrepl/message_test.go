package pgrepl

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantwal/tenantwal/schemas"
)

var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func TestParseXLogData(t *testing.T) {
	// 2024-01-02 03:04:05.123456 UTC in microseconds since 2000-01-01.
	when := time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC)
	us := uint64(when.Sub(pgEpoch) / time.Microsecond)
	b := concat(be64(0x16_B374D848), be64(0x17_00000000), be64(us), []byte("Bpayload"))
	x, err := ParseXLogData(b)
	if err != nil {
		t.Fatal(err)
	}
	if x.WALStart != 0x16_B374D848 || x.WALStart.String() != "16/B374D848" {
		t.Errorf("WALStart = %s", x.WALStart)
	}
	if x.ServerWALEnd != 0x17_00000000 {
		t.Errorf("ServerWALEnd = %s", x.ServerWALEnd)
	}
	if !x.ServerTime.Equal(when) || x.ServerTime.Location() != time.UTC {
		t.Errorf("ServerTime = %v, want %v", x.ServerTime, when)
	}
	if string(x.Data) != "Bpayload" {
		t.Errorf("Data = %q", x.Data)
	}
	b[24] = 'X'
	if x.Data[0] != 'X' {
		t.Error("Data does not alias the input")
	}

	// A header alone is valid: empty data.
	x, err = ParseXLogData(b[:24])
	if err != nil || len(x.Data) != 0 {
		t.Errorf("header only: %v, %q", err, x.Data)
	}
	for n := range 24 {
		if _, err := ParseXLogData(b[:n]); !errors.Is(err, ErrMalformed) {
			t.Errorf("%d bytes: err = %v, want ErrMalformed", n, err)
		}
	}
	if _, err := ParseXLogData(nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("nil: err = %v", err)
	}
}

func TestParsePrimaryKeepalive(t *testing.T) {
	b := concat(be64(0x1_00000010), be64(0), []byte{1})
	k, err := ParsePrimaryKeepalive(b)
	if err != nil {
		t.Fatal(err)
	}
	if k.ServerWALEnd != 0x1_00000010 || !k.ServerTime.Equal(pgEpoch) || !k.ReplyRequested {
		t.Errorf("got %+v", k)
	}
	b[16] = 0
	if k, err := ParsePrimaryKeepalive(b); err != nil || k.ReplyRequested {
		t.Errorf("reply 0: %+v, %v", k, err)
	}
	if _, err := ParsePrimaryKeepalive(append(b, 9, 9)); err != nil {
		t.Errorf("trailing bytes: %v", err)
	}
	for n := range 17 {
		if _, err := ParsePrimaryKeepalive(b[:n]); !errors.Is(err, ErrMalformed) {
			t.Errorf("%d bytes: err = %v, want ErrMalformed", n, err)
		}
	}
}

func TestAppendStandbyStatus(t *testing.T) {
	ct := pgEpoch.Add(90 * time.Second)
	b := appendStandbyStatus(nil, StandbyStatus{Write: 3, Flush: 2, Apply: 1, ClientTime: ct, ReplyRequested: true})
	want := concat([]byte{'r'}, be64(3), be64(2), be64(1), be64(90_000_000), []byte{1})
	if string(b) != string(want) {
		t.Errorf("got  %x\nwant %x", b, want)
	}
	if len(b) != 1+standbyStatusLen {
		t.Errorf("len %d", len(b))
	}
	// Zero ClientTime means now.
	b = appendStandbyStatus(nil, StandbyStatus{})
	got := pgTime(int64(binary.BigEndian.Uint64(b[25:])))
	if d := time.Since(got); d < 0 || d > time.Minute {
		t.Errorf("zero ClientTime sent as %v", got)
	}
	if b[33] != 0 {
		t.Error("reply requested by default")
	}
}

func TestPgTimeRoundTrip(t *testing.T) {
	for _, us := range []int64{0, 1, -1, 999_999, -999_999, 1_000_000, 757_393_445_123_456, 1<<63 - 1, -1 << 63, -1<<63 + 0x3030, 1<<63 - 1 - 0x3030} {
		tm := pgTime(us)
		if got := pgMicros(tm); got != us {
			t.Errorf("pgMicros(pgTime(%d)) = %d (%v)", us, got, tm)
		}
	}
	if got := pgTime(-1); !got.Equal(pgEpoch.Add(-time.Microsecond)) {
		t.Errorf("pgTime(-1) = %v", got)
	}
	far := time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := pgMicros(far); got != 1<<63-1 {
		t.Errorf("far future: %d, want saturation", got)
	}
}

func TestParseIdentifySystem(t *testing.T) {
	row := func(cols ...string) [][]byte {
		r := make([][]byte, len(cols))
		for i, c := range cols {
			if c != "NULL" {
				r[i] = []byte(c)
			}
		}
		return r
	}
	got, err := ParseIdentifySystem(&pgconn.Result{Rows: [][][]byte{row("7300000000000000001", "1", "0/1A2B3C8", "mydb")}})
	if err != nil {
		t.Fatal(err)
	}
	want := IdentifySystemResult{SystemID: "7300000000000000001", Timeline: 1, XLogPos: 0x1A2B3C8, DBName: "mydb"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got, err := ParseIdentifySystem(&pgconn.Result{Rows: [][][]byte{row("1", "2", "0/0", "NULL")}}); err != nil || got.DBName != "" {
		t.Errorf("physical: %+v, %v", got, err)
	}
	serverErr := errors.New("server said no")
	if _, err := ParseIdentifySystem(&pgconn.Result{Err: serverErr}); !errors.Is(err, serverErr) {
		t.Errorf("result error: %v", err)
	}
	for name, r := range map[string]*pgconn.Result{
		"nil":       nil,
		"no rows":   {},
		"two rows":  {Rows: [][][]byte{row("1", "1", "0/0", "d"), row("1", "1", "0/0", "d")}},
		"3 columns": {Rows: [][][]byte{row("1", "1", "0/0")}},
		"systemid":  {Rows: [][][]byte{row("", "1", "0/0", "d")}},
		"timeline":  {Rows: [][][]byte{row("1", "x", "0/0", "d")}},
		"timeline2": {Rows: [][][]byte{row("1", "99999999999", "0/0", "d")}},
		"xlogpos":   {Rows: [][][]byte{row("1", "1", "00", "d")}},
	} {
		if _, err := ParseIdentifySystem(r); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestCreateSlotSQL(t *testing.T) {
	for _, tc := range []struct {
		opts  CreateSlotOptions
		major int
		want  string
	}{
		{CreateSlotOptions{}, 15, `CREATE_REPLICATION_SLOT "s" LOGICAL "pgoutput"`},
		{CreateSlotOptions{Temporary: true, Snapshot: "export"}, 15, `CREATE_REPLICATION_SLOT "s" TEMPORARY LOGICAL "pgoutput" (SNAPSHOT 'export')`},
		{CreateSlotOptions{Snapshot: "nothing"}, 0, `CREATE_REPLICATION_SLOT "s" LOGICAL "pgoutput" (SNAPSHOT 'nothing')`},
		{CreateSlotOptions{Snapshot: "use"}, 14, `CREATE_REPLICATION_SLOT "s" LOGICAL "pgoutput" USE_SNAPSHOT`},
		{CreateSlotOptions{Snapshot: "export"}, 10, `CREATE_REPLICATION_SLOT "s" LOGICAL "pgoutput" EXPORT_SNAPSHOT`},
	} {
		got, err := createSlotSQL("s", "pgoutput", tc.opts, tc.major)
		if err != nil || got != tc.want {
			t.Errorf("%+v on %d: %q, %v; want %q", tc.opts, tc.major, got, err, tc.want)
		}
	}
	if got, _ := createSlotSQL(`a"b`, "p", CreateSlotOptions{}, 15); got != `CREATE_REPLICATION_SLOT "a""b" LOGICAL "p"` {
		t.Errorf("quoting: %q", got)
	}
	if _, err := createSlotSQL("s", "p", CreateSlotOptions{Snapshot: "EXPORT'); DROP"}, 15); err == nil {
		t.Error("bad snapshot option accepted")
	}
}

func TestPgoutputArgs(t *testing.T) {
	got := PgoutputArgs("tenantwal", true)
	want := []string{"proto_version '1'", "publication_names 'tenantwal'", "messages 'true'"}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("arg %d = %q, want %q", i, got[i], want[i])
		}
	}
	if got := PgoutputArgs("p", false); len(got) != 2 {
		t.Errorf("without messages: %q", got)
	}
	for pub, want := range map[string]string{
		"My Pub":  `publication_names '"My Pub"'`,
		"it's":    `publication_names '"it''s"'`,
		`a"b,c`:   `publication_names '"a""b,c"'`,
		"pub_1$":  `publication_names 'pub_1$'`,
		"1pub":    `publication_names '"1pub"'`,
		"":        `publication_names '""'`,
		"pub-one": `publication_names '"pub-one"'`,
	} {
		if got := PgoutputArgs(pub, false)[1]; got != want {
			t.Errorf("%q: %s, want %s", pub, got, want)
		}
	}
}

func TestLSNString(t *testing.T) {
	if s := schemas.LSN(0).String(); s != "0/0" {
		t.Errorf("LSN 0 = %q: START_REPLICATION needs 0/0", s)
	}
}
