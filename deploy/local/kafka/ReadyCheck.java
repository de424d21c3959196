// Readiness probe for the local Kafka broker, used by deploy/local/up.
//
//   java -cp "$STATE/kafka/classes:$STATE/kafka/lib/*" ReadyCheck <bootstrap> <topic> <timeout-seconds> [<broker-pid>]
//
// Succeeds (exit 0, silent) once, within the timeout, one attempt manages all of:
//   1. create <topic> (1 partition, RF 1) unless it exists,
//   2. produce a unique record with acks=all,
//   3. read that record back from its offset,
//   4. commit an offset for consumer group <topic> (this creates __consumer_offsets, so
//      the group coordinator is ready before the first test needs it).
// Exit 1 on timeout, 2 if the broker process (pid) exits while waiting. Attempts are
// retried every 500 ms; the last error is printed on failure. One JVM does the whole probe
// because JVM start-up is the slow part on small machines.

import java.time.Duration;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class ReadyCheck {
    private static final int ATTEMPT_TIMEOUT_MS = 15_000;

    public static void main(String[] args) throws InterruptedException {
        if (args.length < 3) {
            System.err.println("usage: ReadyCheck <bootstrap> <topic> <timeout-seconds> [<broker-pid>]");
            System.exit(64);
        }
        String bootstrap = args[0];
        String topic = args[1];
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[2]));
        long pid = args.length > 3 ? Long.parseLong(args[3]) : -1;

        Exception last = null;
        while (System.nanoTime() < deadline) {
            if (pid > 0 && !ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
                System.err.println("kafka process " + pid + " exited while waiting for it to become ready");
                System.exit(2);
            }
            long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            try {
                roundTrip(bootstrap, topic, (int) Math.max(1_000, Math.min(ATTEMPT_TIMEOUT_MS, left)));
                System.exit(0);
            } catch (Exception e) {
                last = e;
                Thread.sleep(500);
            }
        }
        System.err.println("kafka at " + bootstrap + " not ready after " + args[2] + " s: " + describe(last));
        System.exit(1);
    }

    private static void roundTrip(String bootstrap, String topic, int timeoutMs) throws Exception {
        Properties common = new Properties();
        common.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        common.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, String.valueOf(Math.min(5_000, timeoutMs)));
        common.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, String.valueOf(timeoutMs));
        common.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, "100");
        common.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
        common.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, "100");
        common.put(AdminClientConfig.RETRY_BACKOFF_MAX_MS_CONFIG, "500");

        try (Admin admin = Admin.create(common)) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1)))
                    .all().get(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof TopicExistsException)) {
                throw e;
            }
        }

        String token = UUID.randomUUID().toString();
        TopicPartition tp = new TopicPartition(topic, 0);
        long offset;
        Properties pp = new Properties();
        pp.putAll(common);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, String.valueOf(timeoutMs));
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, String.valueOf(timeoutMs));
        pp.put(ProducerConfig.LINGER_MS_CONFIG, "0");
        try (KafkaProducer<String, String> producer =
                new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
            RecordMetadata md = producer.send(new ProducerRecord<>(topic, 0, null, token))
                    .get(timeoutMs, TimeUnit.MILLISECONDS);
            offset = md.offset();
        }

        Properties cp = new Properties();
        cp.putAll(common);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, topic);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
        try (KafkaConsumer<String, String> consumer =
                new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
            consumer.assign(List.of(tp));
            consumer.seek(tp, offset);
            long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
            boolean seen = false;
            while (!seen && System.nanoTime() < until) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    if (token.equals(r.value())) {
                        seen = true;
                    }
                }
            }
            if (!seen) {
                throw new IllegalStateException("produced record at offset " + offset + " was not consumed back");
            }
            Map<TopicPartition, OffsetAndMetadata> commit =
                    Collections.singletonMap(tp, new OffsetAndMetadata(offset + 1));
            consumer.commitSync(commit, Duration.ofMillis(timeoutMs));
        }
    }

    private static String describe(Exception e) {
        if (e == null) {
            return "no attempt completed";
        }
        Throwable t = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
        return t.getClass().getName() + ": " + t.getMessage();
    }
}
