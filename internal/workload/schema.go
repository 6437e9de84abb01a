// Package workload builds a realistic multi-tenant schema, pool and bridge,
// and writes a random workload into it. The demo, the integration tests and
// the benchmark share it, so what is measured is what is tested.
package workload

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Spec names the tenants of each model.
type Spec struct {
	// Pool tenants share public.accounts and public.invoices, keyed by a
	// tenant_id column. Any text works, including dots, spaces and slashes.
	Pool []string
	// Bridge tenants each get a schema "tenant_<id>" with projects and
	// tasks; ids must be valid in an unquoted-looking schema name suffix
	// ([a-z0-9_]).
	Bridge []string
}

// Table is one table of a tenant: where it is and how to select the
// tenant's rows.
type Table struct {
	Schema, Name string
	// TenantColumn is the pool tenant column, "" for a bridge table.
	TenantColumn string
}

// QualifiedName is "schema.table", unquoted, as in the archive.
func (t Table) QualifiedName() string { return t.Schema + "." + t.Name }

// Tables returns the tables that hold tenant's rows.
func (s Spec) Tables(tenant string) []Table {
	for _, b := range s.Bridge {
		if b == tenant {
			sch := BridgeSchema(b)
			return []Table{{Schema: sch, Name: "projects"}, {Schema: sch, Name: "tasks"}}
		}
	}
	return []Table{{Schema: "public", Name: "accounts", TenantColumn: "tenant_id"}, {Schema: "public", Name: "invoices", TenantColumn: "tenant_id"}}
}

// Tenants returns every tenant, pool first.
func (s Spec) Tenants() []string { return append(append([]string(nil), s.Pool...), s.Bridge...) }

// BridgeSchema is the schema of a bridge tenant.
func BridgeSchema(tenant string) string { return "tenant_" + tenant }

const poolDDL = `
CREATE TYPE public.account_status AS ENUM ('trial', 'active', 'suspended');
CREATE TABLE public.plans (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL);
INSERT INTO public.plans VALUES (1, 'free', 0), (2, 'team', 49.00), (3, 'enterprise', 990.00);
CREATE TABLE public.accounts (
	tenant_id  text NOT NULL,
	id         bigserial,
	name       text NOT NULL,
	status     public.account_status NOT NULL DEFAULT 'trial',
	plan_id    int NOT NULL REFERENCES public.plans (id),
	balance    numeric(14,2) NOT NULL DEFAULT 0,
	tags       text[],
	profile    jsonb,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id)
);
CREATE TABLE public.invoices (
	tenant_id  text NOT NULL,
	id         bigserial,
	account_id bigint NOT NULL,
	amount     numeric(14,2) NOT NULL,
	lines      jsonb NOT NULL,
	issued_at  timestamptz NOT NULL DEFAULT now(),
	due        date,
	paid       boolean NOT NULL DEFAULT false,
	note       text,
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, account_id) REFERENCES public.accounts (tenant_id, id) ON DELETE CASCADE
);
`

const bridgeDDL = `
CREATE SCHEMA %[1]s;
CREATE TYPE %[1]s.task_state AS ENUM ('todo', 'doing', 'done');
CREATE TABLE %[1]s.projects (
	id         serial PRIMARY KEY,
	title      text NOT NULL,
	budget     numeric(12,2),
	labels     text[],
	meta       jsonb,
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE %[1]s.tasks (
	id         bigserial PRIMARY KEY,
	project_id int NOT NULL REFERENCES %[1]s.projects (id) ON DELETE CASCADE,
	state      %[1]s.task_state NOT NULL DEFAULT 'todo',
	estimate   interval,
	points     double precision,
	payload    jsonb,
	done_at    timestamptz
);
`

// Setup creates the schema for spec in conn's database.
func Setup(ctx context.Context, conn *pgx.Conn, spec Spec) error {
	var b strings.Builder
	b.WriteString(poolDDL)
	for _, t := range spec.Bridge {
		fmt.Fprintf(&b, bridgeDDL, pgx.Identifier{BridgeSchema(t)}.Sanitize())
	}
	if _, err := conn.Exec(ctx, b.String()); err != nil {
		return fmt.Errorf("create the workload schema: %w", err)
	}
	return nil
}
