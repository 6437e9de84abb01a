package capture

import (
	"bytes"
	"context"
	"time"

	"github.com/tenantwal/tenantwal/capture/pgoutput"
	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/schemas"
)

// relation is a decoded Relation message with its catalog description and
// routing decision.
type relation struct {
	ts    *schemas.TableSchema
	route route.Table
	// noTenantKey: a pool table whose replica identity lacks the tenant
	// column; its deletes and key changes cannot be routed.
	noTenantKey bool
	// enums are the enum-typed columns whose new values are checked
	// against the archived labels.
	enums []enumColumn
	// recorded and at are the catalog and column facts the DDL event
	// trigger recorded at the command that made this version (nil for a
	// version read from the live catalog): a Relation message decoded
	// later, when the catalog may have moved on, is described with them.
	recorded recordedCatalog
	at       map[string]columnFact
}

// tenantBuf collects one tenant's events of the current transaction (or
// snapshot) until a chunk is full.
type tenantBuf struct {
	batch schemas.Batch
	index map[*schemas.TableSchema]uint32
	size  int
}

func (tb *tenantBuf) add(ts *schemas.TableSchema, e schemas.Event) int {
	i, ok := tb.index[ts]
	if !ok {
		i = uint32(len(tb.batch.Tables))
		tb.batch.Tables = append(tb.batch.Tables, ts)
		tb.index[ts] = i
		tb.size += 512
	}
	e.Rel = i
	tb.batch.Events = append(tb.batch.Events, e)
	n := 16 + tupleSize(e.Old) + tupleSize(e.New)
	tb.size += n
	return n
}

func tupleSize(vals []schemas.Value) int {
	n := 0
	for _, v := range vals {
		n += 3 + len(v.Data)
	}
	return n
}

// chunker groups events by tenant and publishes them in bounded chunks:
// a tenant's chunk goes out when it reaches chunkBytes, every chunk when
// the whole buffer reaches maxBytes, and the final chunks at flushAll.
type chunker struct {
	pub        *publisher
	kind       schemas.BatchKind
	chunkBytes int
	maxBytes   int

	lsn    schemas.LSN
	end    schemas.LSN
	time   time.Time
	xid    uint32
	order  []schemas.TenantID
	bufs   map[schemas.TenantID]*tenantBuf
	chunks map[schemas.TenantID]uint32
	total  int
	// tenants, when not nil, collects every tenant an event was added for.
	tenants map[schemas.TenantID]struct{}
}

func newChunker(pub *publisher, kind schemas.BatchKind, chunkBytes, maxBytes int) *chunker {
	return &chunker{pub: pub, kind: kind, chunkBytes: chunkBytes, maxBytes: maxBytes,
		bufs: map[schemas.TenantID]*tenantBuf{}, chunks: map[schemas.TenantID]uint32{}}
}

// begin starts a transaction (or a snapshot at lsn).
func (c *chunker) begin(lsn schemas.LSN, t time.Time, xid uint32) {
	c.lsn, c.end, c.time, c.xid = lsn, 0, t, xid
	c.order = c.order[:0]
	clear(c.bufs)
	clear(c.chunks)
	c.total = 0
}

func (c *chunker) add(ctx context.Context, tenant schemas.TenantID, ts *schemas.TableSchema, e schemas.Event) error {
	tb := c.bufs[tenant]
	if tb == nil {
		tb = &tenantBuf{index: map[*schemas.TableSchema]uint32{}}
		c.bufs[tenant] = tb
		c.order = append(c.order, tenant)
		if c.tenants != nil {
			c.tenants[tenant] = struct{}{}
		}
	}
	c.total += tb.add(ts, e)
	if tb.size >= c.chunkBytes {
		if err := c.send(ctx, tenant, tb, false); err != nil {
			return err
		}
	}
	if c.total >= c.maxBytes {
		for _, t := range c.order {
			if tb := c.bufs[t]; len(tb.batch.Events) > 0 {
				if err := c.send(ctx, t, tb, false); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// seen reports whether tenant has events in the current transaction.
func (c *chunker) seen(tenant schemas.TenantID) bool { return c.bufs[tenant] != nil }

// touch makes sure tenant gets a final message even with no events.
func (c *chunker) touch(tenant schemas.TenantID) {
	if c.bufs[tenant] == nil {
		c.bufs[tenant] = &tenantBuf{index: map[*schemas.TableSchema]uint32{}}
		c.order = append(c.order, tenant)
	}
}

func (c *chunker) send(ctx context.Context, tenant schemas.TenantID, tb *tenantBuf, final bool) error {
	b := &tb.batch
	b.Kind, b.Tenant, b.CommitLSN, b.EndLSN, b.CommitTime, b.XID = c.kind, tenant, c.lsn, c.end, c.time, c.xid
	b.Chunk, b.Final = c.chunks[tenant], final
	if err := c.pub.publish(ctx, b); err != nil {
		return err
	}
	c.chunks[tenant]++
	c.total -= tb.size
	b.Events = b.Events[:0]
	// Later chunks repeat the table schemas they use.
	b.Tables = b.Tables[:0]
	clear(tb.index)
	tb.size = 0
	return nil
}

// flushAll sends every tenant's final chunk in first-seen order.
func (c *chunker) flushAll(ctx context.Context, end schemas.LSN) error {
	c.end = end
	for _, t := range c.order {
		if err := c.send(ctx, t, c.bufs[t], true); err != nil {
			return err
		}
	}
	return nil
}

// values copies a pgoutput tuple into Values that own their bytes: the
// decoder's buffer is reused for the next message.
func values(t pgoutput.Tuple) []schemas.Value {
	if t.Columns == nil {
		return nil
	}
	n := 0
	for _, c := range t.Columns {
		n += len(c.Data)
	}
	arena := make([]byte, 0, n)
	out := make([]schemas.Value, len(t.Columns))
	for i, c := range t.Columns {
		switch c.Kind {
		case 'n':
			out[i].Kind = schemas.ValueNull
		case 'u':
			out[i].Kind = schemas.ValueUnchanged
		default:
			start := len(arena)
			arena = append(arena, c.Data...)
			out[i] = schemas.Value{Kind: schemas.ValueText, Data: arena[start:len(arena):len(arena)]}
		}
	}
	return out
}

// keyEqual reports whether the replica identity columns of old and new hold
// the same values.
func keyEqual(ts *schemas.TableSchema, old, new []schemas.Value) bool {
	for i, c := range ts.Columns {
		if !c.Key || i >= len(old) || i >= len(new) {
			continue
		}
		if old[i].Kind != new[i].Kind || !bytes.Equal(old[i].Data, new[i].Data) {
			return false
		}
	}
	return true
}
