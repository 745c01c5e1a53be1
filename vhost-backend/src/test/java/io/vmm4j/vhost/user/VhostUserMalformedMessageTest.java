package io.vmm4j.vhost.user;

import io.vmm4j.vhost.VringAddress;
import io.vmm4j.core.event.EventFd;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.QueuePositions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static io.vmm4j.virtio.VirtioFeatures.bit;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every kind of bad message a hostile or broken front-end can send, one connection each: the daemon
 * answers with a non-zero REPLY_ACK (the message was whole but wrong) or closes the connection (the
 * framing is broken, or the front-end asked for no ack), leaks no descriptor, and then serves the
 * next front-end. A clean session with frames both ways closes the table.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class VhostUserMalformedMessageTest {
    private static final long MIB = 1L << 20;
    private static final long USER = 0x7f00_0000_0000L;
    private DaemonOnThread daemon;
    private long eventFdsAtStart;

    @BeforeAll
    void startDaemon() throws IOException {
        daemon = new DaemonOnThread(1, 300);
    }

    @AfterAll
    void stopDaemon() throws Exception {
        daemon.close();
    }

    /** @param why what the daemon's log must say about this front-end */
    private record Case(String name, String why, Consumer<RawFrontend> body) {
    }

    private static int memfd(long size) {
        int fd = unsealedMemfd(size);
        LibC.fcntl(fd, LibC.F_ADD_SEALS, LibC.F_SEAL_SHRINK | LibC.F_SEAL_GROW);
        return fd;
    }

    private static int unsealedMemfd(long size) {
        int fd = LibC.memfdCreate(TestGuest.MEMFD_NAME, LibC.MFD_CLOEXEC | LibC.MFD_ALLOW_SEALING);
        LibC.ftruncate(fd, size);
        return fd;
    }

    /** A tmpfs file, not a memfd (no seals possible), opened read-write and already unlinked. */
    private static int shmFile(long size) {
        try {
            Path file = Files.createTempFile(Path.of("/dev/shm"), TestGuest.MEMFD_NAME, ".ram");
            int fd = LibC.open(file.toString(), LibC.O_RDWR | LibC.O_CLOEXEC);
            Files.delete(file);
            LibC.ftruncate(fd, size);
            return fd;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static byte[] table(VhostUserMessage.Region... regions) {
        return VhostUserMessage.memoryTable(List.of(regions));
    }

    private static VhostUserMessage.Region region(long gpa, long size, long user, long offset) {
        return new VhostUserMessage.Region(gpa, size, user, offset);
    }

    private static byte[] header(int request, int flags, int size) {
        return ByteBuffer.allocate(VhostUserProtocol.HEADER_SIZE).order(ByteOrder.nativeOrder()).putInt(request).putInt(flags)
                .putInt(size).array();
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] c = new byte[a.length + b.length];
        System.arraycopy(a, 0, c, 0, a.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    /** Sends a message passing descriptors the test creates, then closes the test's copies. */
    private static void withFds(int[] fds, Runnable send) {
        try {
            send.run();
        } finally {
            for (int fd : fds) {
                LibC.closeQuietly(fd);
            }
        }
    }

    private static void refusedWith(RawFrontend f, VhostUserRequest request, byte[] payload, int... fds) {
        withFds(fds, () -> f.expectRefused(request, payload, fds));
    }

    /** An inflight region's bytes for 2 queues of 256: two 64-byte-aligned QueueRegionSplit of 16 + 16 x 256, in pages. */
    private static final long INFLIGHT_BYTES = 12288;

    private static byte[] inflight(long mmapSize, long mmapOffset, int queues, int queueSize) {
        return VhostUserMessage.inflight(new VhostUserMessage.Inflight(mmapSize, mmapOffset, queues, queueSize));
    }

    /** SET_INFLIGHT_FD with {@code description} and a memfd of {@code fileBytes}, after a clean negotiation: refused. */
    private static void setInflightRefused(RawFrontend f, long fileBytes, byte[] description) {
        f.negotiate();
        refusedWith(f, VhostUserRequest.SET_INFLIGHT_FD, description, memfd(fileBytes));
    }

    /** Queue pair 0 of 256-slot split rings inside the {@link #goodTable}, started by its two kicks. */
    private record RunningPair(EventFd rxKick, EventFd txKick) implements AutoCloseable {
        static RunningPair start(RawFrontend f) {
            RunningPair p = new RunningPair(EventFd.create(), EventFd.create());
            for (int ring = 0; ring < 2; ring++) {
                long desc = USER + 0x10000L * (ring + 1);
                assertEquals(0, f.ack(VhostUserRequest.SET_VRING_NUM, VhostUserMessage.vringState(ring, 256)));
                assertEquals(0, f.ack(VhostUserRequest.SET_VRING_ADDR, VhostUserMessage.vringAddress(
                        new VhostUserMessage.VringAddressDescription(ring, 0, new VringAddress(desc, desc + 0x2000, desc + 0x1000), 0))));
            }
            assertEquals(0, f.ack(VhostUserRequest.SET_VRING_KICK, VhostUserMessage.u64(0), p.rxKick.fd()));
            assertEquals(0, f.ack(VhostUserRequest.SET_VRING_KICK, VhostUserMessage.u64(1), p.txKick.fd()), "the pair starts");
            return p;
        }

        @Override
        public void close() {
            rxKick.close();
            txKick.close();
        }
    }

    /** A valid one-region table of 1 MiB at guest 0, user address USER. */
    private static void goodTable(RawFrontend f) {
        int fd = memfd(MIB);
        withFds(new int[] {fd}, () -> assertEquals(0, f.ack(VhostUserRequest.SET_MEM_TABLE, table(region(0, MIB, USER, 0)), fd)));
    }

    private List<Case> cases() {
        int version = VhostUserProtocol.VERSION;
        int needReply = version | VhostUserProtocol.FLAG_NEED_REPLY;
        int num = VhostUserRequest.SET_VRING_NUM.code();
        List<Case> cases = new ArrayList<>();
        // ---- framing: the stream cannot be trusted, the daemon hangs up ----
        cases.add(new Case("truncated header", "a truncated header", f -> {
            f.channel.sendRaw(new byte[] {1, 0, 0, 0, 1, 0});
            f.expectClosed();
        }));
        cases.add(new Case("size field larger than the payload", "the size field promises more than was sent", f -> {
            f.channel.sendRaw(concat(header(num, needReply, 16), VhostUserMessage.vringState(0, 256)));
            f.expectClosed();
        }));
        cases.add(new Case("size field smaller than the payload", "SET_VRING_ADDR has a 8-byte payload, but its payload is a vring address of 40 bytes", f -> {
            f.negotiate();
            byte[] addr = VhostUserMessage.vringAddress(
                    new VhostUserMessage.VringAddressDescription(0, 0, new VringAddress(USER, USER + 0x2000, USER + 0x1000), 0));
            f.channel.sendRaw(concat(header(VhostUserRequest.SET_VRING_ADDR.code(), needReply, 8), addr));
            f.expectClosed();
        }));
        cases.add(new Case("size field beyond any message", "no message is larger than 4096 bytes", f -> {
            f.channel.sendRaw(header(VhostUserRequest.GET_FEATURES.code(), version, 0x1000_0000));
            f.expectClosed();
        }));
        cases.add(new Case("payload on a request that takes none", "GET_FEATURES has a 8-byte payload; it carries none", f -> {
            f.channel.sendRaw(concat(header(VhostUserRequest.GET_FEATURES.code(), version, 8), new byte[8]));
            f.expectClosed();
        }));
        cases.add(new Case("wrong protocol version", "vhost-user version is 1", f -> {
            f.channel.sendRaw(header(VhostUserRequest.GET_FEATURES.code(), 2, 0));
            f.expectClosed();
        }));
        cases.add(new Case("a refusal the front-end asked no ack for", "closed the connection after refusing SET_VRING_NUM", f -> {
            f.negotiate();
            f.send(VhostUserRequest.SET_VRING_NUM, false, VhostUserMessage.vringState(0, 100));
            f.expectClosed();
        }));
        cases.add(new Case("GET_VRING_BASE of a vring out of range (no way to answer but hang up)", "GET_VRING_BASE names vring 9, out of range", f -> {
            f.negotiate();
            f.send(VhostUserRequest.GET_VRING_BASE, false, VhostUserMessage.vringState(9, 0));
            f.expectClosed();
        }));
        cases.add(new Case("unknown request without NEED_REPLY", "closed the connection after refusing request 99", f -> {
            f.channel.sendRaw(header(99, version, 0));
            f.expectClosed();
        }));
        // ---- whole messages with bad contents: refused, the connection lives on ----
        cases.add(new Case("unknown request with NEED_REPLY", "request 99 is not a vhost-user request this back-end knows", f -> {
            f.negotiate();
            f.channel.sendRaw(header(99, needReply, 0));
            VhostUserMessage m = f.reply();
            assertEquals(99, m.request());
            assertEquals(1, m.u64());
        }));
        cases.add(new Case("too many fds", "carries 2 fd(s); without the NOFD flag it takes exactly one", f -> {
            f.negotiate();
            EventFd a = EventFd.create();
            EventFd b = EventFd.create();
            try {
                f.expectRefused(VhostUserRequest.SET_VRING_CALL, VhostUserMessage.u64(0), a.fd(), b.fd());
            } finally {
                a.close();
                b.close();
            }
        }));
        cases.add(new Case("too few fds (a kick without the NOFD flag and without an fd)", "carries 0 fd(s); without the NOFD flag it takes exactly one", f -> {
            f.negotiate();
            f.expectRefused(VhostUserRequest.SET_VRING_KICK, VhostUserMessage.u64(0));
        }));
        cases.add(new Case("an fd on a request that takes none", "SET_VRING_NUM carries 1 fd(s); it takes none", f -> {
            f.negotiate();
            EventFd a = EventFd.create();
            try {
                f.expectRefused(VhostUserRequest.SET_VRING_NUM, VhostUserMessage.vringState(0, 256), a.fd());
            } finally {
                a.close();
            }
        }));
        cases.add(new Case("memory table with fewer fds than regions", "announces 2 region(s) but carries 1 fd(s)", f -> {
            f.negotiate();
            int fd = memfd(2 * MIB);
            refusedWith(f, VhostUserRequest.SET_MEM_TABLE, table(region(0, MIB, USER, 0), region(MIB, MIB, USER + MIB, MIB)), fd);
        }));
        cases.add(new Case("memory region larger than its fd", "lies beyond the end of its fd", f -> {
            f.negotiate();
            int fd = memfd(MIB);
            refusedWith(f, VhostUserRequest.SET_MEM_TABLE, table(region(0, 2 * MIB, USER, 0)), fd);
        }));
        cases.add(new Case("memory region at an offset past its fd's end", "offset 0x100000}: offset + size = 0x200000 lies beyond the end of its fd", f -> {
            f.negotiate();
            int fd = memfd(MIB);
            refusedWith(f, VhostUserRequest.SET_MEM_TABLE, table(region(0, MIB, USER, MIB)), fd);
        }));
        cases.add(new Case("memory region on a memfd not sealed against shrinking is accepted (DPDK's virtio_user sends these)",
                "memory table 1 region(s)", f -> {
            f.negotiate();
            int fd = unsealedMemfd(MIB);
            withFds(new int[] {fd}, () -> assertEquals(0, f.ack(VhostUserRequest.SET_MEM_TABLE, table(region(0, MIB, USER, 0)), fd)));
        }));
        cases.add(new Case("memory region on a file in /dev/shm is accepted (QEMU's memory-backend-file sends these)",
                "memory table 1 region(s)", f -> {
            f.negotiate();
            int fd = shmFile(MIB);
            withFds(new int[] {fd}, () -> assertEquals(0, f.ack(VhostUserRequest.SET_MEM_TABLE, table(region(0, MIB, USER, 0)), fd)));
        }));
        cases.add(new Case("memory region larger than its unsealed memfd", "lies beyond the end of its fd", f -> {
            f.negotiate();
            int fd = unsealedMemfd(MIB);
            refusedWith(f, VhostUserRequest.SET_MEM_TABLE, table(region(0, MIB + 0x1000, USER, 0)), fd);
        }));
        cases.add(new Case("an unsealed memfd shrunk before its rings start (the session thread's read of a used index faults)",
                "the front-end shrank its memory file under the back-end's mapping (memory region 0", f -> {
            f.negotiate();
            int fd = unsealedMemfd(MIB);
            EventFd rxKick = EventFd.create();
            EventFd txKick = EventFd.create();
            try {
                assertEquals(0, f.ack(VhostUserRequest.SET_MEM_TABLE, table(region(0, MIB, USER, 0)), fd));
                for (int ring = 0; ring < 2; ring++) {
                    long desc = USER + 0x10000L * (ring + 1);
                    assertEquals(0, f.ack(VhostUserRequest.SET_VRING_NUM, VhostUserMessage.vringState(ring, 256)));
                    assertEquals(0, f.ack(VhostUserRequest.SET_VRING_ADDR, VhostUserMessage.vringAddress(
                            new VhostUserMessage.VringAddressDescription(ring, 0, new VringAddress(desc, desc + 0x2000, desc + 0x1000), 0))));
                }
                LibC.ftruncate(fd, 0x1000); // the rings now lie beyond the end of the file
                assertEquals(0, f.ack(VhostUserRequest.SET_VRING_KICK, VhostUserMessage.u64(0), rxKick.fd()), "one ring alone waits");
                f.send(VhostUserRequest.SET_VRING_KICK, true, VhostUserMessage.u64(1), txKick.fd()); // the pair starts: its rings are read
                f.expectClosed();
            } finally {
                LibC.closeQuietly(fd);
                rxKick.close();
                txKick.close();
            }
        }));
        cases.add(new Case("memory regions overlapping in guest-physical space", "in guest-physical space", f -> {
            f.negotiate();
            int a = memfd(2 * MIB);
            int b = memfd(2 * MIB);
            refusedWith(f, VhostUserRequest.SET_MEM_TABLE, table(region(0, 2 * MIB, USER, 0), region(MIB, MIB, USER + 4 * MIB, 0)), a, b);
        }));
        cases.add(new Case("memory regions overlapping in user address space", "in the front-end's address space", f -> {
            f.negotiate();
            int a = memfd(2 * MIB);
            int b = memfd(2 * MIB);
            refusedWith(f, VhostUserRequest.SET_MEM_TABLE, table(region(0, 2 * MIB, USER, 0), region(4 * MIB, MIB, USER + MIB, 0)), a, b);
        }));
        cases.add(new Case("memory region not page-aligned", "not a positive multiple of the 4 KiB page", f -> {
            f.negotiate();
            int fd = memfd(MIB);
            refusedWith(f, VhostUserRequest.SET_MEM_TABLE, table(region(0x800, 0x1800, USER, 0)), fd);
        }));
        cases.add(new Case("nine memory regions", "announces 9 memory regions", f -> {
            f.negotiate();
            byte[] payload = ByteBuffer.allocate(8 + 9 * 32).order(ByteOrder.nativeOrder()).putInt(9).array();
            f.expectRefused(VhostUserRequest.SET_MEM_TABLE, payload);
        }));
        cases.add(new Case("memory fd that is an eventfd", "its fd is not a regular file", f -> {
            f.negotiate();
            EventFd e = EventFd.create();
            try {
                f.expectRefused(VhostUserRequest.SET_MEM_TABLE, table(region(0, MIB, USER, 0)), e.fd());
            } finally {
                e.close();
            }
        }));
        cases.add(new Case("memory fd open read-only", "its fd is not open read-write", f -> {
            f.negotiate();
            int rw = memfd(MIB);
            int ro = LibC.open("/proc/self/fd/" + rw, LibC.O_RDONLY | LibC.O_CLOEXEC);
            LibC.closeQuietly(rw);
            refusedWith(f, VhostUserRequest.SET_MEM_TABLE, table(region(0, MIB, USER, 0)), ro);
        }));
        cases.add(new Case("ring address before any memory table", "before SET_MEM_TABLE", f -> {
            f.negotiate();
            f.expectRefused(VhostUserRequest.SET_VRING_ADDR,
                    VhostUserMessage.vringAddress(
                            new VhostUserMessage.VringAddressDescription(0, 0, new VringAddress(USER, USER + 0x2000, USER + 0x1000), 0)));
        }));
        cases.add(new Case("ring address outside every region", "at user address 0x12340000 (+16 bytes) is not inside one memory region", f -> {
            f.negotiate();
            goodTable(f);
            f.expectRefused(VhostUserRequest.SET_VRING_ADDR,
                    VhostUserMessage.vringAddress(new VhostUserMessage.VringAddressDescription(0, 0,
                            new VringAddress(0x1234_0000L, USER + 0x2000, USER + 0x1000), 0)));
        }));
        cases.add(new Case("ring running off the end of its region", "at user address 0x7f00000ffff0 (+4096 bytes) is not inside one memory region", f -> {
            f.negotiate();
            goodTable(f);
            assertEquals(0, f.ack(VhostUserRequest.SET_VRING_NUM, VhostUserMessage.vringState(0, 256)));
            // the 4 KiB descriptor table would start 16 bytes before the region's end
            f.expectRefused(VhostUserRequest.SET_VRING_ADDR,
                    VhostUserMessage.vringAddress(new VhostUserMessage.VringAddressDescription(0, 0,
                            new VringAddress(USER + MIB - 16, USER + 0x2000, USER + 0x1000), 0)));
        }));
        cases.add(new Case("ring address asking for dirty logging", "VHOST_VRING_F_LOG", f -> {
            f.negotiate();
            goodTable(f);
            f.expectRefused(VhostUserRequest.SET_VRING_ADDR, VhostUserMessage.vringAddress(new VhostUserMessage.VringAddressDescription(0,
                    VhostUserProtocol.VRING_F_LOG, new VringAddress(USER, USER + 0x2000, USER + 0x1000), 0)));
        }));
        cases.add(new Case("vring index out of range", "SET_VRING_KICK names vring 5, out of range", f -> {
            f.negotiate();
            f.expectRefused(VhostUserRequest.SET_VRING_NUM, VhostUserMessage.vringState(2, 256));
            f.expectRefused(VhostUserRequest.SET_VRING_NUM, VhostUserMessage.vringState(-1, 256));
            f.expectRefused(VhostUserRequest.SET_VRING_ENABLE, VhostUserMessage.vringState(7, 1));
            EventFd e = EventFd.create();
            try {
                f.expectRefused(VhostUserRequest.SET_VRING_KICK, VhostUserMessage.u64(5), e.fd());
            } finally {
                e.close();
            }
        }));
        cases.add(new Case("ring size not a power of two", "is 65536, not a power of two", f -> {
            f.negotiate();
            f.expectRefused(VhostUserRequest.SET_VRING_NUM, VhostUserMessage.vringState(0, 100));
            f.expectRefused(VhostUserRequest.SET_VRING_NUM, VhostUserMessage.vringState(0, 0));
            f.expectRefused(VhostUserRequest.SET_VRING_NUM, VhostUserMessage.vringState(0, 65536));
        }));
        cases.add(new Case("packed ring size beyond 32768 (any other size is one: virtio 1.2 §2.8)", "is 65536, not in 1..32768", f -> {
            f.negotiate(1L << 34);
            assertEquals(0, f.ack(VhostUserRequest.SET_VRING_NUM, VhostUserMessage.vringState(0, 100)), "a packed ring of 100");
            f.expectRefused(VhostUserRequest.SET_VRING_NUM, VhostUserMessage.vringState(0, 0));
            f.expectRefused(VhostUserRequest.SET_VRING_NUM, VhostUserMessage.vringState(0, 65536));
        }));
        cases.add(new Case("packed ring base beyond its ring (offset 200 in a 100-slot ring)",
                "vring 0 cannot start: packed ring positions are an offset below the queue size 100", f -> {
            f.negotiate(1L << 34); // VIRTIO_F_RING_PACKED
            goodTable(f);
            EventFd rxKick = EventFd.create();
            EventFd txKick = EventFd.create();
            try {
                for (int ring = 0; ring < 2; ring++) {
                    long desc = USER + 0x10000L * (ring + 1); // descriptor ring 16-aligned, event structures 4-aligned (§2.8)
                    assertEquals(0, f.ack(VhostUserRequest.SET_VRING_NUM, VhostUserMessage.vringState(ring, 100)));
                    assertEquals(0, f.ack(VhostUserRequest.SET_VRING_ADDR, VhostUserMessage.vringAddress(
                            new VhostUserMessage.VringAddressDescription(ring, 0, new VringAddress(desc, desc + 0x2000, desc + 0x1000), 0))));
                }
                // vhost-user.rst: bits 0-14 the avail offset, 15 its wrap counter; 200 is no slot of a 100-slot ring
                assertEquals(0, f.ack(VhostUserRequest.SET_VRING_BASE, VhostUserMessage.vringState(0, 200)), "taken, checked at start");
                assertEquals(0, f.ack(VhostUserRequest.SET_VRING_KICK, VhostUserMessage.u64(0), rxKick.fd()), "one ring alone waits");
                f.expectRefused(VhostUserRequest.SET_VRING_KICK, VhostUserMessage.u64(1), txKick.fd()); // the pair would start
            } finally {
                rxKick.close();
                txKick.close();
            }
        }));
        cases.add(new Case("ring base beyond 16 bits", "a split ring index is 16 bits", f -> {
            f.negotiate();
            f.expectRefused(VhostUserRequest.SET_VRING_BASE, VhostUserMessage.vringState(0, 0x10000));
        }));
        cases.add(new Case("features the daemon did not offer", "acks [CSUM], which this back-end did not offer", f -> {
            f.negotiate();
            f.expectRefused(VhostUserRequest.SET_FEATURES, VhostUserMessage.u64(bit(VirtioFeatures.VERSION_1) | bit(NetFeatures.CSUM)));
        }));
        cases.add(new Case("kick with NOFD (polling)", "asks the back-end to poll", f -> {
            f.negotiate();
            f.expectRefused(VhostUserRequest.SET_VRING_KICK, VhostUserMessage.u64(VhostUserProtocol.VRING_NOFD));
        }));
        cases.add(new Case("kick fd that is not an eventfd", "not an eventfd", f -> {
            f.negotiate();
            int fd = memfd(MIB);
            refusedWith(f, VhostUserRequest.SET_VRING_KICK, VhostUserMessage.u64(0), fd);
        }));
        cases.add(new Case("kick value with bits beyond index and NOFD", "has bits beyond the vring index", f -> {
            f.negotiate();
            f.expectRefused(VhostUserRequest.SET_VRING_CALL, VhostUserMessage.u64(0x1000 | VhostUserProtocol.VRING_NOFD));
        }));
        // ---- inflight I/O tracking (vhost-user.rst "Inflight I/O tracking"; GET_INFLIGHT_FD has a reply of its own, so a refusal hangs up) ----
        cases.add(new Case("GET_INFLIGHT_FD without INFLIGHT_SHMFD negotiated", "GET_INFLIGHT_FD without the INFLIGHT_SHMFD protocol feature", f -> {
            f.negotiateProtocol(VhostUserProtocol.bit(VhostUserProtocol.PROTOCOL_F_REPLY_ACK));
            f.send(VhostUserRequest.GET_INFLIGHT_FD, true, inflight(0, 0, 2, 256));
            f.expectClosed();
        }));
        cases.add(new Case("GET_INFLIGHT_FD for more queues than the back-end serves", "num queues 3 is outside 1..2", f -> {
            f.negotiate();
            f.send(VhostUserRequest.GET_INFLIGHT_FD, true, inflight(0, 0, 3, 256));
            f.expectClosed();
        }));
        cases.add(new Case("GET_INFLIGHT_FD for a queue size that is no power of two", "queue size 100 is not a power of two", f -> {
            f.negotiate();
            f.send(VhostUserRequest.GET_INFLIGHT_FD, true, inflight(0, 0, 2, 100));
            f.expectClosed();
        }));
        cases.add(new Case("GET_INFLIGHT_FD while a queue pair runs (the region it made is closed, not leaked)",
                "an inflight region cannot change while queue pairs run", f -> {
            f.negotiate();
            goodTable(f);
            RunningPair running = RunningPair.start(f);
            try {
                f.send(VhostUserRequest.GET_INFLIGHT_FD, true, inflight(0, 0, 2, 256));
                f.expectClosed();
            } finally {
                running.close();
            }
        }));
        cases.add(new Case("SET_INFLIGHT_FD with a short description", "carries 8 payload bytes; an inflight description has", f -> setInflightRefused(f, INFLIGHT_BYTES, new byte[8])));
        cases.add(new Case("SET_INFLIGHT_FD without its fd", "SET_INFLIGHT_FD carries 0 fd(s); it takes one", f -> {
            f.negotiate();
            f.expectRefused(VhostUserRequest.SET_INFLIGHT_FD, inflight(INFLIGHT_BYTES, 0, 2, 256));
        }));
        cases.add(new Case("SET_INFLIGHT_FD whose size is not what its queues take", "mmap size 4096 is not the 12288 bytes that 2 queue(s) of 256 take", f -> setInflightRefused(f, INFLIGHT_BYTES, inflight(4096, 0, 2, 256))));
        cases.add(new Case("SET_INFLIGHT_FD at an offset that is not page-aligned", "mmap offset 100 is not page-aligned", f -> setInflightRefused(f, 2 * INFLIGHT_BYTES, inflight(INFLIGHT_BYTES, 100, 2, 256))));
        cases.add(new Case("SET_INFLIGHT_FD running past the end of its fd", "offset + size = 16384 lies beyond the end of its fd (12288 bytes)", f -> setInflightRefused(f, INFLIGHT_BYTES, inflight(INFLIGHT_BYTES, 4096, 2, 256))));
        cases.add(new Case("SET_INFLIGHT_FD on an eventfd", "the fd is not a regular file", f -> {
            f.negotiate();
            EventFd e = EventFd.create();
            try {
                f.expectRefused(VhostUserRequest.SET_INFLIGHT_FD, inflight(INFLIGHT_BYTES, 0, 2, 256), e.fd());
            } finally {
                e.close();
            }
        }));
        cases.add(new Case("SET_INFLIGHT_FD for no queues", "num queues 0 is outside 1..2", f -> setInflightRefused(f, INFLIGHT_BYTES, inflight(INFLIGHT_BYTES, 0, 0, 256))));
        cases.add(new Case("the region GET_INFLIGHT_FD made, handed back with SET_INFLIGHT_FD, is taken", "inflight region set: 2 queue(s) of up to 256", f -> {
            f.negotiate();
            f.send(VhostUserRequest.GET_INFLIGHT_FD, false, inflight(0, 0, 2, 256));
            VhostUserMessage made = f.reply();
            assertEquals(1, made.fds().length, "GET_INFLIGHT_FD's reply carries the region's fd");
            withFds(made.fds(), () -> {
                assertEquals(INFLIGHT_BYTES, made.inflight().mmapSize());
                assertEquals(0, f.ack(VhostUserRequest.SET_INFLIGHT_FD, inflight(INFLIGHT_BYTES, 0, 2, 256), made.fds()[0]));
            });
        }));
        cases.add(new Case("rings kicked before the memory table and sizes", "queue pair 0 cannot start: no SET_MEM_TABLE yet", f -> {
            f.negotiate();
            EventFd a = EventFd.create();
            EventFd b = EventFd.create();
            try {
                assertEquals(0, f.ack(VhostUserRequest.SET_VRING_KICK, VhostUserMessage.u64(0), a.fd()), "one ring alone waits");
                f.expectRefused(VhostUserRequest.SET_VRING_KICK, VhostUserMessage.u64(1), b.fd());
            } finally {
                a.close();
                b.close();
            }
        }));
        return cases;
    }

    private static long openFdsPointingAt(String what) throws IOException {
        long n = 0;
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            for (Path p : fds.toList()) {
                try {
                    if (Files.readSymbolicLink(p).toString().contains(what)) {
                        n++;
                    }
                } catch (IOException gone) {
                    // closed while listing
                }
            }
        }
        return n;
    }

    @TestFactory
    @Order(1)
    Stream<DynamicTest> eachBadMessageIsRefusedOrHungUpAndTheDaemonServesTheNextFrontend() throws IOException {
        daemon.daemon().loop(0); // the pair's loop (and its wake-up eventfd) is made on first use and kept: count it in
        eventFdsAtStart = openFdsPointingAt("eventfd");
        return cases().stream().map(c -> DynamicTest.dynamicTest(c.name(), () -> {
            int before = daemon.daemon().stats().sessions().size();
            try (RawFrontend f = new RawFrontend(daemon.socket())) {
                c.body().accept(f);
            }
            daemon.awaitSessionsEnded(before + 1, 3_000);
            String session = daemon.daemon().stats().sessions().get(before).end();
            String said = daemon.log().lines().filter(l -> l.contains("front-end " + (before + 1) + ":")).toList().toString();
            assertTrue(said.contains(c.why()), "the daemon should have said '" + c.why() + "'; it said " + said + ", ended: " + session);
            assertTrue(daemon.alive(), "the daemon thread is alive");
            try (RawFrontend next = new RawFrontend(daemon.socket())) {
                assertEquals(daemon.daemon().offeredFeatures(), next.get(VhostUserRequest.GET_FEATURES), "the next front-end is served");
            }
            daemon.awaitSessionsEnded(before + 2, 3_000);
        }));
    }

    @Test
    @Order(2)
    void noDescriptorLeakedAndACleanSessionMovesFramesAfterwards() throws Exception {
        assertEquals(0, openFdsPointingAt(TestGuest.MEMFD_NAME), "every memfd passed in a bad message was closed");
        assertEquals(eventFdsAtStart, openFdsPointingAt("eventfd"), "every eventfd passed in a bad message was closed");
        assertEquals(0, openFdsPointingAt("vhost-user-inflight"), "every inflight region the daemon made is closed or sent");
        try (EventLoop watch = new EventLoop("vu-watch");
             TestGuest guest = new TestGuest(true);
             VhostUserNetBackend backend = new VhostUserNetBackend(daemon.socket(), watch)) {
            backend.start(guest.activation(bit(VirtioFeatures.VERSION_1) | bit(VirtioFeatures.EVENT_IDX), QueuePositions.zero(2)));
            byte[] out = VhostUserRoundTripTest.frame(200, 7);
            guest.transmit(out);
            assertArrayEquals(out, VhostUserRoundTripTest.readWire(daemon.wire(), 2_000));
            guest.postReceiveBuffers(4);
            byte[] in = VhostUserRoundTripTest.frame(90, 8);
            daemon.wire().send(0, VhostUserRoundTripTest.withHeader(in));
            assertArrayEquals(in, guest.awaitReceived(2_000));
        }
    }
}
