// Package faults holds the fault tests of issue #3: real tenantwal
// processes (capture, archive), a real nats-server process and a real
// PostgreSQL, killed with SIGKILL at exact points (internal/failpoint) or
// at arbitrary ones, then restarted; every restore is compared with the
// source's checksums (internal/pipetest). Only its tests hold code.
package faults
