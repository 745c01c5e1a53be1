package io.vmm4j.vhost;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.tap.LinuxBridge;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.tap.NetNamespace;
import io.vmm4j.tap.PacketPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.emulated.EmulatedNetBackend;
import io.vmm4j.vhost.kernel.VhostKernel;
import io.vmm4j.vhost.kernel.VhostNetBackend;
import io.vmm4j.vhost.user.DaemonOnThread;
import io.vmm4j.vhost.user.VhostUserNetBackend;
import io.vmm4j.vhost.user.VhostUserNetDaemon;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetBackend;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.QueuePositions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.LongSupplier;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static io.vmm4j.vhost.NumberedFrames.range;
import static io.vmm4j.virtio.VirtioFeatures.bit;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The {@link NetBackend} contract (its javadoc; docs/design.md "Seams"), one suite run against every
 * data plane this host has, as Netty runs one suite against every transport: the in-process
 * emulated plane over an in-memory port, vhost-user (our back-end daemon on a thread, over an
 * in-memory port), and kernel vhost-net over a tap on a bridge where /dev/vhost-net exists.
 *
 * <p>The guest side is {@link DriverQueuePairs}; the host side is a {@link PacketPort} ("the wire")
 * that the test reads and writes. Frames are numbered, so "loses nothing and repeats nothing" is
 * checked frame by frame.
 */
class NetBackendContractTest {
    /** Long enough for a frame to cross on a loaded 2-core machine. */
    private static final long MOVE_MILLIS = 3_000;
    /** How long nothing must move for "nothing moves". */
    private static final long QUIET_MILLIS = 300;
    private static final long WANTED = bit(VirtioFeatures.VERSION_1) | bit(NetFeatures.MRG_RXBUF) | bit(VirtioFeatures.EVENT_IDX);

    /** A data plane this host has, and the host network behind it. */
    interface DataPlane extends AutoCloseable {
        /** A new backend of this kind on the same host network (a second one is what a backend switch starts). */
        NetBackend open();

        /** The host network: what the guest transmits arrives here, what is written here the guest receives. */
        PacketPort wire();

        /** The queue of {@link #wire()} where pair {@code pair}'s frames arrive and from which they are sent to it. */
        default int wireQueue(int pair) {
            return pair;
        }

        /**
         * Whether a frame the host sends while the link is down reaches the VMM and is dropped there
         * (counted in dropsLinkDown). A back-end in another process keeps what arrives for a stopped
         * ring: NetBackend lets a data plane outside the VMM ignore the link state.
         */
        default boolean dropsHostFramesWhileLinkDown() {
            return true;
        }

        /** Whether a frame written to wire queue p arrives on pair p (a tap steers by flow hash instead). */
        default boolean steersHostFramesByQueue() {
            return true;
        }

        /** Whether only the test's frames arrive from the host (a tap also delivers the kernel's own: IPv6 ND, MLD). */
        default boolean quietHost() {
            return true;
        }

        @Override
        void close();
    }

    /** The kinds of data plane; each makes its plane, or skips where this host has none. */
    enum Kind {
        EMULATED {
            @Override
            DataPlane create(int pairs) {
                MemoryPort[] ports = MemoryPort.pair(pairs, TapDevice.VNET_HEADER_V1_SIZE);
                return new DataPlane() {
                    @Override
                    public NetBackend open() {
                        return new EmulatedNetBackend(ports[0]);
                    }

                    @Override
                    public PacketPort wire() {
                        return ports[1];
                    }

                    @Override
                    public void close() {
                        ports[0].close();
                        ports[1].close();
                    }
                };
            }
        },
        VHOST_USER {
            @Override
            DataPlane create(int pairs) throws IOException {
                DaemonOnThread daemon = new DaemonOnThread(new VhostUserNetDaemon.Options(pairs, false, 2_000));
                EventLoop watch = new EventLoop("vu-watch");
                return new DataPlane() {
                    @Override
                    public NetBackend open() {
                        return new VhostUserNetBackend(daemon.socket(), watch);
                    }

                    @Override
                    public PacketPort wire() {
                        return daemon.wire();
                    }

                    @Override
                    public boolean dropsHostFramesWhileLinkDown() {
                        return false; // the daemon's port keeps them until its rings run again
                    }

                    @Override
                    public void close() {
                        daemon.close();
                        watch.close();
                    }
                };
            }
        },
        VHOST_NET {
            @Override
            DataPlane create(int pairs) {
                // not a failure under CI=true either: CI hosts have no /dev/vhost-net; the lab VM proves vhost-net (VhostNetLabTest)
                Assumptions.assumeTrue(VhostKernel.available(), VhostKernel.DEVICE + " does not exist: vhost-net is not a data plane"
                        + " this host has (its kernel lacks VHOST_NET); VhostNetLabTest runs vhost-net in the lab VM");
                HostRequirements.requireTapsAndNamespaces("taps on a bridge behind the vhost-net data plane");
                return new BridgedTaps(pairs);
            }
        };

        abstract DataPlane create(int pairs) throws Exception;
    }

    /**
     * vhost-net's host network: the guest's tap and a second tap on one bridge in a private
     * namespace; the test reads and writes the second tap, so frames cross the kernel's tap and
     * bridge code both ways. Frames to the guest reach whichever queue tun's flow hash picks.
     */
    private static final class BridgedTaps implements DataPlane {
        private final NetNamespace namespace = NetNamespace.create(scratchName('n'));
        private final TapDevice guestTap;
        private final TapDevice hostTap;
        private final LinuxBridge bridge;

        BridgedTaps(int pairs) {
            guestTap = TapDevice.open(scratchName('t'), pairs, TapDevice.VNET_HEADER_V1_SIZE);
            hostTap = TapDevice.open(scratchName('t'), 1, TapDevice.VNET_HEADER_V1_SIZE);
            bridge = LinuxBridge.create(scratchName('b'), namespace);
            for (TapDevice tap : List.of(guestTap, hostTap)) {
                tap.moveToNamespace(namespace);
                bridge.addInterface(tap.name());
                tap.setUp();
            }
            bridge.up();
        }

        private static String scratchName(char role) {
            byte[] suffix = new byte[3];
            ThreadLocalRandom.current().nextBytes(suffix);
            return "vt" + role + HexFormat.of().formatHex(suffix);
        }

        @Override
        public NetBackend open() {
            return new VhostNetBackend(guestTap);
        }

        @Override
        public PacketPort wire() {
            return hostTap;
        }

        @Override
        public int wireQueue(int pair) {
            return 0;
        }

        @Override
        public boolean steersHostFramesByQueue() {
            return false;
        }

        @Override
        public boolean quietHost() {
            return false;
        }

        @Override
        public void close() {
            bridge.close();
            guestTap.close();
            hostTap.close();
            namespace.close();
        }
    }

    private DataPlane plane;
    private DriverQueuePairs guest;
    private final List<NetBackend> backends = new ArrayList<>();
    /** Where the last {@link #lifecycle()} left the rings, for the next one to resume. */
    private QueuePositions lastPositions;

    /** The plane of {@code kind} and a guest with {@code pairs} queue pairs (EVENT_IDX on), each with 16 receive buffers posted. */
    private void prepare(Kind kind, int pairs) throws Exception {
        plane = kind.create(pairs);
        guest = new DriverQueuePairs(pairs, true);
        for (int p = 0; p < pairs; p++) {
            guest.postReceiveBuffers(p, 16);
        }
    }

    /** {@link #prepare} and a backend started on the guest's queues from index 0, with {@code activePairs} active. */
    private NetBackend started(Kind kind, int pairs, int activePairs) throws Exception {
        prepare(kind, pairs);
        NetBackend backend = open();
        backend.start(guest.activation(acked(backend), activePairs));
        return backend;
    }

    private NetBackend open() {
        NetBackend b = plane.open();
        backends.add(b);
        return b;
    }

    @AfterEach
    void tearDown() throws Exception {
        for (NetBackend b : backends) {
            b.close();
        }
        if (plane != null) {
            plane.close();
        }
        if (guest != null) {
            guest.close();
        }
    }

    /** The ring features every plane honours, and MQ with the control queue for several pairs. */
    private long acked(NetBackend backend) {
        long wanted = WANTED | (guest.pairs() > 1 ? bit(NetFeatures.MQ) | bit(NetFeatures.CTRL_VQ) : 0);
        assertEquals(wanted, backend.supportedFeatures() & wanted, backend.name() + " honours " + NetFeatures.names(wanted));
        return wanted;
    }

    private List<Integer> onWire(int pair, int count) {
        return NumberedFrames.receive(plane.wire(), plane.wireQueue(pair), count, MOVE_MILLIS);
    }

    private List<Integer> onWireWhileQuiet(int pair) {
        return NumberedFrames.receive(plane.wire(), plane.wireQueue(pair), 1, QUIET_MILLIS);
    }

    private void hostSends(int pair, int from, int to) {
        NumberedFrames.send(plane.wire(), plane.wireQueue(pair), from, to);
    }

    private List<Integer> guestReceives(int pair, int count, long millis) {
        return NumberedFrames.receive(guest, pair, count, millis);
    }

    /** Frames {@code from..to-1} cross pair 0 both ways: to the host in order with every chain returned, then to the guest in order. */
    private void assertMovesBothWays(int from, int to) {
        NumberedFrames.transmit(guest, 0, from, to);
        assertEquals(range(from, to), onWire(0, to - from), "guest -> host, each frame once, in order");
        assertEquals(to - from, guest.awaitTransmitted(0, to - from, MOVE_MILLIS), "every transmit chain comes back");
        hostSends(0, from, to);
        assertEquals(range(from, to), guestReceives(0, to - from, MOVE_MILLIS), "host -> guest, each frame once, in order");
    }

    /** Receive positions agree with the used idx in the ring, and equal {@code frames} where only the test's frames arrive. */
    private void assertReceivePosition(QueuePositions at, int frames) {
        assertEquals(guest.usedIdx(0), at.nextUsed(0), "receive: the position is the used idx in the ring: " + at);
        assertEquals(at.nextUsed(0), at.nextAvail(0), "receive: every buffer consumed was returned: " + at);
        if (plane.quietHost()) {
            assertEquals(frames, at.nextUsed(0), "receive: one buffer per frame: " + at);
        }
    }

    private void assertNoDeviceErrors() {
        assertTrue(guest.deviceErrors().isEmpty(), guest.deviceErrors().toString());
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Kind.class)
    void startMovesFramesBothWays(Kind kind) throws Exception {
        started(kind, 1, 1);
        assertMovesBothWays(0, 3);
        assertNoDeviceErrors();
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Kind.class)
    void stopReturnsWhereEachRingStoodAndThenLeavesTheRingsAlone(Kind kind) throws Exception {
        NetBackend backend = started(kind, 1, 1);
        assertMovesBothWays(0, 2);

        QueuePositions at = backend.stop();
        assertNotNull(at, "a started backend says where it stopped");
        assertReceivePosition(at, 2);
        assertEquals(2, at.nextAvail(1), "transmit: two chains consumed, no more: " + at);
        assertEquals(2, at.nextUsed(1), "transmit: two chains returned: " + at);

        int rxUsed = guest.usedIdx(0);
        NumberedFrames.transmit(guest, 0, 2, 3);
        guest.txKick(0).signal(); // a kick the stopped plane must not answer
        guest.postReceiveBuffers(0, 4);
        hostSends(0, 2, 3);
        assertEquals(List.of(), onWireWhileQuiet(0), "a stopped plane transmits nothing");
        assertEquals(List.of(), guestReceives(0, 1, QUIET_MILLIS), "a stopped plane fills no receive buffer");
        assertEquals(rxUsed, guest.usedIdx(0), "receive used idx unchanged after stop");
        assertEquals(2, guest.usedIdx(1), "transmit used idx unchanged after stop");
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Kind.class)
    void aBackendSwitchMidStreamLosesNothingAndRepeatsNothing(Kind kind) throws Exception {
        NetBackend first = started(kind, 1, 1);
        guest.postReceiveBuffers(0, 48);
        // traffic both ways, and the switch right behind it: some frames have moved, some not yet
        NumberedFrames.transmit(guest, 0, 0, 10);
        hostSends(0, 0, 10);
        QueuePositions at = first.stop();
        first.close();
        // while no plane serves the rings, the guest goes on transmitting and the host on sending
        NumberedFrames.transmit(guest, 0, 10, 20);
        hostSends(0, 10, 20);

        NetBackend second = open();
        second.start(guest.activation(acked(second), 1, at)); // no guest reset: the device hands over the positions
        NumberedFrames.transmit(guest, 0, 20, 30);
        hostSends(0, 20, 30);
        assertEquals(range(0, 30), onWire(0, 30), "every transmitted frame once, in order, across the switch");
        assertEquals(range(0, 30), guestReceives(0, 30, MOVE_MILLIS), "every frame from the host once, in order, across the switch");
        assertEquals(30, guest.awaitTransmitted(0, 30, MOVE_MILLIS), "every transmit chain returned");
        assertEquals(List.of(), onWireWhileQuiet(0), "and none a second time");
        assertEquals(List.of(), guestReceives(0, 1, QUIET_MILLIS), "and none a second time");

        QueuePositions end = second.stop();
        assertEquals(30, end.nextAvail(1), end.toString());
        assertEquals(30, end.nextUsed(1), end.toString());
        assertReceivePosition(end, 30);
        assertNoDeviceErrors();
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Kind.class)
    void aResetDiscardsTheQueuesAndTheNextStartBeginsAtZero(Kind kind) throws Exception {
        NetBackend backend = started(kind, 1, 1);
        assertMovesBothWays(0, 3);
        backend.stop();
        NumberedFrames.transmit(guest, 0, 100, 101); // left in the ring when the device resets: it must never go out

        guest.reset(); // the device reset: positions discarded, the driver sets the queues up again
        guest.postReceiveBuffers(0, 16);
        backend.start(guest.activation(acked(backend), 1));
        assertMovesBothWays(3, 5);
        assertEquals(List.of(), onWireWhileQuiet(0), "after the reset only what the driver queued since goes out");

        QueuePositions at = backend.stop();
        assertEquals(2, at.nextAvail(1), "transmit counts from 0 again: " + at);
        assertEquals(2, at.nextUsed(1), "transmit counts from 0 again: " + at);
        assertReceivePosition(at, 2);
        assertNoDeviceErrors();
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Kind.class)
    void onlyTheActivePairsAreServed(Kind kind) throws Exception {
        NetBackend backend = started(kind, 2, 1);
        assertTrue(backend.maxQueuePairs() >= 2, backend.name() + " serves 2 pairs here, not " + backend.maxQueuePairs());

        NumberedFrames.transmit(guest, 1, 0, 1);
        if (plane.steersHostFramesByQueue()) {
            hostSends(1, 10, 11);
        }
        NumberedFrames.transmit(guest, 0, 20, 21);
        assertEquals(List.of(20), onWire(0, 1), "pair 0 is active and served");
        assertEquals(List.of(), onWireWhileQuiet(1), "pair 1 is beyond the active count: its transmit ring is not served");
        assertEquals(0, guest.usedIdx(3), "pair 1's transmit chain is not consumed");
        assertEquals(List.of(), guestReceives(1, 1, QUIET_MILLIS), "pair 1's receive buffers are not filled");

        backend.setActivePairs(2);
        assertEquals(List.of(0), onWire(1, 1), "once active, pair 1 sends what waited in its ring");
        assertEquals(1, guest.awaitTransmitted(1, 1, MOVE_MILLIS));
        if (plane.steersHostFramesByQueue()) {
            assertEquals(List.of(10), guestReceives(1, 1, MOVE_MILLIS), "once active, pair 1 receives what waited for it");
        }

        backend.setActivePairs(1);
        NumberedFrames.transmit(guest, 1, 1, 2);
        assertEquals(List.of(), onWireWhileQuiet(1), "back to one pair: pair 1 is not served again");
        assertEquals(1, guest.usedIdx(3));
        assertNoDeviceErrors();
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Kind.class)
    void linkDownDropsBothWaysCountedAndLinkUpResumesWhereItStopped(Kind kind) throws Exception {
        NetBackend backend = started(kind, 1, 1);
        assertMovesBothWays(0, 1);

        backend.setLinkUp(false);
        int rxUsed = guest.usedIdx(0);
        NumberedFrames.transmit(guest, 0, 1, 3);
        assertEquals(2, guest.awaitTransmitted(0, 2, MOVE_MILLIS), "with no carrier the transmitted frames are consumed");
        assertEquals(List.of(), onWireWhileQuiet(0), "and never sent");
        assertEquals(2, guest.counters(1).dropsLinkDown, "and counted in dropsLinkDown");
        hostSends(0, 1, 3);
        assertEquals(List.of(), guestReceives(0, 1, QUIET_MILLIS), "with no carrier nothing reaches the guest");
        assertEquals(rxUsed, guest.usedIdx(0), "its receive buffers stay posted");
        if (plane.dropsHostFramesWhileLinkDown()) {
            awaitAtLeast(() -> guest.counters(0).dropsLinkDown, 2, "frames from the host dropped and counted");
        }

        backend.setLinkUp(true);
        NumberedFrames.transmit(guest, 0, 3, 4);
        assertEquals(List.of(3), onWire(0, 1), "link up: the next frame goes out, none of the dropped ones before it");
        hostSends(0, 3, 4);
        List<Integer> after = plane.dropsHostFramesWhileLinkDown() ? List.of(3) : range(1, 4);
        assertEquals(after, guestReceives(0, after.size(), MOVE_MILLIS), "link up: the host's frames arrive again");
        assertEquals(List.of(), guestReceives(0, 1, QUIET_MILLIS), "and the dropped ones never");

        QueuePositions at = backend.stop();
        assertEquals(4, at.nextAvail(1), "transmit resumed where it stopped: " + at);
        assertEquals(4, at.nextUsed(1), at.toString());
        assertReceivePosition(at, 1 + after.size());
        assertNoDeviceErrors();
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Kind.class)
    void stopIsIdempotentAndAStoppedBackendStartsAgainWhereItStopped(Kind kind) throws Exception {
        prepare(kind, 1);
        NetBackend backend = open();
        assertNull(backend.stop(), "stop before start: nothing to say");
        backend.start(guest.activation(acked(backend), 1));
        assertMovesBothWays(0, 1);
        QueuePositions at = backend.stop();
        assertNotNull(at);
        assertNull(backend.stop(), "a second stop is a no-op");

        backend.start(guest.activation(acked(backend), 1, at));
        assertMovesBothWays(1, 2); // the same backend serves again from where it stood
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Kind.class)
    void closeReleasesEveryFdAndThread(Kind kind) throws Exception {
        prepare(kind, 1);
        lifecycle(); // what the plane's host side makes lazily (the daemon's I/O threads) exists after one lifecycle
        Set<String> fdsBefore = openFds();
        Set<Thread> threadsBefore = Thread.getAllStackTraces().keySet();
        long workersBefore = vhostWorkers();

        lifecycle();

        long deadline = System.currentTimeMillis() + 5_000;
        while (true) {
            Set<String> newFds = new HashSet<>(openFds());
            newFds.removeAll(fdsBefore);
            List<String> newThreads = Thread.getAllStackTraces().keySet().stream().filter(t -> !threadsBefore.contains(t))
                    .filter(Thread::isAlive).filter(t -> !t.getName().startsWith("ForkJoinPool.commonPool")).map(Thread::getName).toList();
            long workers = vhostWorkers();
            if (newFds.isEmpty() && newThreads.isEmpty() && workers <= workersBefore) {
                break;
            }
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("after close, still open: fds " + newFds + ", threads " + newThreads + ", vhost workers "
                        + workers + " (were " + workersBefore + ")");
            }
            Thread.sleep(20);
        }
    }

    /** One backend's whole life: open, start where the last one stopped, a frame each way, stop, close. */
    private void lifecycle() {
        NetBackend b = plane.open();
        try {
            b.start(guest.activation(acked(b), 1, lastPositions != null ? lastPositions : QueuePositions.zero(2)));
            assertMovesBothWays(7, 8);
            guest.postReceiveBuffers(0, 1);
            lastPositions = b.stop();
        } finally {
            b.close();
        }
    }

    /** "fd -> target" for every fd this process has open (proc(5): /proc/self/fd). */
    private static Set<String> openFds() throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.map(p -> {
                try {
                    return p.getFileName() + " -> " + Files.readSymbolicLink(p);
                } catch (IOException e) {
                    return null; // closed while we looked
                }
            }).filter(s -> s != null && !s.endsWith("/fd")).collect(Collectors.toSet()); // not the listing's own fd
        }
    }

    /** Kernel vhost worker tasks of this process (vhost-PID; since Linux 6.4 they are threads of the owner). */
    private static long vhostWorkers() throws IOException {
        try (Stream<Path> tasks = Files.list(Path.of("/proc/self/task"))) {
            return tasks.filter(t -> {
                try {
                    return Files.readString(t.resolve("comm")).startsWith("vhost-");
                } catch (IOException e) {
                    return false; // the task ended while we looked
                }
            }).count();
        }
    }

    private void awaitAtLeast(LongSupplier counter, long expected, String what) throws InterruptedException {
        long deadline = System.currentTimeMillis() + MOVE_MILLIS;
        while (counter.getAsLong() < expected && System.currentTimeMillis() < deadline) {
            Thread.sleep(10);
        }
        if (plane.quietHost()) {
            assertEquals(expected, counter.getAsLong(), what);
        } else {
            assertTrue(counter.getAsLong() >= expected, what + ": " + counter.getAsLong() + " of at least " + expected);
        }
    }
}
