package pipeline

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// Config is the pipeline's settings.
type Config struct {
	// InternalAddr serves /metrics, /healthz and /readyz. Default "127.0.0.1:9102".
	InternalAddr string `yaml:"internal_addr"`
	// Group is the Kafka consumer group. Default "inlet-pipeline".
	Group string `yaml:"group"`
	// InstanceID, when set, makes this process a static member of the consumer group (Kafka's
	// group.instance.id): restarted with the same id within SessionTimeout, it takes its partitions back
	// at once, without a rebalance (rolling restarts, a crash and its restart). Each running process
	// needs its own id: a second process with the same id fences the first out of the group. Default ""
	// (dynamic membership).
	InstanceID string `yaml:"instance_id"`
	// SessionTimeout is how long the group waits for a member that stopped heartbeating (a crashed
	// process) before its partitions go to the others; with InstanceID, how long a restart has to take
	// them back. Heartbeats run beside the processing, so slow batches do not count against it. Default
	// 15s (Kafka's own default is 45s); the broker accepts 6s..30m.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// BatchRows flushes the batch (the rows of every assigned partition) to ClickHouse at this many rows. Default 10000. Larger batches
	// insert more efficiently but hold more memory per partition.
	BatchRows int `yaml:"batch_rows"`
	// BatchBytes flushes the batch when the payloads it holds reach this many bytes, whatever BatchRows
	// says: with bodies of up to 1 MiB, rows alone do not bound memory (a poll takes no more records
	// than fit). Default 8 MiB; the ClickHouse client holds about three to four times this in column
	// buffers while it inserts, so this is most of the pipeline's memory with large bodies (16 MiB: an
	// RSS of ~310 MiB with 64 KiB bodies in the bench, 8 MiB: ~200 MiB).
	BatchBytes int `yaml:"batch_bytes"`
	// FlushInterval flushes a non-empty batch at least this often. Default 1s; it bounds the delay from
	// the 202 to the row being visible while the pipeline works through a backlog.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// FlushLinger flushes a batch this old as soon as the pipeline has caught up (a poll brought every
	// record Kafka had for its partitions, fewer than it could take) and has spent, since the batch
	// started, at least as long waiting on Kafka as its last flush took, without waiting out
	// FlushInterval: the delay from the 202 to the row while the pipeline has time to spare. Behind, or
	// too busy to pay for the extra flushes with idle time, it fills its batches to batch_rows,
	// batch_bytes or flush_interval as before. It bounds the inserts to one flush (one INSERT per table
	// written) per FlushLinger. Default 250ms; at least 10ms; at or above flush_interval there is no early
	// flush (a config that shortens flush_interval alone so stays valid).
	FlushLinger time.Duration `yaml:"flush_linger"`
	// RetentionDays keeps activity and events this many days; older daily partitions are dropped.
	// It is also the longest retention a project may set (see RetentionBounds). Default 30.
	RetentionDays int `yaml:"retention_days"`
	// RetentionInterval is how often old partitions are looked for. Default 1h.
	RetentionInterval time.Duration `yaml:"retention_interval"`
	// HighWaterLookback bounds how far back the per-partition high-water marks are read on assignment
	// (the queries prune older daily partitions instead of scanning them). Default 192h: longer than
	// Kafka's default 7-day retention, so every offset Kafka can still deliver is covered. Keep it above
	// kafka.retention plus the longest pipeline outage you plan for.
	HighWaterLookback time.Duration `yaml:"high_water_lookback"`
	// InsertTimeout bounds one ClickHouse INSERT attempt; a failed attempt is retried with backoff.
	// Default 30s.
	InsertTimeout time.Duration `yaml:"insert_timeout"`
	// RetryMaxBackoff caps the wait between retries while ClickHouse, Kafka or PostgreSQL is unreachable.
	// Default 10s. Lower resumes sooner after an outage; higher costs less while it lasts.
	RetryMaxBackoff time.Duration `yaml:"retry_max_backoff"`
	// ConfigWait is how long a record waits for the webhook config version it was authenticated against
	// when the cache still has an older one (the push normally arrives within 1 s). Default 2s; after it
	// the cached config is used and the entry's detail says so.
	ConfigWait time.Duration `yaml:"config_wait"`
	// AuthFailureStreak is how many consecutive auth_rejected requests raise a notification. Default 5.
	AuthFailureStreak int `yaml:"auth_failure_streak"`
	// NotificationTimeout bounds one POST to a project's notification URL. Default 5s.
	NotificationTimeout time.Duration `yaml:"notification_timeout"`
	// ShutdownTimeout bounds the final flush and commit on shutdown. Default 30s; what is not flushed by
	// then is redone by the next consumer (nothing is committed for it).
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// RebalanceGrace is how long work in progress (an insert retried while ClickHouse is slow or down, a
	// directory lookup) may hold up a consumer-group rebalance before it is abandoned: the batch is
	// dropped, the partitions are rewound to what is known written, and the high-water marks are read
	// again, as after a restart. Kafka removes a member that holds a rebalance past its rebalance timeout
	// (60s), and a removed member that goes on writing would duplicate rows; abandoning first prevents
	// that. Default 15s; at most 40s, leaving time for the flush on revocation (bounded by the same grace).
	RebalanceGrace time.Duration `yaml:"rebalance_grace"`
	// FetchMaxBytes bounds one fetch from Kafka (compressed bytes; 1 MiB per partition) and so, with
	// BatchBytes, the pipeline's memory: decompressed, a fetch is this times the compression ratio of the
	// payloads. Default 8 MiB; raising it saves fetch round trips at high rates.
	FetchMaxBytes int32 `yaml:"fetch_max_bytes"`
	// MaxEventBytes bounds one fired event (the webhooks.events record value, attributes included): a
	// request whose event would be larger fails with event_too_large and the batch goes on. Default 1
	// MiB. It must stay below kafka.max_message_bytes by 64 KiB for the record's key and headers
	// (checked): the events producer's batch limit is kafka.max_message_bytes, so every event within
	// this bound is one the topic takes.
	MaxEventBytes int `yaml:"max_event_bytes"`
	// MaxAttributeBytes bounds one attribute's value as written in the event (a string with its JSON
	// escapes, a list): a larger one fails the request with attribute_too_large naming the attribute.
	// Default 64 KiB. Raising it lets one request make larger events and ClickHouse rows.
	MaxAttributeBytes int `yaml:"max_attribute_bytes"`
	// MaxNumberDigits bounds a number mapped to an integer, price or date attribute, counted as written
	// out in full (1e10000 has 10,001 digits, 0.5e-40 has 41): a larger one fails the request with
	// number_out_of_range, before any arithmetic (a 13-byte 1e999999999 would otherwise cost a billion
	// digits). Default 38, the precision of ClickHouse's widest decimal; at most 1000.
	MaxNumberDigits int `yaml:"max_number_digits"`
	// MaxIdentifierBytes bounds the identifier read from the payload (a user id, e-mail, phone or
	// hwid); a longer one fails the request with identifier_invalid. Default 1024.
	MaxIdentifierBytes int `yaml:"max_identifier_bytes"`
	// StallAfter reports a partition as stalled when it has records waiting and none has been written
	// for this long: inlet_pipeline_stalled_partitions, a warning naming the partition, and /readyz
	// answering 503. Default 60s; lower catches a stall sooner but reports a slow ClickHouse outage as
	// one too (which it is).
	StallAfter time.Duration `yaml:"stall_after"`
	// DedupGrace keeps a sender's delivery key this long after its dedup window ends before it is
	// deleted from PostgreSQL. A repeat is told by the originals stored before it, so a request
	// processed later than its original's window end plus this grace (a backlog that long) finds the
	// original gone and fires a second event. Default 1h; raising it covers longer backlogs at the cost of
	// more rows (one per original delivery per window plus grace).
	DedupGrace time.Duration `yaml:"dedup_grace"`
	// DedupCleanupInterval is how often expired delivery keys are deleted (in batches of 1000, for at
	// most half the interval). Default 1m.
	DedupCleanupInterval time.Duration `yaml:"dedup_cleanup_interval"`
	// MemoryLimit is the Go runtime's soft memory limit for the pipeline process (debug.SetMemoryLimit):
	// near it the garbage collector works harder rather than letting the heap grow. Default 1 GiB; 0
	// leaves the runtime's default (or GOMEMLIMIT). It is a target, not a cap: set the container limit
	// above it.
	MemoryLimit int64 `yaml:"memory_limit"`
	// HoldDefault is how long a route whose unknown-user policy is hold keeps a request waiting for its
	// user when the route gives no hold_for. Default 24h. The hold counts from the request's receipt.
	HoldDefault time.Duration `yaml:"hold_default"`
	// HoldMin and HoldMax bound every route's hold time (a route's hold_for outside them is brought
	// within). Defaults 1m and 144h. HoldMax must stay below the Kafka retention of webhooks.requests
	// (7 days by default): a held request is released from its record there, and a record gone is a
	// request that can no longer run (it is marked expired and its entry stays held).
	HoldMin time.Duration `yaml:"hold_min"`
	HoldMax time.Duration `yaml:"hold_max"`
	// HoldMaxPerProject bounds the requests a project holds at once (PostgreSQL rows of about 300
	// bytes each, and work for every pass of the releaser): past it a request that would be held fails
	// with user_not_found, its detail saying the hold is full. Default 100000.
	HoldMaxPerProject int `yaml:"hold_max_per_project"`
	// HoldPollInterval is how often the releaser looks for held requests to release: those of projects
	// whose users or devices changed (PostgreSQL notifications) and those whose hold has run out. A
	// user's change is acted on at once when notifications arrive; the interval bounds the delay when
	// they do not, and the lateness of an expiry. Default 1s.
	HoldPollInterval time.Duration `yaml:"hold_poll_interval"`
	// HoldRescanInterval is how often the releaser asks the directory about every held request, not
	// only those of projects it was told changed (a backstop for lost notifications). Default 1m; each
	// rescan reads every held row.
	HoldRescanInterval time.Duration `yaml:"hold_rescan_interval"`
}

// Defaults returns the settings used when the file says nothing.
func Defaults() Config {
	return Config{
		InternalAddr:   "127.0.0.1:9102",
		Group:          "inlet-pipeline",
		SessionTimeout: 15 * time.Second,
		BatchRows:      10000,
		BatchBytes:     8 << 20,
		FlushInterval:  time.Second,
		FlushLinger:    250 * time.Millisecond,
		RetentionDays:  30,

		RetentionInterval:   time.Hour,
		HighWaterLookback:   192 * time.Hour,
		InsertTimeout:       30 * time.Second,
		RetryMaxBackoff:     10 * time.Second,
		ConfigWait:          2 * time.Second,
		AuthFailureStreak:   5,
		NotificationTimeout: 5 * time.Second,
		ShutdownTimeout:     30 * time.Second,
		RebalanceGrace:      15 * time.Second,
		FetchMaxBytes:       8 << 20,
		MemoryLimit:         1 << 30,
		MaxEventBytes:       1 << 20,
		MaxAttributeBytes:   64 << 10,
		MaxNumberDigits:     38,
		MaxIdentifierBytes:  1024,
		StallAfter:          time.Minute,

		DedupGrace:           time.Hour,
		DedupCleanupInterval: time.Minute,

		HoldDefault:        24 * time.Hour,
		HoldMin:            time.Minute,
		HoldMax:            144 * time.Hour,
		HoldMaxPerProject:  100_000,
		HoldPollInterval:   time.Second,
		HoldRescanInterval: time.Minute,
	}
}

// Limits are the bounds on what one request can make of its event, as the pipeline applies them; a dry run
// (Evaluator) applies the same.
func (c Config) Limits() Limits {
	return Limits{AttributeBytes: c.MaxAttributeBytes, NumberDigits: c.MaxNumberDigits, EventBytes: c.MaxEventBytes,
		IdentifierBytes: c.MaxIdentifierBytes}
}

// Validate reports the first invalid field, named as in the YAML file.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.InternalAddr); err != nil {
		return fmt.Errorf("internal_addr: %q is not host:port", c.InternalAddr)
	}
	switch {
	case c.Group == "":
		return fmt.Errorf("group: must not be empty")
	case len(c.InstanceID) > 249 || strings.ContainsFunc(c.InstanceID, func(r rune) bool { return r <= ' ' || r > '~' }):
		return fmt.Errorf("instance_id: %q must be printable ASCII without spaces, at most 249 bytes", c.InstanceID)
	case c.SessionTimeout < 6*time.Second || c.SessionTimeout > 30*time.Minute:
		return fmt.Errorf("session_timeout: %s is outside 6s..30m (the broker's default bounds)", c.SessionTimeout)
	case c.BatchRows < 1 || c.BatchRows > 1_000_000:
		return fmt.Errorf("batch_rows: %d is outside 1..1000000", c.BatchRows)
	case c.BatchBytes < 1<<20:
		return fmt.Errorf("batch_bytes: %d is below 1 MiB (one request body can be that large)", c.BatchBytes)
	case c.FlushInterval < 10*time.Millisecond || c.FlushInterval > time.Minute:
		return fmt.Errorf("flush_interval: %s is outside 10ms..1m", c.FlushInterval)
	case c.FlushLinger < 10*time.Millisecond:
		return fmt.Errorf("flush_linger: %s is below 10ms", c.FlushLinger)
	case c.RetentionDays < 1:
		return fmt.Errorf("retention_days: %d must be at least 1", c.RetentionDays)
	case c.RetentionInterval < time.Second:
		return fmt.Errorf("retention_interval: %s is shorter than 1s", c.RetentionInterval)
	case c.HighWaterLookback < time.Hour:
		return fmt.Errorf("high_water_lookback: %s is shorter than 1h", c.HighWaterLookback)
	case c.InsertTimeout < time.Second:
		return fmt.Errorf("insert_timeout: %s is shorter than 1s", c.InsertTimeout)
	case c.RetryMaxBackoff < 10*time.Millisecond:
		return fmt.Errorf("retry_max_backoff: %s is shorter than 10ms", c.RetryMaxBackoff)
	case c.ConfigWait < 0 || c.ConfigWait > time.Minute:
		return fmt.Errorf("config_wait: %s is outside 0..1m", c.ConfigWait)
	case c.AuthFailureStreak < 1 || c.AuthFailureStreak > 1000:
		return fmt.Errorf("auth_failure_streak: %d is outside 1..1000", c.AuthFailureStreak)
	case c.NotificationTimeout <= 0:
		return fmt.Errorf("notification_timeout: %s must be positive", c.NotificationTimeout)
	case c.MemoryLimit != 0 && c.MemoryLimit < 64<<20:
		return fmt.Errorf("memory_limit: %d is below 64 MiB (0 disables it)", c.MemoryLimit)
	case c.ShutdownTimeout <= 0:
		return fmt.Errorf("shutdown_timeout: %s must be positive", c.ShutdownTimeout)
	case c.RebalanceGrace < 100*time.Millisecond || c.RebalanceGrace > 40*time.Second:
		return fmt.Errorf("rebalance_grace: %s is outside 100ms..40s (Kafka's rebalance timeout is 60s)", c.RebalanceGrace)
	case c.MaxEventBytes < 64<<10 || c.MaxEventBytes > 64<<20:
		return fmt.Errorf("max_event_bytes: %d is outside 64 KiB..64 MiB", c.MaxEventBytes)
	case c.MaxAttributeBytes < 1<<10 || c.MaxAttributeBytes > c.MaxEventBytes:
		return fmt.Errorf("max_attribute_bytes: %d is outside 1 KiB..max_event_bytes (%d)", c.MaxAttributeBytes, c.MaxEventBytes)
	case c.MaxNumberDigits < 19 || c.MaxNumberDigits > 1000:
		return fmt.Errorf("max_number_digits: %d is outside 19..1000 (19 digits hold every 64-bit integer)", c.MaxNumberDigits)
	case c.MaxIdentifierBytes < 64 || c.MaxIdentifierBytes > 64<<10:
		return fmt.Errorf("max_identifier_bytes: %d is outside 64..65536", c.MaxIdentifierBytes)
	case c.StallAfter < time.Second || c.StallAfter > time.Hour:
		return fmt.Errorf("stall_after: %s is outside 1s..1h", c.StallAfter)
	case c.DedupGrace < 0 || c.DedupGrace > 30*24*time.Hour:
		return fmt.Errorf("dedup_grace: %s is outside 0..720h", c.DedupGrace)
	case c.DedupCleanupInterval < time.Second || c.DedupCleanupInterval > time.Hour:
		return fmt.Errorf("dedup_cleanup_interval: %s is outside 1s..1h", c.DedupCleanupInterval)
	case c.HoldMin < time.Second || c.HoldMax > 30*24*time.Hour || c.HoldMin > c.HoldMax:
		return fmt.Errorf("hold_min, hold_max: %s..%s is not within 1s..720h", c.HoldMin, c.HoldMax)
	case c.HoldDefault < c.HoldMin || c.HoldDefault > c.HoldMax:
		return fmt.Errorf("hold_default: %s is outside hold_min..hold_max (%s..%s)", c.HoldDefault, c.HoldMin, c.HoldMax)
	case c.HoldMaxPerProject < 1 || c.HoldMaxPerProject > 10_000_000:
		return fmt.Errorf("hold_max_per_project: %d is outside 1..10000000", c.HoldMaxPerProject)
	case c.HoldPollInterval < 10*time.Millisecond || c.HoldPollInterval > time.Minute:
		return fmt.Errorf("hold_poll_interval: %s is outside 10ms..1m", c.HoldPollInterval)
	case c.HoldRescanInterval < c.HoldPollInterval || c.HoldRescanInterval > time.Hour:
		return fmt.Errorf("hold_rescan_interval: %s is outside hold_poll_interval..1h", c.HoldRescanInterval)
	case c.FetchMaxBytes < 1<<20:
		return fmt.Errorf("fetch_max_bytes: %d is below 1 MiB (a request body can be that large)", c.FetchMaxBytes)
	}
	return nil
}

// RetentionBounds are the retentions, in days, a project may set within the server's: payloads are
// cleared after 1..retention_days days; activity rows and events are deleted after
// rowsMin..retention_days days, where rowsMin is high_water_lookback in whole days, rounded up. Below
// it a deletion could remove the newest row of a Kafka partition that the exactly-once marks are read
// from, and records still in Kafka would be written again. rowsMin > max means rows cannot be kept
// shorter than the server's retention.
func (c *Config) RetentionBounds() (rowsMin, max int) {
	day := 24 * time.Hour
	return int((c.HighWaterLookback + day - 1) / day), c.RetentionDays
}
