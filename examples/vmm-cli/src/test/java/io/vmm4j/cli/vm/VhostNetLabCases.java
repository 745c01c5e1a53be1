package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.vmm4j.cli.Main;
import io.vmm4j.tap.LinkCounters;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.emulated.EmulatedNetBackend;
import io.vmm4j.vhost.kernel.VhostNetBackend;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.stream.Stream;

/**
 * The vhost-net cases, run inside the lab VM (a kernel with /dev/vhost-net) in one JVM, because a
 * JVM under TCG starts slowly. {@code VhostNetLabTest} starts it through the lab harness and reads
 * {@code report.json} from the directory given as the only argument. Exit status 0 iff every case passed.
 */
public final class VhostNetLabCases {
    private static final PrintStream LOG = System.out;
    private final Map<String, Map<String, Object>> report = new LinkedHashMap<>();
    private boolean allPassed = true;

    public static void main(String[] args) throws Exception {
        Path out = Path.of(args.length > 0 ? args[0] : ".");
        VhostNetLabCases cases = new VhostNetLabCases();
        cases.run("cli run --backend vhost-net --count 5 --json", cases::cliRun);
        cases.run("data path in the kernel", cases::dataPathInTheKernel);
        cases.run("switch emulated -> vhost-net -> emulated mid-stream", cases::switchMidStream);
        cases.run("device reset during traffic, then DRIVER_OK again", cases::resetDuringTraffic);
        cases.run("set_link down stops the kernel rings, up resumes them", cases::linkDownAndUp);
        Files.writeString(out.resolve("report.json"),
                new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(cases.report));
        LOG.println("lab: " + (cases.allPassed ? "all vhost-net cases passed" : "SOME vhost-net cases FAILED"));
        System.exit(cases.allPassed ? 0 : 1);
    }

    interface Case {
        void run(Map<String, Object> facts) throws Exception;
    }

    private void run(String name, Case c) {
        Map<String, Object> facts = new LinkedHashMap<>();
        long start = System.nanoTime();
        LOG.println("lab: case: " + name);
        try {
            c.run(facts);
            facts.put("passed", true);
        } catch (Throwable t) {
            allPassed = false;
            facts.put("passed", false);
            facts.put("failure", String.valueOf(t));
            t.printStackTrace(LOG);
        }
        facts.put("seconds", (System.nanoTime() - start) / 1e9);
        LOG.println("lab: " + name + ": " + facts);
        report.put(name, facts);
    }

    private static void check(boolean condition, String what) {
        if (!condition) {
            throw new AssertionError(what);
        }
    }

    private static VmOptions options(String backend, int count, int intervalMs, int udpPort) {
        return VmOptions.builder().dataPlane(DataPlane.of(backend)).port(VmOptions.Port.TAP).tap("").count(count).intervalMs(intervalMs)
                .udpPort(udpPort).build();
    }

    /** The command a user types, in this JVM: {@code ./vmm run --backend vhost-net --count 5 --json}. */
    private void cliRun(Map<String, Object> facts) throws Exception {
        PrintStream saved = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        int code;
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            code = Main.execute("run", "--backend", "vhost-net", "--count", "5", "--json");
        } finally {
            System.setOut(saved);
        }
        JsonNode j = new ObjectMapper().readTree(captured.toString(StandardCharsets.UTF_8));
        facts.put("exit", code);
        facts.put("backend", j.get("backend").asText());
        facts.put("received", j.get("ping").get("received").asInt());
        facts.put("features", j.get("features").toString());
        check(code == 0, "exit status 0");
        check(j.get("backend").asText().equals("vhost-net"), "backend vhost-net");
        check(j.get("ping").get("received").asInt() == 5, "5/5 replies");
    }

    /** Frames move through the tap while the kernel worker works and no VMM thread touches a data ring. */
    private void dataPathInTheKernel(Map<String, Object> facts) throws Exception {
        try (ToyVm vm = new ToyVm(options("vhost-net", 0, 2, 0), quiet())) {
            vm.run();
            TapDevice tap = (TapDevice) vm.port();
            LinkCounters tapBefore = LinkCounters.read(tap.name());
            List<Integer> workers = vhostWorkers();
            check(!workers.isEmpty(), "a vhost-<tid> kernel worker exists for this process");
            long cpuBefore = cpuNanos(workers);
            int replies = vm.guest().ping(200, "10.0.2.2", 1000);
            LinkCounters tapAfter = LinkCounters.read(tap.name());
            long cpuAfter = cpuNanos(workers);
            facts.put("replies", replies);
            facts.put("tapRxPackets", tapAfter.rxPackets() - tapBefore.rxPackets());
            facts.put("tapTxPackets", tapAfter.txPackets() - tapBefore.txPackets());
            facts.put("vhostWorkers", workers.stream().map(w -> comm(w)).toList());
            facts.put("vhostCpuNanos", cpuAfter - cpuBefore);
            long ringWork = vm.net().counters().stream().mapToLong(c -> c.packets + c.kicks).sum();
            facts.put("vmmEngineCounters", ringWork);
            List<String> ioThreads = Thread.getAllStackTraces().keySet().stream().map(Thread::getName)
                    .filter(n -> n.startsWith("net-io-")).toList();
            facts.put("vmmNetIoThreads", ioThreads);
            check(replies == 200, "200/200 ping replies through vhost-net");
            check(tapAfter.rxPackets() - tapBefore.rxPackets() >= 200 && tapAfter.txPackets() - tapBefore.txPackets() >= 200, "the tap's statistics rose");
            check(cpuAfter > cpuBefore, "the vhost worker's CPU time rose");
            check(ringWork == 0, "the emulated engine's counters stay 0");
            check(ioThreads.isEmpty(), "no VMM I/O thread exists");
        }
    }

    /** A numbered UDP stream, echoed by the host, keeps every number exactly once across two data-plane switches. */
    private void switchMidStream(Map<String, Object> facts) throws Exception {
        int count = 1500;
        int port = 7777;
        try (ToyVm vm = new ToyVm(options("emulated", 0, 1, 0), quiet());
             UdpEcho echo = new UdpEcho("10.0.2.2", port, count)) {
            vm.run();
            TapDevice tap = (TapDevice) vm.port();
            long tapRxBefore = LinkCounters.read(tap.name()).rxPackets();
            long rcvbufErrorsBefore = udpCounter("RcvbufErrors");
            long inErrorsBefore = udpCounter("InErrors");
            long csumErrorsBefore = udpCounter("InCsumErrors");
            long backlogDropsBefore = softnetDropped();
            List<String> path = new ArrayList<>();
            path.add(vm.net().backend().name());
            GuestTraffic.StreamResult r = vm.guest().traffic().udpStream(count, port, 1000, seq -> {
                if (seq == count / 3) {
                    vm.net().switchBackend(new VhostNetBackend(tap)).close();
                    path.add(vm.net().backend().name());
                } else if (seq == 2 * count / 3) {
                    vm.net().switchBackend(new EmulatedNetBackend(tap)).close();
                    path.add(vm.net().backend().name());
                }
            });
            facts.put("path", path);
            facts.put("tapRxPackets", LinkCounters.read(tap.name()).rxPackets() - tapRxBefore);
            facts.put("hostUdpRcvbufErrors", udpCounter("RcvbufErrors") - rcvbufErrorsBefore);
            // where a datagram that reached the tap can still be lost on the host: a bad checksum, a full backlog
            facts.put("hostUdpInErrors", udpCounter("InErrors") - inErrorsBefore);
            facts.put("hostUdpInCsumErrors", udpCounter("InCsumErrors") - csumErrorsBefore);
            facts.put("hostBacklogDrops", softnetDropped() - backlogDropsBefore);
            facts.put("guestTxRingFull", vm.guest().nic().txRingFull());
            facts.put("switches", vm.net().switchLog());
            facts.put("sent", r.sent());
            facts.put("echoedOnce", r.echoedOnce());
            facts.put("guestDuplicates", r.duplicates());
            facts.put("guestMissing", r.missing());
            facts.put("hostMissing", echo.missing());
            facts.put("hostDuplicates", echo.duplicates());
            check(path.equals(List.of("emulated", "vhost-net", "emulated")), "switched emulated -> vhost-net -> emulated");
            check(r.sent() == count && r.missing() == 0 && r.duplicates() == 0, "the guest got every echo exactly once");
            check(echo.missing() == 0 && echo.duplicates() == 0, "the host got every datagram exactly once");
        }
    }

    /** The guest resets the NIC while the host floods it, brings it up again, and traffic resumes on rings starting at 0. */
    @SuppressWarnings("try") // a resource closed early on purpose, to end the thread that serves it
    private void resetDuringTraffic(Map<String, Object> facts) throws Exception {
        try (ToyVm vm = new ToyVm(options("vhost-net", 0, 20, 0), quiet());
             DatagramSocket flood = new DatagramSocket(new InetSocketAddress(InetAddress.getByName("10.0.2.2"), 0))) {
            vm.run();
            check(vm.guest().ping(3, "10.0.2.2", 56) == 3, "pings before the reset");
            Thread flooder = Thread.ofPlatform().daemon().start(() -> {
                byte[] b = new byte[100];
                try {
                    InetSocketAddress guest = new InetSocketAddress(InetAddress.getByName("10.0.2.15"), 9);
                    while (!flood.isClosed()) {
                        flood.send(new DatagramPacket(b, b.length, guest));
                        Thread.sleep(1);
                    }
                } catch (IOException | InterruptedException e) {
                    // closed: the case is over
                }
            });
            Thread.sleep(300);
            vm.guest().reloadNetDriver();
            int rxUsedAfterReload = vm.guest().nic().driver().rxUsedIndex(0);
            int replies = vm.guest().ping(5, "10.0.2.2", 56);
            flood.close();
            flooder.join(2000);
            facts.put("rxUsedIndexRightAfterDriverOk", rxUsedAfterReload);
            facts.put("repliesAfterReset", replies);
            facts.put("deviceStatus", vm.summary().deviceStatus());
            check(rxUsedAfterReload < 64, "the new receive ring started from index 0, not where the old one was");
            check(replies == 5, "5/5 pings after DRIVER_OK again");
            check(!vm.summary().deviceStatus().contains("NEEDS_RESET"), "no DEVICE_NEEDS_RESET");
        }
    }

    /** Frames the host's network stack dropped for a full per-CPU backlog (second column of /proc/net/softnet_stat, hex). */
    private static long softnetDropped() throws IOException {
        long n = 0;
        for (String l : Files.readAllLines(Path.of("/proc/net/softnet_stat"))) {
            n += Long.parseLong(l.trim().split("\\s+")[1], 16);
        }
        return n;
    }

    /** A counter of the host's UDP stack from /proc/net/snmp, e.g. RcvbufErrors (datagrams dropped for a full socket buffer). */
    private static long udpCounter(String name) throws IOException {
        List<String> udp = Files.readAllLines(Path.of("/proc/net/snmp")).stream().filter(l -> l.startsWith("Udp:")).toList();
        List<String> names = List.of(udp.get(0).split("\\s+"));
        return Long.parseLong(udp.get(1).split("\\s+")[names.indexOf(name)]);
    }

    /** set_link off: the kernel worker lets go of the rings, the VMM drops both ways (counted); on: the kernel resumes where they stood. */
    private void linkDownAndUp(Map<String, Object> facts) throws Exception {
        try (ToyVm vm = new ToyVm(options("vhost-net", 0, 2, 0), quiet())) {
            vm.run();
            int before = vm.guest().ping(3, "10.0.2.2", 1000);
            vm.net().setLinkUp(false); // what QMP set_link off does
            int down = vm.guest().ping(3, "10.0.2.2", 500);
            long dropped = vm.net().counters().stream().mapToLong(c -> c.dropsLinkDown).sum();
            vm.net().setLinkUp(true);
            int after = vm.guest().ping(3, "10.0.2.2", 1000);
            facts.put("repliesBefore", before);
            facts.put("repliesWhileDown", down);
            facts.put("dropsLinkDown", dropped);
            facts.put("repliesAfter", after);
            check(before == 3, "link up: 3/3 through vhost-net");
            check(down == 0, "link down: nothing passes the kernel worker");
            check(dropped >= 3, "the guest's echo requests were consumed and dropped in the VMM, counted");
            check(after == 3, "link up again: 3/3, the kernel resumed the rings where they stood");
            check(vm.netTransport().lastError() == null, "no ring error across both hand-overs: " + vm.netTransport().lastError());
        }
    }

    private static PrintStream quiet() {
        return new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    }

    /**
     * Kernel threads named vhost-N: vhost names its worker after the thread that set the owner
     * (here a vCPU thread that may have ended), and the lab VM runs nothing but this JVM.
     */
    private static List<Integer> vhostWorkers() throws IOException {
        List<Integer> found = new ArrayList<>();
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            for (Path p : procs.toList()) {
                String name = p.getFileName().toString();
                if (name.chars().allMatch(Character::isDigit) && comm(Integer.parseInt(name)).startsWith("vhost-")) {
                    found.add(Integer.parseInt(name));
                }
            }
        }
        return found;
    }

    private static String comm(int pid) {
        try {
            return Files.readString(Path.of("/proc", Integer.toString(pid), "comm")).strip();
        } catch (IOException e) {
            return "";
        }
    }

    /** Nanoseconds on CPU from /proc/PID/schedstat (finer than the tick-based utime/stime). */
    private static long cpuNanos(List<Integer> pids) {
        long total = 0;
        for (int pid : pids) {
            try {
                total += Long.parseLong(Files.readString(Path.of("/proc", Integer.toString(pid), "schedstat")).split(" ")[0]);
            } catch (IOException | NumberFormatException e) {
                // the worker went away
            }
        }
        return total;
    }

    /** A host-side UDP echo server that also counts which numbered datagrams it saw. */
    static final class UdpEcho implements AutoCloseable {
        private final DatagramSocket socket;
        private final AtomicIntegerArray seen;
        private final Thread thread;

        UdpEcho(String address, int port, int count) throws IOException {
            socket = new DatagramSocket(new InetSocketAddress(InetAddress.getByName(address), port));
            socket.setSoTimeout(100);
            // a JVM under TCG can pause for longer than a default socket buffer lasts at 1000 datagrams/s
            socket.setReceiveBufferSize(8 << 20);
            seen = new AtomicIntegerArray(count);
            thread = Thread.ofPlatform().daemon().name("udp-echo").start(() -> {
                byte[] buf = new byte[2048];
                while (!socket.isClosed()) {
                    try {
                        DatagramPacket p = new DatagramPacket(buf, buf.length);
                        socket.receive(p);
                        if (p.getLength() >= 4) {
                            int seq = ((buf[0] & 0xFF) << 24) | ((buf[1] & 0xFF) << 16) | ((buf[2] & 0xFF) << 8) | (buf[3] & 0xFF);
                            if (seq >= 0 && seq < seen.length()) {
                                seen.incrementAndGet(seq);
                            }
                        }
                        socket.send(new DatagramPacket(buf, p.getLength(), p.getSocketAddress()));
                    } catch (SocketTimeoutException e) {
                        // look at the closed flag again
                    } catch (IOException e) {
                        return;
                    }
                }
            });
        }

        int missing() {
            int n = 0;
            for (int i = 0; i < seen.length(); i++) {
                n += seen.get(i) == 0 ? 1 : 0;
            }
            return n;
        }

        int duplicates() {
            int n = 0;
            for (int i = 0; i < seen.length(); i++) {
                n += Math.max(0, seen.get(i) - 1);
            }
            return n;
        }

        @Override
        public void close() {
            socket.close();
            try {
                thread.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
