package io.vmm4j.examples.linux;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The harness's refusals: one clear line and status 2, before any VM exists. */
class LinuxBootTest {
    private final ByteArrayOutputStream log = new ByteArrayOutputStream();

    private int run(String... args) {
        return LinuxBoot.run(args, new ByteArrayOutputStream(), new PrintStream(log, true));
    }

    @Test
    void aMissingKernelIsOneClearLine() {
        assertEquals(2, run("--kernel", "/nonexistent/vmlinuz"));
        assertEquals("vmm4j: /nonexistent/vmlinuz: no such kernel file (give a bzImage, e.g. /boot/vmlinuz-*)\n", log.toString());
    }

    @Test
    void aFileThatIsNotABzImageIsOneClearLine() throws Exception {
        Path notAKernel = Files.createTempFile("not-a-kernel", ".img");
        Files.write(notAKernel, new byte[4096]);
        try {
            assertEquals(2, run("--kernel", notAKernel.toString()));
            String[] lines = log.toString().split("\n");
            assertEquals(1, lines.length, log.toString());
            assertTrue(lines[0].startsWith("vmm4j: " + notAKernel + ": not a bzImage: no HdrS magic at 0x202"), lines[0]);
        } finally {
            Files.delete(notAKernel);
        }
    }

    @Test
    void usageErrorsNameTheOption() {
        assertEquals(2, run("--cpus", "zero", "--kernel", "k"));
        assertTrue(log.toString().startsWith("vmm4j: --cpus wants a positive whole number, not 'zero'\nusage: "), log.toString());
        log.reset();
        assertEquals(2, run("--append"));
        assertTrue(log.toString().startsWith("vmm4j: --append wants a value"), log.toString());
        log.reset();
        assertEquals(2, run());
        assertTrue(log.toString().startsWith("vmm4j: --kernel BZIMAGE is required"), log.toString());
    }

    @Test
    void networkAndWorkloadOptionsAreCheckedBeforeAnyVmExists() {
        assertEquals(2, run("--kernel", "k", "--backend", "vhost-net"));
        assertTrue(log.toString().startsWith("vmm4j: --backend vhost-net moves frames between the rings and a tap: add --port tap\n"),
                log.toString());
        log.reset();
        assertEquals(2, run("--kernel", "k", "--backend", "dpdk"));
        assertTrue(log.toString().startsWith("vmm4j: --backend must be emulated or vhost-net, not 'dpdk'\n"), log.toString());
        log.reset();
        assertEquals(2, run("--kernel", "k", "--port", "tap", "--host-ip", "10.0.2.2"));
        assertTrue(log.toString().startsWith("vmm4j: --host-ip wants an IPv4 address with a prefix length, e.g. 10.0.2.2/24, not '10.0.2.2'"),
                log.toString());
        log.reset();
        assertEquals(2, run("--kernel", "k", "--workload", "ping serve"));
        assertTrue(log.toString().startsWith("vmm4j: --workload goes on the kernel command line as one word"), log.toString());
        log.reset();
        assertEquals(2, run("--kernel", "k", "--param", "Count=5"));
        assertTrue(log.toString().startsWith("vmm4j: --param wants NAME=VALUE with a lower-case NAME"), log.toString());
        log.reset();
        assertEquals(2, run("--kernel", "k", "--host-ping", "5"));
        assertTrue(log.toString().startsWith("vmm4j: --host-ping and --host-flood reach the guest through a tap: add --port tap"),
                log.toString());
        log.reset();
        assertEquals(2, run("--kernel", "k", "--console-input", "a\nb"));
        assertTrue(log.toString().startsWith("vmm4j: --console-input takes one line of printable text (Enter is added), not 'a?b'"),
                log.toString());
    }

    @Test
    void workloadsAndTheTapsAddressGoOnTheKernelCommandLine() {
        LinuxBoot.Options o = LinuxBoot.parse(new String[] {"--kernel", "k", "--port", "tap", "--host-ip", "10.9.0.1/24",
                "--workload", "ping,serve", "--param", "ip=10.9.0.7/24", "--param", "serve_count=3", "--host-ping", "3"});
        assertEquals(LinuxBoot.DEFAULT_APPEND + " vmm4j.workload=ping,serve vmm4j.host=10.9.0.1 vmm4j.ip=10.9.0.7/24 vmm4j.serve_count=3",
                o.commandLine());
        assertEquals("10.9.0.7", o.guestAddress(), "the host pings the address the guest was given");
        assertTrue(o.net(), "--port tap implies the NIC");
        assertEquals(VirtioNetSlot.Port.TAP, o.netSetup().port());
        LinuxBoot.Options plain = LinuxBoot.parse(new String[] {"--kernel", "k"});
        assertEquals(LinuxBoot.DEFAULT_APPEND, plain.commandLine(), "no workload, nothing added");
        assertEquals("10.0.2.15", plain.guestAddress());
    }

    @Test
    void hostPingOutputIsReadFromIputilsAndBusybox() {
        HostPing iputils = HostPing.parse("10.0.2.15", """
                PING 10.0.2.15 (10.0.2.15) 56(84) bytes of data.
                64 bytes from 10.0.2.15: icmp_seq=1 ttl=64 time=3.41 ms
                64 bytes from 10.0.2.15: icmp_seq=2 ttl=64 time=1.07 ms

                --- 10.0.2.15 ping statistics ---
                3 packets transmitted, 2 received, 33.3333% packet loss, time 404ms
                rtt min/avg/max/mdev = 1.070/2.240/3.410/1.170 ms
                """, 1);
        assertEquals(3, iputils.sent());
        assertEquals(2, iputils.received());
        assertEquals(java.util.List.of(3.41, 1.07), iputils.rttMs());
        assertEquals("3 packets transmitted, 2 received, 33.3333% packet loss, time 404ms", iputils.summary());
        assertEquals("{\"command\":\"ping\",\"target\":\"10.0.2.15\",\"sent\":3,\"received\":2,\"rtt_ms\":[3.410,1.070],\"exit\":1}",
                iputils.json());
        HostPing busybox = HostPing.parse("10.0.2.2", "64 bytes from 10.0.2.2: seq=0 ttl=64 time=0.512 ms\n"
                + "1 packets transmitted, 1 packets received, 0% packet loss\n", 0);
        assertEquals(1, busybox.received());
        HostPing nothing = HostPing.parse("10.0.2.15", "ping: connect: Network is unreachable\n", 2);
        assertEquals(0, nothing.sent());
        assertEquals("no statistics in ping's output: ping: connect: Network is unreachable", nothing.summary());
    }

    /**
     * A minimal bzImage whose 64-bit entry prints {@code text} on COM1 (rep outsb) and resets through
     * the i8042: hand-assembled, so the test needs nothing but KVM.
     */
    private static Path kernelPrinting(String text) throws Exception {
        byte[] msg = text.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        java.io.ByteArrayOutputStream code = new java.io.ByteArrayOutputStream();
        code.writeBytes(new byte[] {0x66, (byte) 0xBA, (byte) 0xF8, 0x03});          // mov dx, 0x3f8
        code.writeBytes(new byte[] {0x48, (byte) 0x8D, 0x35, 14, 0, 0, 0});         // lea rsi, [rip + 14] (the text after the code)
        code.writeBytes(new byte[] {(byte) 0xB9, (byte) msg.length, 0, 0, 0});      // mov ecx, length
        code.writeBytes(new byte[] {(byte) 0xF3, 0x6E});                            // rep outsb
        code.writeBytes(new byte[] {(byte) 0xB0, (byte) 0xFE, (byte) 0xE6, 0x64});  // mov al, 0xfe; out 0x64, al
        code.writeBytes(new byte[] {(byte) 0xF4, (byte) 0xEB, (byte) 0xFD});        // hlt; jmp hlt
        code.writeBytes(msg);
        int setupSects = 4;
        int body = (setupSects + 1) * 512;
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(body + 0x1000).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.put(0x1F1, (byte) setupSects);
        b.putInt(0x1F4, 0x1000 / 16);
        b.putShort(0x1FE, (short) 0xAA55);
        b.put(0x200, (byte) 0xEB);
        b.put(0x201, (byte) 0x6A);
        b.putInt(0x202, 0x53726448);      // HdrS
        b.putShort(0x206, (short) 0x020F); // protocol 2.15
        b.put(0x211, (byte) 0x01);         // LOADED_HIGH
        b.putInt(0x22C, 0x7FFF_FFFF);
        b.putInt(0x230, 0x20_0000);
        b.put(0x234, (byte) 1);
        b.putShort(0x236, (short) 0x01);   // XLF_KERNEL_64
        b.putInt(0x238, 2047);
        b.putInt(0x260, 1 << 20);
        b.put(body + 0x200, code.toByteArray());
        Path file = Files.createTempFile("printing-kernel", ".bz");
        Files.write(file, b.array());
        return file;
    }

    @Test
    void aGuestRebootIsStatusZeroAndAPanicStatusOneWithTheLastLines() throws Exception {
        io.vmm4j.core.testing.HostRequirements.requireKvm();
        Path ok = kernelPrinting("reboot: Restarting system\n");
        Path panic = kernelPrinting("Kernel panic - not syncing: VFS: Unable to mount root fs\n");
        try {
            ByteArrayOutputStream console = new ByteArrayOutputStream();
            assertEquals(0, LinuxBoot.run(new String[] {"--kernel", ok.toString(), "--memory", "64", "--timeout", "30"}, console,
                    new PrintStream(log, true)), log.toString());
            assertEquals("reboot: Restarting system\n", console.toString());
            assertTrue(log.toString().contains("vmm4j: the guest rebooted\n"), log.toString());
            log.reset();
            assertEquals(1, LinuxBoot.run(new String[] {"--kernel", panic.toString(), "--memory", "64", "--timeout", "30"},
                    new ByteArrayOutputStream(), new PrintStream(log, true)), log.toString());
            assertTrue(log.toString().contains("vmm4j: the guest panicked (Kernel panic - not syncing: VFS: Unable to mount root fs)"),
                    log.toString());
            assertTrue(log.toString().contains("vmm4j: last console lines:\n  | Kernel panic - not syncing"), log.toString());
        } finally {
            Files.delete(ok);
            Files.delete(panic);
        }
    }
}
