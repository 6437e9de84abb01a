// Package route decides which tenant each published table's rows belong to.
//
// Pool: a tenant column (default tenant_id, overridable per table) holds the
// tenant id; tables without it are excluded or archived under the reserved
// shared pseudo-tenant, by configuration. Bridge: the schema name maps to the
// tenant through a regular expression with one capture group; tables in
// other schemas are excluded or shared. Mixed: a table in a schema that
// matches the pattern belongs to that schema's tenant (bridge); any other
// table is routed by its tenant column (pool), else excluded or shared.
package route

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/tenantwal/tenantwal/schemas"
)

// Models.
const (
	Pool   = "pool"
	Bridge = "bridge"
	Mixed  = "mixed"
)

// Shared table handling.
const (
	SharedExclude = "exclude"
	SharedArchive = "archive"
)

// Config is the routing configuration.
type Config struct {
	// Model is Pool or Bridge. Default Pool.
	Model string
	// TenantColumn is the pool model's tenant column. Default "tenant_id".
	TenantColumn string
	// TableColumns overrides TenantColumn per table ("schema.table" → column).
	TableColumns map[string]string
	// SchemaPattern is the bridge model's schema → tenant pattern; its first
	// capture group is the tenant id. Default `^tenant_(.+)$`.
	SchemaPattern string
	// Shared says what to do with tables that have no tenant: SharedExclude
	// (default) or SharedArchive (under schemas.SharedTenant).
	Shared string
}

// Validate fills defaults and checks the configuration.
func (c *Config) Validate() error {
	if c.Model == "" {
		c.Model = Pool
	}
	if c.TenantColumn == "" {
		c.TenantColumn = "tenant_id"
	}
	if c.SchemaPattern == "" {
		c.SchemaPattern = `^tenant_(.+)$`
	}
	if c.Shared == "" {
		c.Shared = SharedExclude
	}
	switch c.Model {
	case Pool, Bridge, Mixed:
	default:
		return fmt.Errorf("routing model %q: use %q (tenant column), %q (schema per tenant) or %q (both)", c.Model, Pool, Bridge, Mixed)
	}
	switch c.Shared {
	case SharedExclude, SharedArchive:
	default:
		return fmt.Errorf("shared tables %q: use %q or %q", c.Shared, SharedExclude, SharedArchive)
	}
	re, err := regexp.Compile(c.SchemaPattern)
	if err != nil {
		return fmt.Errorf("schema pattern %q: %w", c.SchemaPattern, err)
	}
	if re.NumSubexp() < 1 {
		return fmt.Errorf("schema pattern %q has no capture group: put the tenant part in parentheses, e.g. ^tenant_(.+)$", c.SchemaPattern)
	}
	return nil
}

// Router resolves tables to routes. It is safe for concurrent use after New.
type Router struct {
	cfg Config
	re  *regexp.Regexp
}

// New returns a router for a validated configuration.
func New(cfg Config) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Router{cfg: cfg, re: regexp.MustCompile(cfg.SchemaPattern)}, nil
}

// Config returns the router's configuration with defaults filled.
func (r *Router) Config() Config { return r.cfg }

// Table is the routing decision for one table version.
type Table struct {
	// Excluded tables are not archived.
	Excluded bool
	// Fixed is the tenant of every row (bridge, shared); empty for pool.
	Fixed schemas.TenantID
	// Column is the tenant column's index (pool), -1 otherwise.
	Column int
	// ColumnName is the tenant column's name (pool).
	ColumnName string
}

// ErrNoTenant is wrapped when a row carries no usable tenant id.
var ErrNoTenant = errors.New("row has no tenant")

// TenantColumnFor returns the pool tenant column configured for a table.
func (r *Router) TenantColumnFor(schema, table string) string {
	if c, ok := r.cfg.TableColumns[schema+"."+table]; ok {
		return c
	}
	return r.cfg.TenantColumn
}

// Route decides how ts's rows are routed.
func (r *Router) Route(ts *schemas.TableSchema) Table {
	shared := Table{Excluded: true, Column: -1}
	if ts.RestoreTarget {
		return shared // a restore's output is never archived again
	}
	if r.cfg.Shared == SharedArchive {
		shared = Table{Fixed: schemas.SharedTenant, Column: -1}
	}
	if r.cfg.Model == Bridge || r.cfg.Model == Mixed {
		m := r.re.FindStringSubmatch(ts.Schema)
		if m != nil && m[1] != "" {
			return Table{Fixed: schemas.TenantID(m[1]), Column: -1}
		}
		if r.cfg.Model == Bridge {
			return shared
		}
	}
	{
		name := r.TenantColumnFor(ts.Schema, ts.Name)
		i := ts.ColumnIndex(name)
		if i < 0 {
			return shared
		}
		return Table{Column: i, ColumnName: name}
	}
}

// Tenant returns the tenant of one row (the new tuple, or the old key for a
// delete) of a table routed by t.
func (t Table) Tenant(row []schemas.Value) (schemas.TenantID, error) {
	if t.Column < 0 {
		return t.Fixed, nil
	}
	if t.Column >= len(row) {
		return "", fmt.Errorf("%w: tenant column %q missing from the row", ErrNoTenant, t.ColumnName)
	}
	v := row[t.Column]
	switch v.Kind {
	case schemas.ValueText:
		id := schemas.TenantID(v.Data)
		if err := id.Validate(); err != nil {
			return "", fmt.Errorf("%w: column %q: %w", ErrNoTenant, t.ColumnName, err)
		}
		return id, nil
	case schemas.ValueNull:
		return "", fmt.Errorf("%w: tenant column %q is NULL: make it NOT NULL", ErrNoTenant, t.ColumnName)
	default:
		return "", fmt.Errorf("%w: tenant column %q was not sent (unchanged TOAST value): the tenant column must be a short value", ErrNoTenant, t.ColumnName)
	}
}
