// KafkaTool.java - the tests' independent Kafka client (the Java one, not librdkafka), used
// by tests/integration/kafka_fixture.py for what kcat cannot do:
//   create BOOTSTRAP TOPIC PARTITIONS        create a topic (replication factor 1)
//   offsets BOOTSTRAP GROUP TOPIC            {"committed": {p: off}, "end": {p: off}} as JSON
//   hostile BOOTSTRAP TOPIC                  produce the hostile records of test_kafka_hostile
// Compiled once by the fixture into the Kafka jar cache; exits 0, or 1 with the error.
import java.nio.charset.StandardCharsets;
import java.util.*;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class KafkaTool {
    static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        return Admin.create(p);
    }

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "create": {
                try (Admin a = admin(args[1])) {
                    NewTopic t = new NewTopic(args[2], Integer.parseInt(args[3]), (short) 1);
                    a.createTopics(List.of(t)).all().get(30, TimeUnit.SECONDS);
                }
                break;
            }
            case "offsets": {
                try (Admin a = admin(args[1])) {
                    Map<TopicPartition, OffsetAndMetadata> c = a.listConsumerGroupOffsets(args[2])
                            .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
                    int n = a.describeTopics(List.of(args[3])).allTopicNames().get(30, TimeUnit.SECONDS)
                            .get(args[3]).partitions().size();
                    Map<TopicPartition, OffsetSpec> want = new HashMap<>();
                    for (int i = 0; i < n; i++) {
                        want.put(new TopicPartition(args[3], i), OffsetSpec.latest());
                    }
                    var ends = a.listOffsets(want).all().get(30, TimeUnit.SECONDS);
                    StringBuilder sb = new StringBuilder("{\"committed\": {");
                    String sep = "";
                    for (var e : c.entrySet()) {
                        if (!e.getKey().topic().equals(args[3]) || e.getValue() == null) {
                            continue;
                        }
                        sb.append(sep).append('"').append(e.getKey().partition()).append("\": ")
                                .append(e.getValue().offset());
                        sep = ", ";
                    }
                    sb.append("}, \"end\": {");
                    sep = "";
                    for (var e : ends.entrySet()) {
                        sb.append(sep).append('"').append(e.getKey().partition()).append("\": ")
                                .append(e.getValue().offset());
                        sep = ", ";
                    }
                    System.out.println(sb.append("}}"));
                }
                break;
            }
            case "hostile": {
                Properties p = new Properties();
                p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[1]);
                p.put(ProducerConfig.ACKS_CONFIG, "all");
                p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, "4194304");
                p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
                p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
                try (Producer<byte[], byte[]> pr = new KafkaProducer<>(p)) {
                    String t = args[2];
                    byte[] bad = {(byte) 0xff, (byte) 0xfe, 'x', (byte) 0xc3, 0, 'y'};
                    // 1: a header value that is not UTF-8 (and holds a NUL), a binary key
                    var r1 = new ProducerRecord<byte[], byte[]>(t, 0, bad, "one".getBytes());
                    r1.headers().add("X-Bad-Bytes", bad);
                    r1.headers().add("ünïcödé name!", "ok".getBytes(StandardCharsets.UTF_8));
                    r1.headers().add("---", "nothing valid in the name".getBytes());
                    r1.headers().add("nullvalue", null);
                    pr.send(r1).get();
                    // 2: 10 000 headers
                    var r2 = new ProducerRecord<byte[], byte[]>(t, 0, "k2".getBytes(), "two".getBytes());
                    for (int i = 0; i < 10000; i++) {
                        r2.headers().add("h" + i, ("v" + i).getBytes());
                    }
                    pr.send(r2).get();
                    // 3: a 1 MiB header value
                    var r3 = new ProducerRecord<byte[], byte[]>(t, 0, "k3".getBytes(), "three".getBytes());
                    byte[] big = new byte[1 << 20];
                    Arrays.fill(big, (byte) 'a');
                    r3.headers().add("big", big);
                    pr.send(r3).get();
                    // 4: a binary-mode CloudEvent whose ce_type is not UTF-8
                    var r4 = new ProducerRecord<byte[], byte[]>(t, 0, "k4".getBytes(), "four".getBytes());
                    r4.headers().add("ce_specversion", "1.0".getBytes());
                    r4.headers().add("ce_id", "hostile-4".getBytes());
                    r4.headers().add("ce_source", "/hostile".getBytes());
                    r4.headers().add("ce_type", bad);
                    pr.send(r4).get();
                    // 5: a well-formed record after them
                    pr.send(new ProducerRecord<>(t, 0, "k5".getBytes(), "five".getBytes())).get();
                }
                break;
            }
            default:
                System.err.println("unknown command " + args[0]);
                System.exit(2);
        }
    }
}
