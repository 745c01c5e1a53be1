package io.vmm4j.cli.vm;

import io.vmm4j.virtio.driver.VirtioNetDriver;
import io.vmm4j.virtio.driver.net.GuestNetStack;
import io.vmm4j.virtio.driver.net.Ipv4Address;
import io.vmm4j.virtio.driver.net.PingReply;

import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.IntConsumer;

/**
 * The measurement workloads the Java guest runs towards the host on its NIC (for {@code ./vmm
 * compare} and the data-path tests): a numbered UDP stream with echoes, a transmit flood, a
 * receive count and back-to-back pings. Each runs on the vCPU thread until done or the guest is
 * asked to stop; the UDP listener is the NIC's plain count again afterwards.
 */
final class GuestTraffic {
    /** Port the comparison workloads use on both sides. */
    static final int BENCH_PORT = 9;
    /** The guest's port of a numbered UDP stream. */
    static final int UDP_STREAM_PORT = 39999;

    private final GuestNic nic;
    private final int host;
    private final BooleanSupplier stopped;
    private volatile long benchReceived;

    GuestTraffic(GuestNic nic, String hostAddress, BooleanSupplier stopped) {
        this.nic = nic;
        this.host = Ipv4Address.parseValue(hostAddress);
        this.stopped = stopped;
    }

    /** What a numbered UDP stream saw: how many echoes came back once, how many more than once, and each number's echo count. */
    record StreamResult(int sent, int echoedOnce, int duplicates, int missing, int[] echoes) {
    }

    /**
     * Sends datagrams numbered 0..count-1 to the host's {@code port}, one every {@code intervalMicros},
     * and counts the echoes: each number must come back exactly once. {@code onSent} sees each
     * number after it left (tests switch data planes mid-stream from it).
     */
    StreamResult udpStream(int count, int port, long intervalMicros, IntConsumer onSent) throws InterruptedException {
        VirtioNetDriver driver = nic.driver();
        GuestNetStack stack = nic.stack();
        int[] seen = new int[count];
        stack.setUdpListener((srcIp, srcPort, dstPort, payload) -> {
            if (dstPort == UDP_STREAM_PORT && payload.length >= 4) {
                int seq = ((payload[0] & 0xFF) << 24) | ((payload[1] & 0xFF) << 16) | ((payload[2] & 0xFF) << 8) | (payload[3] & 0xFF);
                if (seq >= 0 && seq < count) {
                    seen[seq]++;
                }
            }
        });
        byte[] payload = new byte[64];
        long interval = TimeUnit.MICROSECONDS.toNanos(intervalMicros);
        long next = System.nanoTime();
        int sent = 0;
        long deadline = Long.MAX_VALUE;
        while (!stopped.getAsBoolean() && System.nanoTime() < deadline) {
            long seenInterrupts = driver.interruptsSeen();
            nic.poll();
            nic.watchLink(); // a configuration interrupt (the link went down or up) is read whatever the guest is doing
            long now = System.nanoTime();
            if (sent < count && now >= next && !driver.canTransmit(0)) {
                // the transmit ring is full: a driver stops its queue and waits for completions instead of dropping
                driver.awaitInterrupt(seenInterrupts, TimeUnit.MILLISECONDS.toNanos(1));
                continue;
            }
            if (sent < count && now >= next) {
                payload[0] = (byte) (sent >>> 24);
                payload[1] = (byte) (sent >>> 16);
                payload[2] = (byte) (sent >>> 8);
                payload[3] = (byte) sent;
                stack.sendUdp(host, UDP_STREAM_PORT, port, payload);
                onSent.accept(sent);
                sent++;
                next = now + interval;
                if (sent == count) {
                    deadline = now + TimeUnit.SECONDS.toNanos(10);
                }
            }
            if (sent == count && Arrays.stream(seen).allMatch(n -> n > 0)) {
                break;
            }
            long wait = sent < count ? Math.max(0, next - System.nanoTime()) : TimeUnit.MILLISECONDS.toNanos(5);
            driver.awaitInterrupt(seenInterrupts, Math.min(wait, TimeUnit.MILLISECONDS.toNanos(5)));
        }
        nic.poll();
        nic.countUdpReceived();
        int once = 0;
        int dups = 0;
        int missing = 0;
        for (int n : seen) {
            once += n >= 1 ? 1 : 0;
            dups += Math.max(0, n - 1);
            missing += n == 0 ? 1 : 0;
        }
        return new StreamResult(sent, once, dups, missing, seen);
    }

    /**
     * Transmit workload: sends UDP datagrams of {@code payload} bytes to the host's discard port as
     * fast as the transmit ring allows, for {@code nanos}; returns how many left the guest.
     */
    long floodUdp(long nanos, int payload) throws InterruptedException {
        VirtioNetDriver driver = nic.driver();
        GuestNetStack stack = nic.stack();
        byte[] data = new byte[payload];
        long before = driver.framesOut();
        // the first datagram resolves the host's MAC; everything the guest sends is counted, ARP included
        stack.sendUdp(host, BENCH_PORT, BENCH_PORT, data);
        long deadline = System.nanoTime() + nanos;
        while (!stopped.getAsBoolean() && System.nanoTime() < deadline) {
            long seen = driver.interruptsSeen();
            long out = driver.framesOut();
            stack.sendUdp(host, BENCH_PORT, BENCH_PORT, data);
            if (driver.framesOut() == out) {
                // the transmit ring is full: reap and wait for the device to use some
                nic.poll();
                driver.awaitInterrupt(seen, TimeUnit.MILLISECONDS.toNanos(1));
            }
        }
        return driver.framesOut() - before;
    }

    /**
     * Receive workload: counts UDP datagrams to the bench port until {@code done}; returns the count.
     * {@code counting} runs once the count is zero and the listener is in place.
     */
    long countUdp(BooleanSupplier done, Runnable counting) throws InterruptedException {
        VirtioNetDriver driver = nic.driver();
        benchReceived = 0;
        nic.stack().setUdpListener((srcIp, srcPort, dstPort, payload) -> {
            if (dstPort == BENCH_PORT) {
                benchReceived++;
            }
        });
        counting.run();
        while (!stopped.getAsBoolean() && !done.getAsBoolean()) {
            long seen = driver.interruptsSeen();
            if (nic.poll() == 0) {
                driver.awaitInterrupt(seen, TimeUnit.MILLISECONDS.toNanos(1));
            }
        }
        nic.poll();
        nic.countUdpReceived();
        return benchReceived;
    }

    /** Datagrams counted so far by a running {@link #countUdp} (read from another thread for pacing). */
    long benchReceivedSoFar() {
        return benchReceived;
    }

    /** Latency workload: {@code count} pings one after another; returns each round trip in nanoseconds (lost ones omitted). */
    long[] pingRoundTrips(int count, int payload) throws InterruptedException {
        VirtioNetDriver driver = nic.driver();
        GuestNetStack stack = nic.stack();
        long[] rtts = new long[count];
        int got = 0;
        for (int seq = 1; seq <= count && !stopped.getAsBoolean(); seq++) {
            stack.sendPing(host, 0x4C41, seq, payload);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
            PingReply reply = null;
            while (reply == null && System.nanoTime() < deadline) {
                long seen = driver.interruptsSeen();
                nic.poll();
                reply = stack.pollPingReply();
                if (reply == null) {
                    driver.awaitInterrupt(seen, TimeUnit.MILLISECONDS.toNanos(1));
                }
            }
            if (reply != null) {
                rtts[got++] = reply.rttNanos();
            }
        }
        return Arrays.copyOf(rtts, got);
    }
}
