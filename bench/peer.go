package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TelegrafVersion is the peer the suite builds (bench/peer/build-telegraf) and compares with.
const TelegrafVersion = "v1.37.2"

// telegrafConf is the peer's configuration: HTTP in, Kafka out, as close to the ingestor's contract as
// Telegraf goes. The body is kept as one string field (data_format "value"), so any JSON is accepted
// as-is; the output waits for all in-sync replicas (acks=all), idempotent, lz4 like the ingestor.
// Telegraf answers 204 once the body is parsed into its in-memory buffer, before Kafka has it, and
// flushes the buffer every flush_interval.
const telegrafConf = `# Written by the bench suite; see bench/peer.go.
[agent]
  interval = "10s"
  flush_interval = "200ms"
  flush_jitter = "0s"
  metric_batch_size = 1000
  metric_buffer_limit = 1000000
  omit_hostname = true
  quiet = true

[[inputs.http_listener_v2]]
  service_address = "%s"
  paths = ["%s"]
  methods = ["POST"]
  read_timeout = "10s"
  write_timeout = "10s"
  max_body_size = "1MiB"
  data_format = "value"
  data_type = "string"

[[outputs.kafka]]
  brokers = [%s]
  topic = "%s"
  required_acks = -1
  idempotent_writes = true
  compression_codec = 3
  max_retry = 3
  data_format = "influx"
`

// startPeer starts Telegraf on its own topic, or explains why it cannot.
func (s *Suite) startPeer(ctx context.Context) error {
	bin := s.opt.Telegraf
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("telegraf binary %s: %w (build it with bench/peer/build-telegraf, which make bench runs)", bin, err)
	}
	// Its own topic, the bench's layout.
	if _, err := s.adm.CreateTopic(ctx, topicPartitions, 1, map[string]*string{"retention.ms": ptr(strconv.FormatInt(time.Hour.Milliseconds(), 10))}, s.peerTopic()); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("topic %s: %w", s.peerTopic(), err)
	}
	brokers := make([]string, len(s.cfg.Kafka.Brokers))
	for i, b := range s.cfg.Kafka.Brokers {
		brokers[i] = strconv.Quote(b)
	}
	conf := fmt.Sprintf(telegrafConf, s.opt.PeerAddr, peerPath, strings.Join(brokers, ", "), s.peerTopic())
	confPath := filepath.Join(s.dir, "telegraf.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("telegraf config: %w", err)
	}
	p, err := startProc("peer", []string{bin, "--config", confPath}, nil, filepath.Join(s.dir, "telegraf.log"), s.opt.SUTCPUs)
	if err != nil {
		return err
	}
	if err := p.waitReady(ctx, postAnswers("http://"+s.opt.PeerAddr+peerPath, "", 204)); err != nil {
		_ = p.stop()
		return err
	}
	s.peer = p
	// The readiness POST is flushed to the topic within flush_interval: let it land before any
	// scenario takes its starting offsets.
	time.Sleep(peerFlushWait)
	return nil
}

// peerFlushWait exceeds the flush_interval of telegrafConf.
const peerFlushWait = time.Second

func ptr[T any](v T) *T { return &v }
