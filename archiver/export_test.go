package archiver

import "github.com/nats-io/nats.go/jetstream"

// WithConsumerWrapper makes every partition worker use f(consumer) instead
// of the consumer, so tests can lose deliveries on purpose.
func WithConsumerWrapper(f func(jetstream.Consumer) jetstream.Consumer) Option {
	return func(a *Archiver) { a.wrapConsumer = f }
}
