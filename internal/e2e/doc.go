// Package e2e holds the end-to-end tests of the whole pipeline against a
// real PostgreSQL, an embedded JetStream server and a file:// or s3:// store.
// It has no code of its own outside the tests.
package e2e
