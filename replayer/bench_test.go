package replayer_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// benchOrders is the bench's orders table (internal/bench): text, numeric,
// jsonb and two timestamptz, about 200 bytes a row.
func benchOrders() *schemas.TableSchema {
	return replayer.TableSchemaFor("tenant_whale", "orders",
		schemas.Column{Name: "id", TypeOID: 20, TypeMod: -1, TypeName: "bigint", Key: true, NotNull: true},
		schemas.Column{Name: "status", TypeOID: 25, TypeMod: -1, TypeName: "text", NotNull: true},
		schemas.Column{Name: "customer", TypeOID: 25, TypeMod: -1, TypeName: "text", NotNull: true},
		schemas.Column{Name: "email", TypeOID: 25, TypeMod: -1, TypeName: "text", NotNull: true},
		schemas.Column{Name: "amount", TypeOID: 1700, TypeMod: 14<<16 | 2 + 4, TypeName: "numeric(14,2)", NotNull: true},
		schemas.Column{Name: "attrs", TypeOID: 3802, TypeMod: -1, TypeName: "jsonb", NotNull: true},
		schemas.Column{Name: "note", TypeOID: 25, TypeMod: -1, TypeName: "text"},
		schemas.Column{Name: "created_at", TypeOID: 1184, TypeMod: -1, TypeName: "timestamp with time zone", NotNull: true},
		schemas.Column{Name: "updated_at", TypeOID: 1184, TypeMod: -1, TypeName: "timestamp with time zone", NotNull: true},
	)
}

func benchOrderRow(id int64, rev int) []schemas.Value {
	note := replayer.Null
	if id%3 != 0 {
		note = replayer.Txt(fmt.Sprintf("please leave the parcel at the front door, rev %d", rev))
	}
	return []schemas.Value{
		replayer.Txt(fmt.Sprint(id)),
		replayer.Txt([]string{"new", "paid", "shipped", "delivered"}[(id+int64(rev))%4]),
		replayer.Txt(fmt.Sprintf("Customer %d Smith", id%997)),
		replayer.Txt(fmt.Sprintf("customer%d@example.com", id%997)),
		replayer.Txt(fmt.Sprintf("%d.%02d", id%10000, rev%100)),
		replayer.Txt(fmt.Sprintf(`{"qty": %d, "sku": "SKU-%05d", "city": "Berlin", "channel": "web"}`, rev%7+1, id%50000)),
		note,
		replayer.Txt("2026-11-23 10:15:00.123456+00"),
		replayer.Txt(fmt.Sprintf("2026-11-23 11:%02d:%02d.654321+00", rev%60, id%60)),
	}
}

// BenchmarkApply restores a tenant shaped like the bench's restored one at
// --size 0.3: 30k snapshot rows in 4 objects, then 30k changes (80%
// inserts, 15% updates, 5% deletes, 100-row transactions) in 60 segment
// objects.
func BenchmarkApply(b *testing.B) {
	ts := benchOrders()
	a := replayer.NewArchiveBuilder(b, "whale")
	const snapRows, changes, perObject = 30_000, 30_000, 500
	var snap []schemas.ObjectRef
	for lo := int64(1); lo <= snapRows; lo += snapRows / 4 {
		rows := make([][]schemas.Value, 0, snapRows/4)
		for id := lo; id < lo+snapRows/4; id++ {
			rows = append(rows, benchOrderRow(id, 0))
		}
		snap = append(snap, a.SnapshotObject(ts, 0x1000, rows...))
	}
	a.Snapshot(0x1000, snap, ts)
	next, lsn := int64(snapRows+1), schemas.LSN(0x2000)
	var objRows []replayer.Change
	for i := range changes {
		if i%100 == 0 {
			lsn += 0x100
		}
		c := replayer.Change{LSN: lsn, Seq: uint32(i%100 + 1)}
		switch k := i % 20; {
		case k < 16:
			c.Op, c.Vals = schemas.OpInsert, benchOrderRow(next, 0)
			next++
		case k < 19:
			c.Op, c.Vals = schemas.OpUpdate, benchOrderRow(int64(i*7)%next+1, i)
		default:
			c.Op, c.Vals = schemas.OpDelete, keyOnlyN(int64(i*13)%next+1, len(ts.Columns))
		}
		objRows = append(objRows, c)
		if len(objRows) == perObject {
			a.Segment([]*schemas.TableSchema{ts}, a.Object(ts, "segments", objRows))
			objRows = nil
		}
	}
	plan, err := replayer.PlanRestore(a.Load(), replayer.Target{LSN: lsn})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.NewDB(b))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows int64
	n := 0
	for b.Loop() {
		n++
		res, err := replayer.Apply(ctx, a.Store, conn, plan, replayer.Options{Schema: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		rows = res.Tables[0].Rows
		b.StopTimer()
		if _, err := conn.Exec(ctx, "DROP SCHEMA bench CASCADE"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(rows)*float64(n)/b.Elapsed().Seconds(), "rows/s")
}

func keyOnlyN(id int64, n int) []schemas.Value {
	out := make([]schemas.Value, n)
	for i := range out {
		out[i] = replayer.Null
	}
	out[0] = replayer.Txt(fmt.Sprint(id))
	return out
}
