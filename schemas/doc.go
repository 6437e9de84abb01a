// Package schemas holds tenantwal's versioned formats: positions (LSN),
// tenant identities and their escaping into NATS subjects and object keys,
// the change event and its binary wire encoding (one JetStream message is one
// Batch), table schemas, and the per-tenant manifest.
//
// It is the only package that capture, archiver and replayer all import.
// Every format here carries a version; readers refuse versions they do not
// know instead of guessing. See FORMATS.md beside this file for the spec.
package schemas
