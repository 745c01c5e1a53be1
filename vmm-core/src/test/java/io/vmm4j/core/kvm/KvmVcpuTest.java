package io.vmm4j.core.kvm;

import io.vmm4j.core.bus.BusDevice;
import io.vmm4j.core.testing.KvmTestVm;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A real vCPU in 64-bit mode: port and MMIO exits reach the buses, failures carry registers, a halted vCPU can be stopped. */
class KvmVcpuTest {
    /** An MMIO device that logs accesses and answers reads with a fixed pattern. */
    private static final class MmioLog implements BusDevice {
        final List<String> log = new ArrayList<>();

        @Override
        public synchronized long read(long offset, int size) {
            log.add("read " + offset + "/" + size);
            return 0x1122_3344_5566_7788L;
        }

        @Override
        public synchronized void write(long offset, int size, long value) {
            log.add(String.format("write %d/%d 0x%x", offset, size, value));
        }
    }

    @Test
    void portAndMmioExitsReachTheBusesInLongMode() throws Exception {
        String guest = """
                _start:
                    mov dx, 0x3f8
                    mov al, 'K'
                    out dx, al                    # 1 io exit: OUT byte
                    mov dx, 0x510
                    in eax, dx                    # 1 io exit: IN dword, answered by the port device
                    movabs rbx, 0xd0000000
                    mov dword ptr [rbx], eax      # 1 mmio exit: 4-byte write of what IN returned
                    mov word ptr [rbx + 4], 0xbeef  # 1 mmio exit: 2-byte write
                    mov rcx, qword ptr [rbx + 8]  # 1 mmio exit: 8-byte read
                    mov qword ptr [0x90000], rcx  # RAM: no exit
                    movabs rax, 0x123456789abcdef0  # a 64-bit immediate only decodes so in long mode
                    mov qword ptr [0x90008], rax
                    lea rsi, [rip + text]
                    mov ecx, 5
                    mov dx, 0x3f8
                    rep outsb                     # string output: KVM exits once per element, 5 io exits
                    hlt                           # no irqchip: the run ends
                text: .ascii "hello"
                """;
        try (KvmTestVm t = new KvmTestVm(guest, false)) {
            StringBuilder serial = new StringBuilder();
            t.pio.register(0x3f8, 1, new KvmTestVm.RecordingPort(0, v -> serial.append((char) v)));
            t.pio.register(0x510, 4, new KvmTestVm.RecordingPort(0xCAFE_BABEL, v -> { }));
            MmioLog device = new MmioLog();
            t.mmio.register(0xD000_0000L, 0x1000, device);

            assertEquals(KvmVcpu.StopReason.HALTED, t.vcpu.run());

            assertEquals("Khello", serial.toString());
            assertEquals(List.of("write 0/4 0xcafebabe", "write 4/2 0xbeef", "read 8/8"), device.log);
            assertEquals(0x1122_3344_5566_7788L, t.memory.readLong(KvmTestVm.DATA), "the MMIO read's value reached the guest");
            assertEquals(0x1234_5678_9ABC_DEF0L, t.memory.readLong(KvmTestVm.DATA + 8));
            VmExitCounts exits = t.vcpu.exitCounts();
            assertEquals(7, exits.get(KvmIoctls.EXIT_IO), exits.toString());
            assertEquals(3, exits.get(KvmIoctls.EXIT_MMIO), exits.toString());
            assertEquals(1, exits.get(KvmIoctls.EXIT_HLT), exits.toString());
            assertEquals(11, exits.total());

            KvmSregs s = t.vcpu.getSregs();
            assertTrue((s.efer & LongMode.EFER_LMA) != 0, "EFER.LMA: IA-32e mode is active");
            assertTrue(s.cs.l, "a 64-bit code segment");
            assertEquals(LongMode.PML4, s.cr3);
        }
    }

    @Test
    void theIdentityMapReachesTheTopOfTheLowFourGigabytes() throws Exception {
        // 0xFEE00000 (the local APIC page) without an irqchip is plain unclaimed MMIO: a read exits to the bus
        String guest = """
                _start:
                    mov eax, 0xfee00030           # zero-extended: a 32-bit displacement would sign-extend
                    mov eax, dword ptr [rax]
                    mov dword ptr [0x90000], eax
                    hlt
                """;
        try (KvmTestVm t = new KvmTestVm(guest, false)) {
            MmioLog apicPage = new MmioLog();
            t.mmio.register(0xFEE0_0000L, 0x1000, apicPage);
            assertEquals(KvmVcpu.StopReason.HALTED, t.vcpu.run());
            assertEquals(List.of("read 48/4"), apicPage.log);
            assertEquals(0x5566_7788, t.memory.readInt(KvmTestVm.DATA));
        }
    }

    @Test
    void aTripleFaultEndsTheRunWithTheGuestsRegisters() throws Exception {
        String guest = """
                _start:
                    mov rax, 0x5a5a
                    ud2                           # #UD with no IDT: #DF, then a triple fault
                """;
        try (KvmTestVm t = new KvmTestVm(guest, false)) {
            GuestFailureException e = assertThrows(GuestFailureException.class, t.vcpu::run);
            assertEquals(KvmIoctls.EXIT_SHUTDOWN, e.exitReason());
            assertTrue(e.getMessage().contains("triple fault"), e.getMessage());
            assertTrue(e.getMessage().contains("rax=0x5a5a"), e.getMessage());
            assertTrue(e.getMessage().contains("rip=0x"), e.getMessage());
            assertTrue(e.getMessage().contains("cr3=0x1000"), e.getMessage());
            assertEquals(1, t.vcpu.exitCounts().get(KvmIoctls.EXIT_SHUTDOWN));
        }
    }

    @Test
    void aDeviceThatThrowsEndsTheRunNamingTheAccess() throws Exception {
        String guest = """
                _start:
                    mov dx, 0x511
                    mov al, 1
                    out dx, al
                    hlt
                """;
        try (KvmTestVm t = new KvmTestVm(guest, false)) {
            t.pio.register(0x511, 1, new KvmTestVm.RecordingPort(0, v -> {
                throw new IllegalStateException("device on fire");
            }));
            GuestFailureException e = assertThrows(GuestFailureException.class, t.vcpu::run);
            assertTrue(e.getMessage().contains("OUT of 1 byte(s) at port 0x511"), e.getMessage());
            assertTrue(e.getMessage().contains("device on fire"), e.getMessage());
            assertTrue(e.getMessage().contains("rdx=0x511"), e.getMessage());
        }
    }

    @Test
    void requestStopKicksAVcpuHaltedInTheKernel() throws Exception {
        // with the in-kernel irqchip HLT does not exit: the vCPU sleeps in KVM_RUN until something wakes it
        String guest = """
                _start:
                    mov dx, 0x510
                    out dx, al
                1:  cli
                    hlt
                    jmp 1b
                """;
        try (KvmTestVm t = new KvmTestVm(guest, true)) {
            CompletableFuture<Void> halted = new CompletableFuture<>();
            t.pio.register(0x510, 1, new KvmTestVm.RecordingPort(0, v -> halted.complete(null)));
            CompletableFuture<KvmVcpu.StopReason> run = t.vcpu.start("vcpu-test");
            halted.get(5, TimeUnit.SECONDS);
            Thread.sleep(100);
            assertTrue(!run.isDone(), "the guest sleeps in HLT inside the kernel");
            t.vcpu.requestStop();
            assertEquals(KvmVcpu.StopReason.STOPPED, run.get(5, TimeUnit.SECONDS));
            assertTrue(t.vcpu.exitCounts().get(KvmIoctls.EXIT_INTR) >= 1, t.vcpu.exitCounts().toString());
            assertEquals(0, t.vcpu.exitCounts().get(KvmIoctls.EXIT_HLT), "HLT stayed in the kernel");
        }
    }
}
