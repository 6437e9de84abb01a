package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantwal/tenantwal/schemas"
)

// Consumer settings; see Bus.Consumer.
const (
	consumerAckWait       = 5 * time.Minute
	consumerMaxAckPending = 1_000_000
)

// metaPartitions is the stream metadata key recording the partition count
// the stream was created with.
const metaPartitions = "tenantwal.partitions"

func (c *Config) streamConfig() jetstream.StreamConfig {
	maxBytes, maxAge := c.MaxBytes, c.MaxAge
	if maxBytes == 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:        c.Stream,
		Description: "tenantwal change events, one subject per tenant partition",
		Subjects:    []string{c.SubjectPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		Storage:     jetstream.FileStorage,
		MaxMsgs:     -1,
		MaxBytes:    maxBytes,
		MaxAge:      maxAge,
		Duplicates:  c.DuplicateWindow,
		Replicas:    c.Replicas,
		Metadata:    map[string]string{metaPartitions: strconv.Itoa(c.Partitions)},
	}
}

// ensureStream creates the stream, or updates the limits of an existing one
// whose subjects, storage and partition count match. Any other existing
// stream is left alone and reported as ErrStreamConflict or
// ErrPartitionsChanged.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg *Config, logger *slog.Logger) (jetstream.Stream, error) {
	want := cfg.streamConfig()
	st, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, want)
		if err != nil {
			return nil, fmt.Errorf("create stream %s on %v: %w", want.Name, want.Subjects, err)
		}
		logger.Info("created JetStream stream", slog.String("stream", want.Name),
			slog.String("subject", want.Subjects[0]), slog.Int("partitions", cfg.Partitions))
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", want.Name, err)
	}
	have := st.CachedInfo().Config
	if err := checkExisting(ctx, st, &have, cfg); err != nil {
		return nil, err
	}
	// Keep what this package does not manage (e.g. placement, compression,
	// other metadata).
	have.Retention, have.Discard = want.Retention, want.Discard
	have.MaxBytes, have.MaxAge, have.Duplicates, have.Replicas = want.MaxBytes, want.MaxAge, want.Duplicates, want.Replicas
	have.Metadata = maps.Clone(have.Metadata)
	if have.Metadata == nil {
		have.Metadata = map[string]string{}
	}
	maps.Copy(have.Metadata, want.Metadata)
	st, err = js.UpdateStream(ctx, have)
	if err != nil {
		return nil, fmt.Errorf("update stream %s: %w", want.Name, err)
	}
	return st, nil
}

// checkExisting refuses an existing stream that tenantwal cannot adopt
// without losing or misrouting messages.
func checkExisting(ctx context.Context, st jetstream.Stream, have *jetstream.StreamConfig, cfg *Config) error {
	want := cfg.streamConfig()
	if !slices.Equal(slices.Sorted(slices.Values(have.Subjects)), want.Subjects) {
		return fmt.Errorf("stream %s has subjects %v, tenantwal needs %v: use another stream name or subject prefix, "+
			"or delete the stream if it is really unused: %w", want.Name, have.Subjects, want.Subjects, ErrStreamConflict)
	}
	if have.Storage != jetstream.FileStorage {
		return fmt.Errorf("stream %s uses %v storage, tenantwal needs file storage (storage cannot be changed in place): "+
			"use another stream name, or delete the stream if it is really unused: %w", want.Name, have.Storage, ErrStreamConflict)
	}
	if n, ok := have.Metadata[metaPartitions]; ok {
		if n != want.Metadata[metaPartitions] {
			return fmt.Errorf("stream %s was created with %s partitions, the configuration asks for %d: "+
				"set Partitions to %s, or use a new stream name and subject prefix: %w",
				want.Name, n, cfg.Partitions, n, ErrPartitionsChanged)
		}
		return nil
	}
	// No record (a stream made by hand or by an older tenantwal): adopt it
	// only if no message sits on a subject outside the configured partitions.
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(want.Subjects[0]))
	if err != nil {
		return fmt.Errorf("inspect stream %s: %w", want.Name, err)
	}
	valid := make(map[string]bool, cfg.Partitions)
	for p := range cfg.Partitions {
		valid[schemas.Subject(cfg.SubjectPrefix, p)] = true
	}
	for subj := range info.State.Subjects {
		if !valid[subj] {
			return fmt.Errorf("stream %s holds messages on %s, which is not one of the %d configured partitions: "+
				"set Partitions to the count the stream was written with: %w", want.Name, subj, cfg.Partitions, ErrPartitionsChanged)
		}
	}
	return nil
}

// Consumer takes over partition p for durableName: it creates, or updates,
// the durable pull consumer on p's subject, then resets it to its ack floor,
// and returns it.
//
// The consumer uses AckAll (acking a message acknowledges every earlier one
// it delivered), DeliverAll, a 5 minute AckWait, unlimited redelivery and up
// to 1,000,000 unacknowledged messages. The reset makes everything after the
// ack floor, including messages delivered to a previous owner that never
// acknowledged them, come next and in stream order. Without it those
// messages would wait for AckWait while newer ones were delivered, and an
// AckAll on a newer message would acknowledge them unarchived.
//
// Call Consumer once per owner of the partition (at start, or after taking
// over its lease), not per fetch: a second caller makes the first one's
// unacknowledged messages be delivered again. The ack floor itself is kept,
// so calling it again after all deliveries were acknowledged redelivers
// nothing.
func (b *Bus) Consumer(ctx context.Context, p int, durableName string) (jetstream.Consumer, error) {
	if p < 0 || p >= b.cfg.Partitions {
		return nil, fmt.Errorf("consumer %s: partition %d out of range 0..%d", durableName, p, b.cfg.Partitions-1)
	}
	cc := jetstream.ConsumerConfig{
		Durable:       durableName,
		Description:   "tenantwal archiver for " + b.Subject(p),
		FilterSubject: b.Subject(p),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       consumerAckWait,
		MaxDeliver:    -1,
		MaxAckPending: consumerMaxAckPending,
	}
	if _, err := b.stream.CreateOrUpdateConsumer(ctx, cc); err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", durableName, b.Subject(p), err)
	}
	if _, err := b.stream.ResetConsumer(ctx, durableName); err != nil {
		return nil, fmt.Errorf("reset consumer %s on %s to its ack floor (needs a nats-server with the "+
			"consumer reset API, as the v2.15 that tenantwal pins): %w", durableName, b.Subject(p), err)
	}
	c, err := b.stream.Consumer(ctx, durableName) // CachedInfo after the reset
	if err != nil {
		return nil, fmt.Errorf("look up consumer %s on %s: %w", durableName, b.Subject(p), err)
	}
	return c, nil
}
