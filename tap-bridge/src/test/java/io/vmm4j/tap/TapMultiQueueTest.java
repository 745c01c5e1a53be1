package io.vmm4j.tap;

import io.vmm4j.core.linux.Errno;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A two-queue tap: the kernel spreads flows over attached queues, steers nothing to a detached
 * one, and says so in its own bookkeeping ({@code ip -d link}: numqueues, numdisabled).
 */
class TapMultiQueueTest {
    private static final int HEADER = TapDevice.VNET_HEADER_V1_SIZE;
    /** 32 UDP flows: with two queues, all landing on one by chance has probability 2^-31. */
    private static final int FLOWS = 32;
    private static final int FIRST_PORT = 40000;
    private static final byte[] GUEST_IP = Frames.ipv4("10.77.8.2");

    @BeforeEach
    void requireTap() {
        HostRequirements.requireRoot("creating taps and network namespaces needs CAP_NET_ADMIN");
        HostRequirements.requireFile(TapDevice.TUN_PATH, "load the tun module: modprobe tun");
    }

    @Test
    void detachedQueueGetsNoTrafficUntilReattached() {
        try (NetNamespace ns = NetNamespace.create(ScratchNames.namespace());
             TapDevice tap = TapDevice.open(ScratchNames.tap(), 2, HEADER)) {
            assertEquals(2, tap.queueCount());
            tap.moveToNamespace(ns);
            // no IPv6 on the tap: its multicast listener reports would arrive on either queue at any time
            ns.exec("sysctl", "-w", "net.ipv6.conf." + tap.name() + ".disable_ipv6=1").orThrow("disable IPv6 on " + tap.name());
            tap.addAddress("10.77.8.1/24");
            tap.setUp();
            ns.ip("add a static neighbour for the guest", "neigh", "add", "10.77.8.2", "lladdr",
                    Frames.mac(Frames.randomGuestMac()), "dev", tap.name(), "nud", "permanent");
            assertKernelQueues(ns, tap, 2, 0);

            int[] both = sendFlowsAndCount(ns, tap);
            assertTrue(both[0] > 0 && both[1] > 0, "flows spread over both attached queues: " + Arrays.toString(both));

            tap.setQueueEnabled(1, false);
            assertFalse(tap.isQueueEnabled(1));
            assertKernelQueues(ns, tap, 1, 1);
            TapException again = assertThrows(TapException.class, () -> tap.setQueueEnabled(1, false));
            assertEquals(Errno.EINVAL, again.errno(), again.getMessage());
            assertTrue(again.getMessage().contains("already detached"), again.getMessage());

            int[] detached = sendFlowsAndCount(ns, tap);
            assertArrayEquals(new int[] {FLOWS, 0}, detached, "every flow on queue 0 while queue 1 is detached");
            assertEquals(0, LibC.pollOne(tap.fd(1), LibC.POLLIN, 0), "a detached queue never polls readable");

            // tun.c takes frames written on a detached queue all the same: the reply comes back on queue 0
            byte[] guestMac = Frames.randomGuestMac();
            byte[] hostIp = Frames.ipv4("10.77.8.1");
            byte[] otherGuestIp = Frames.ipv4("10.77.8.3");
            tap.send(1, Frames.withZeroHeader(HEADER, Frames.arpRequest(guestMac, otherGuestIp, hostIp)));
            FrameWaiter.await(tap, 0, f -> Frames.isArpReply(f, hostIp, guestMac, otherGuestIp), 1000,
                    "ARP reply to a request written on the detached queue");
            assertEquals(-1, tap.receive(1, new byte[FrameWaiter.BUFFER]));

            tap.setQueueEnabled(1, true);
            assertTrue(tap.isQueueEnabled(1));
            assertKernelQueues(ns, tap, 2, 0);
            TapException attachAgain = assertThrows(TapException.class, () -> tap.setQueueEnabled(1, true));
            assertEquals(Errno.EINVAL, attachAgain.errno(), attachAgain.getMessage());
            assertEquals(-1, tap.receive(1, new byte[FrameWaiter.BUFFER]), "nothing was parked on queue 1 while it was detached");

            int[] reattached = sendFlowsAndCount(ns, tap);
            assertTrue(reattached[1] > 0, "queue 1 gets flows again after re-attaching: " + Arrays.toString(reattached));
        }
    }

    @Test
    void singleQueueTapCannotDetachItsQueue() {
        try (TapDevice tap = TapDevice.open(ScratchNames.tap(), 1, HEADER)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> tap.setQueueEnabled(0, false));
            assertTrue(e.getMessage().contains("IFF_MULTI_QUEUE"), e.getMessage());
        }
    }

    /**
     * Sends {@link #FLOWS} one-datagram UDP flows (distinct destination ports) from the namespace
     * to the guest and counts, per queue, the ones that come out of the tap.
     */
    private static int[] sendFlowsAndCount(NetNamespace ns, TapDevice tap) {
        ns.exec("bash", "-c", "for p in $(seq " + FIRST_PORT + " " + (FIRST_PORT + FLOWS - 1) + "); do "
                + "printf flow > /dev/udp/10.77.8.2/$p; done").orThrow("send UDP flows to the guest");
        int[] counts = new int[2];
        Set<Integer> ports = new HashSet<>();
        long deadline = System.nanoTime() + 1_000_000_000L;
        while (ports.size() < FLOWS && System.nanoTime() < deadline) {
            for (int q = 0; q < 2; q++) {
                for (byte[] frame : FrameWaiter.drain(tap, q)) {
                    if (Frames.isIpv4To(frame, 17, GUEST_IP)) {
                        int port = Frames.u16(frame, Frames.ipv4PayloadOffset(frame) + 2);
                        if (port >= FIRST_PORT && port < FIRST_PORT + FLOWS && ports.add(port)) {
                            counts[q]++;
                        }
                    }
                }
            }
            LibC.pollOne(tap.fd(0), LibC.POLLIN, 10);
        }
        if (ports.size() < FLOWS) {
            fail("only " + ports.size() + " of " + FLOWS + " UDP flows came out of tap " + tap.name() + ": " + Arrays.toString(counts));
        }
        return counts;
    }

    /** Asserts the kernel's queue bookkeeping as {@code ip -d link show} prints it. */
    private static void assertKernelQueues(NetNamespace ns, TapDevice tap, int numqueues, int numdisabled) {
        String out = ns.ip("show tap " + tap.name(), "-d", "link", "show", "dev", tap.name()).stdout();
        Matcher m = Pattern.compile("numqueues (\\d+) numdisabled (\\d+)").matcher(out);
        assertTrue(m.find(), "ip -d link show prints the tun queue counts: " + out);
        assertEquals(numqueues + "/" + numdisabled, m.group(1) + "/" + m.group(2), "numqueues/numdisabled");
    }
}
