package route_test

import (
	"errors"
	"testing"

	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/schemas"
)

func table(schema, name string, cols ...string) *schemas.TableSchema {
	ts := &schemas.TableSchema{Schema: schema, Name: name}
	for _, c := range cols {
		ts.Columns = append(ts.Columns, schemas.Column{Name: c})
	}
	return ts
}

func text(s string) schemas.Value { return schemas.Value{Kind: schemas.ValueText, Data: []byte(s)} }

func TestPoolRouting(t *testing.T) {
	r, err := route.New(route.Config{TableColumns: map[string]string{"billing.invoices": "org"}})
	if err != nil {
		t.Fatal(err)
	}
	orders := r.Route(table("public", "orders", "id", "tenant_id", "note"))
	if orders.Excluded || orders.Column != 1 {
		t.Fatalf("orders: %+v", orders)
	}
	for _, id := range []string{"acme", "a.b c", "*", ">", "a/b", "ünï", "42", "8a7f2b3c-0000-4000-8000-000000000001"} {
		got, err := orders.Tenant([]schemas.Value{text("1"), text(id), text("x")})
		if err != nil || got != schemas.TenantID(id) {
			t.Fatalf("tenant %q: got %q, %v", id, got, err)
		}
	}
	if _, err := orders.Tenant([]schemas.Value{text("1"), {Kind: schemas.ValueNull}, text("x")}); !errors.Is(err, route.ErrNoTenant) {
		t.Fatalf("null tenant: %v", err)
	}
	inv := r.Route(table("billing", "invoices", "id", "org"))
	if inv.Column != 1 {
		t.Fatalf("override: %+v", inv)
	}
	if got := r.Route(table("public", "countries", "code")); !got.Excluded {
		t.Fatalf("shared table not excluded: %+v", got)
	}
	r2, _ := route.New(route.Config{Shared: route.SharedArchive})
	if got := r2.Route(table("public", "countries", "code")); got.Excluded || got.Fixed != schemas.SharedTenant {
		t.Fatalf("shared table not archived as shared: %+v", got)
	}
}

func TestBridgeRouting(t *testing.T) {
	r, err := route.New(route.Config{Model: route.Bridge, SchemaPattern: `^customer_(.+)$`})
	if err != nil {
		t.Fatal(err)
	}
	got := r.Route(table("customer_acme.eu", "orders", "id"))
	if got.Excluded || got.Fixed != "acme.eu" {
		t.Fatalf("bridge: %+v", got)
	}
	if got := r.Route(table("public", "plans", "id")); !got.Excluded {
		t.Fatalf("public not excluded: %+v", got)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []route.Config{
		{Model: "silly"},
		{Model: route.Bridge, SchemaPattern: `^tenant_.+$`},
		{Model: route.Bridge, SchemaPattern: `(`},
		{Shared: "keep"},
	} {
		if _, err := route.New(c); err == nil {
			t.Errorf("config %+v: no error", c)
		}
	}
}

func TestMixedRouting(t *testing.T) {
	r, err := route.New(route.Config{Model: route.Mixed})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Route(table("tenant_globex", "projects", "id", "tenant_id")); got.Fixed != "globex" || got.Column != -1 {
		t.Fatalf("schema per tenant: %+v", got)
	}
	if got := r.Route(table("public", "accounts", "id", "tenant_id")); got.Excluded || got.Column != 1 {
		t.Fatalf("pool table: %+v", got)
	}
	if got := r.Route(table("public", "plans", "id")); !got.Excluded {
		t.Fatalf("shared table not excluded: %+v", got)
	}
}
