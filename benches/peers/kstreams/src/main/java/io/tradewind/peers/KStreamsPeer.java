package io.tradewind.peers;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import com.google.protobuf.InvalidProtocolBufferException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.state.WindowStore;

import tradewind.v1.Events.Payment;
import tradewind.v1.Events.PaymentStatus;

/**
 * Tradewind's per-minute payments aggregation as a Kafka Streams
 * application: protobuf payments in, one record per (window, key) update
 * out, exactly-once v2.
 *
 * <p>Per one-minute tumbling event-time window and key (payer, payee,
 * method, channel, currency): count, captured, failed, refunded, sum, min
 * and max of the amount. Output records, read_committed, last one wins:
 * <ul>
 *   <li>key, 13 bytes: window start (unix ms, int64 big-endian), then payer,
 *       payee, method, channel and currency as one byte each (enum numbers);
 *   <li>value, 56 bytes: count, captured, failed, refunded, sum, min, max as
 *       int64 big-endian.
 * </ul>
 *
 * <pre>
 * java -jar target/tradewind-kstreams-peer.jar --brokers 127.0.0.1:9092 \
 *   --input tradewind.payments --output tradewind.kstreams_out \
 *   --application-id tradewind-kstreams [--threads 1] [--grace-ms 2592000000] \
 *   [--state-dir /tmp/kstreams]
 * </pre>
 */
public final class KStreamsPeer {
    private KStreamsPeer() {}

    /** Event time from the payment itself, not the Kafka record time. */
    static final class EventTime implements TimestampExtractor {
        @Override
        public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
            return ((Payment) record.value()).getEventTime();
        }
    }

    static Payment payment(byte[] data) {
        try {
            return Payment.parseFrom(data);
        } catch (InvalidProtocolBufferException e) {
            throw new SerializationException("not a payment", e);
        }
    }

    /** The running aggregate of one (window, key). */
    static final class Agg {
        long count;
        long captured;
        long failed;
        long refunded;
        long sum;
        long min = Long.MAX_VALUE;
        long max = Long.MIN_VALUE;

        Agg add(Payment p) {
            long amount = p.getAmountMinor();
            count++;
            switch (p.getStatusValue()) {
                case PaymentStatus.PAYMENT_STATUS_CAPTURED_VALUE -> captured++;
                case PaymentStatus.PAYMENT_STATUS_FAILED_VALUE -> failed++;
                case PaymentStatus.PAYMENT_STATUS_REFUNDED_VALUE -> refunded++;
                default -> { }
            }
            sum += amount;
            min = Math.min(min, amount);
            max = Math.max(max, amount);
            return this;
        }

        byte[] bytes() {
            return ByteBuffer.allocate(56)
                .putLong(count).putLong(captured).putLong(failed).putLong(refunded)
                .putLong(sum).putLong(min).putLong(max).array();
        }

        static Agg of(byte[] b) {
            ByteBuffer buf = ByteBuffer.wrap(b);
            Agg a = new Agg();
            a.count = buf.getLong();
            a.captured = buf.getLong();
            a.failed = buf.getLong();
            a.refunded = buf.getLong();
            a.sum = buf.getLong();
            a.min = buf.getLong();
            a.max = buf.getLong();
            return a;
        }
    }

    /** The five key fields packed into one long, a byte each. */
    static long cell(Payment p) {
        return ((long) p.getPayerCountryValue() & 0xff) << 32
            | ((long) p.getPayeeCountryValue() & 0xff) << 24
            | ((long) p.getMethodValue() & 0xff) << 16
            | ((long) p.getChannelValue() & 0xff) << 8
            | ((long) p.getCurrencyValue() & 0xff);
    }

    static byte[] outKey(Windowed<Long> k) {
        long c = k.key();
        return ByteBuffer.allocate(13).putLong(k.window().start())
            .put((byte) (c >>> 32)).put((byte) (c >>> 24)).put((byte) (c >>> 16))
            .put((byte) (c >>> 8)).put((byte) c).array();
    }

    static Topology topology(String input, String output, Duration grace) {
        Serde<Payment> payments = Serdes.serdeFrom((t, p) -> p.toByteArray(), (t, b) -> payment(b));
        Serde<Agg> aggs = Serdes.serdeFrom((t, a) -> a.bytes(), (t, b) -> Agg.of(b));
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.ByteArray(), payments).withTimestampExtractor(new EventTime()))
            .groupBy((k, p) -> cell(p), Grouped.with("cells", Serdes.Long(), payments))
            .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMinutes(1), grace))
            .aggregate(Agg::new, (k, p, a) -> a.add(p),
                Materialized.<Long, Agg, WindowStore<Bytes, byte[]>>as("minutes")
                    .withKeySerde(Serdes.Long()).withValueSerde(aggs))
            .toStream()
            .map((k, a) -> KeyValue.pair(outKey(k), a.bytes()))
            .to(output, Produced.with(Serdes.ByteArray(), Serdes.ByteArray()));
        return builder.build();
    }

    public static void main(String[] args) throws InterruptedException {
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        }
        Map<String, String> opt = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            opt.put(args[i].replaceFirst("^--", ""), args[i + 1]);
        }
        for (String need : new String[] {"brokers", "input", "output", "application-id"}) {
            if (!opt.containsKey(need)) {
                System.err.println("missing --" + need);
                System.exit(2);
            }
        }
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, opt.get("application-id"));
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, opt.get("brokers"));
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, opt.getOrDefault("threads", "1"));
        p.put(StreamsConfig.STATE_DIR_CONFIG,
            opt.getOrDefault("state-dir", System.getProperty("java.io.tmpdir") + "/kafka-streams"));
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        // Grace covers the whole input: the repartition topic interleaves
        // source partitions read at different speeds, so stream time can run
        // far ahead of a slow partition's event time.
        Duration grace = Duration.ofMillis(Long.parseLong(opt.getOrDefault("grace-ms", "2592000000")));

        KafkaStreams streams = new KafkaStreams(topology(opt.get("input"), opt.get("output"), grace), p);
        CountDownLatch done = new CountDownLatch(1);
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            done.countDown();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.setStateListener((now, before) -> {
            System.err.println("kstreams peer: " + before + " -> " + now);
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                done.countDown();
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(30));
            done.countDown();
        }));
        streams.start();
        done.await();
        streams.close(Duration.ofSeconds(30));
    }
}
