package pgrepl

import "errors"

// ErrMalformed is wrapped by the errors of the Parse functions when the input
// is not a well-formed message or result.
var ErrMalformed = errors.New("malformed replication message")
