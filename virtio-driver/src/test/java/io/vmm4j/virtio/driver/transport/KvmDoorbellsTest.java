package io.vmm4j.virtio.driver.transport;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.irq.IntxLine;
import io.vmm4j.core.kvm.KvmIoctls;
import io.vmm4j.core.kvm.KvmVcpu;
import io.vmm4j.core.kvm.VmExitCounts;
import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.testing.GuestAssembler;
import io.vmm4j.core.testing.KvmTestVm;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.driver.ConfigAccess;
import io.vmm4j.virtio.driver.GuestLocalApic;
import io.vmm4j.virtio.driver.PciFirmware;
import io.vmm4j.virtio.driver.VirtioPciDriver;
import io.vmm4j.virtio.pci.MsixTable;
import io.vmm4j.virtio.pci.PciHost;
import io.vmm4j.virtio.pci.VirtioPciTransport;
import io.vmm4j.virtio.pci.kvm.KvmDoorbells;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The transport's doorbells under a real KVM guest: call eventfds become guest interrupts through
 * irqfds, kicks of the guest are ioeventfds that follow BAR 0, and a masked vector holds its
 * interrupt pending until unmasked. The driver side (configuration, MSI-X table) is the Java test
 * driver on the test thread; the vCPU runs a tiny guest that counts interrupts and kicks on request.
 */
class KvmDoorbellsTest {
    private static final long COUNTERS = KvmTestVm.DATA;          // 8 bytes per vector 0x50..0x53
    private static final long KICK_ADDRESS = KvmTestVm.DATA + 0x100;
    private static final long KICK_QUEUE = KvmTestVm.DATA + 0x108;
    private static final long KICKS_DONE = KvmTestVm.DATA + 0x110;
    private static final int FIRST_VECTOR = 0x50;
    private static final int WAKE_VECTOR = 0x53;

    private static final String GUEST = """
            _start:
                lea rdi, [rip + idt]
                mov ecx, 0x50
                lea rax, [rip + vector50]
                call set_gate
                mov ecx, 0x51
                lea rax, [rip + vector51]
                call set_gate
                mov ecx, 0x52
                lea rax, [rip + vector52]
                call set_gate
                mov ecx, 0x53
                lea rax, [rip + vector53]
                call set_gate
                lidt [rip + idtr]
                mov eax, 0xfee000f0           # local APIC SVR: software enable, spurious vector 0xff
                mov dword ptr [rax], 0x1ff
                mov dx, 0x510
                out dx, al                    # ready
            idle:
                sti
                hlt
                cli
                mov rax, qword ptr [0x90100]  # a notify address to write, 0 for none
                test rax, rax
                jz idle
                mov qword ptr [0x90100], 0
                mov cx, word ptr [0x90108]
                mov word ptr [rax], cx        # the kick: 16-bit queue index to the notify address
                lock inc qword ptr [0x90110]
                jmp idle

            vector50:
                lock inc qword ptr [0x90000]
                jmp eoi
            vector51:
                lock inc qword ptr [0x90008]
                jmp eoi
            vector52:
                lock inc qword ptr [0x90010]
                jmp eoi
            vector53:
                lock inc qword ptr [0x90018]
            eoi:
                push rax
                mov eax, 0xfee000b0
                mov dword ptr [rax], 0
                pop rax
                iretq

            .balign 16
            idtr: .word 4095
                  .quad idt
            .balign 16
            idt:  .space 4096
            """ + GuestAssembler.SET_GATE;

    private KvmTestVm t;
    private EventLoop watchLoop;
    private VirtioPciTransport transport;
    private KvmDoorbells doorbells;
    private VirtioPciDriver driver;
    private PciFirmware.Device pci;
    private ConfigAccess cfg;
    private CompletableFuture<KvmVcpu.StopReason> run;

    private void boot(VirtioPciTransport.NotifyMode mode) throws Exception {
        t = new KvmTestVm(GUEST, true);
        watchLoop = new EventLoop("msix-watch");
        PciHost host = new PciHost(t.pio, t.mmio, TransportFixture.ECAM);
        transport = new VirtioPciTransport(new RecordingDevice(), t.memory, t.mmio, t.vm::signalMsi, IntxLine.NONE, null, mode, 4);
        host.attach(3, transport);
        doorbells = new KvmDoorbells(t.vm, transport, watchLoop);
        CompletableFuture<Void> ready = new CompletableFuture<>();
        t.pio.register(0x510, 1, new KvmTestVm.RecordingPort(0, v -> ready.complete(null)));
        run = t.vcpu.start("vcpu0");
        ready.get(5, TimeUnit.SECONDS);

        cfg = ConfigAccess.ports(t.pio);
        pci = PciFirmware.enumerateAndAssign(cfg, TransportFixture.PCI_WINDOW, 0x1000_0000L).stream()
                .filter(d -> d.slot() == 3).findFirst().orElseThrow();
        driver = new VirtioPciDriver(cfg, t.mmio, t.memory, new GuestAllocator(0x10_0000, KvmTestVm.RAM_SIZE - 0x10_0000), pci);
        driver.negotiate(VirtioFeatures.bit(VirtioFeatures.VERSION_1));
        driver.enableMsix(4, FIRST_VECTOR);
        driver.setConfigVector(0);
        driver.setupQueue(0, 0, 1);
        driver.setupQueue(1, 0, 2);
        driver.driverOk();
    }

    @AfterEach
    void shutDown() throws Exception {
        if (t == null) {
            return;
        }
        t.vcpu.requestStop();
        if (run != null) {
            run.get(5, TimeUnit.SECONDS);
        }
        doorbells.close();
        watchLoop.close();
        t.close();
    }

    private long interrupts(int vector) {
        return t.memory.readLong(COUNTERS + 8L * (vector - FIRST_VECTOR));
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(1);
        }
    }

    /** Has the guest write {@code queue} to {@code notifyAddress}, woken by an MSI; returns once it did. */
    private void guestKicks(long notifyAddress, int queue) throws InterruptedException {
        long before = t.memory.readLong(KICKS_DONE);
        t.memory.writeShort(KICK_QUEUE, (short) queue);
        t.memory.writeLong(KICK_ADDRESS, notifyAddress);
        assertTrue(t.vm.signalMsi(GuestLocalApic.MSI_ADDRESS, WAKE_VECTOR));
        await("the guest kicked", () -> t.memory.readLong(KICKS_DONE) == before + 1);
    }

    private long pendingBits() {
        return t.mmio.read(pci.barAddress()[VirtioPciTransport.MSIX_BAR] + VirtioPciTransport.MSIX_PBA_OFFSET, 8);
    }

    @Test
    void callsAreIrqfdInterruptsAndKicksAreIoeventfdsWithNoExitToTheVmm() throws Exception {
        boot(VirtioPciTransport.NotifyMode.IOEVENTFD);
        assertTrue(doorbells.irqfdAttached(0) && doorbells.irqfdAttached(1), "both queues' vectors are unmasked");
        assertTrue(doorbells.kickRegistered(0) && doorbells.kickRegistered(1));
        VmExitCounts before = t.vcpu.exitCounts();

        transport.callFd(0).signal();
        await("vector 0x51 fired", () -> interrupts(0x51) == 1);
        transport.callFd(1).signal();
        await("vector 0x52 fired", () -> interrupts(0x52) == 1);
        assertEquals(0, t.vcpu.exitCounts().minus(before).total(), "irqfd delivery needs no VMM exit");

        guestKicks(driver.notifyAddress(0), 0);
        guestKicks(driver.notifyAddress(1), 1);
        assertEquals(1, transport.kickFd(0).drain(), "queue 0's kick eventfd, signalled by KVM");
        assertEquals(1, transport.kickFd(1).drain());
        VmExitCounts window = t.vcpu.exitCounts().minus(before);
        assertEquals(0, window.get(KvmIoctls.EXIT_MMIO), "kicks never exit: " + window);
        assertEquals(0, transport.notifyCount(0), "the transport never saw the notify write");
        assertEquals(0, interrupts(0x50), "no config interrupt");
    }

    @Test
    void theNotifyIoeventfdsFollowBarZeroWhenTheDriverMovesIt() throws Exception {
        boot(VirtioPciTransport.NotifyMode.IOEVENTFD);
        long oldNotify = driver.notifyAddress(0);
        long newBar = 0xC020_0000L;
        cfg.write(pci.slot(), 0x10, 4, (int) newBar); // BAR 0 low dword (64-bit BAR: high dword stays 0)
        assertEquals(newBar, transport.configSpace().barAddress(VirtioPciTransport.VIRTIO_BAR));
        long newNotify = newBar + VirtioPciTransport.NOTIFY_OFFSET;
        VmExitCounts before = t.vcpu.exitCounts();

        guestKicks(newNotify, 0);
        assertEquals(1, transport.kickFd(0).drain(), "the kick at the new address is the ioeventfd");
        assertEquals(0, t.vcpu.exitCounts().minus(before).get(KvmIoctls.EXIT_MMIO));

        long unclaimed = t.mmio.unclaimedAccesses();
        guestKicks(oldNotify, 0);
        assertEquals(0, transport.kickFd(0).drain(), "the old address is no doorbell any more");
        assertEquals(1, t.vcpu.exitCounts().minus(before).get(KvmIoctls.EXIT_MMIO), "it exits, to nobody");
        assertEquals(unclaimed + 1, t.mmio.unclaimedAccesses());
    }

    @Test
    void aMaskedVectorHoldsTheInterruptPendingAndDeliversItOnceOnUnmask() throws Exception {
        boot(VirtioPciTransport.NotifyMode.IOEVENTFD);
        driver.maskVector(1, true);
        assertFalse(doorbells.irqfdAttached(0), "masking detaches the irqfd");

        transport.callFd(0).signal();
        transport.callFd(0).signal();
        await("the pending bit of vector 1 is set", () -> pendingBits() == 1L << 1);
        Thread.sleep(100);
        assertEquals(0, interrupts(0x51), "masked: the guest got nothing");

        driver.maskVector(1, false);
        await("the pending interrupt arrived", () -> interrupts(0x51) == 1);
        Thread.sleep(100);
        assertEquals(1, interrupts(0x51), "delivered exactly once, though signalled twice");
        assertEquals(0, pendingBits(), "the pending bit is clear again");
        assertTrue(doorbells.irqfdAttached(0), "unmasking re-attaches the irqfd");

        VmExitCounts before = t.vcpu.exitCounts();
        transport.callFd(0).signal();
        await("the next call goes through the irqfd", () -> interrupts(0x51) == 2);
        assertEquals(0, t.vcpu.exitCounts().minus(before).total());
    }

    @Test
    void aMaskedFunctionAlsoHoldsItsInterruptsPending() throws Exception {
        boot(VirtioPciTransport.NotifyMode.IOEVENTFD);
        int control = MsixCapability.find(cfg, pci.slot());
        int value = cfg.read(pci.slot(), control + 2, 2);
        cfg.write(pci.slot(), control + 2, 2, value | (1 << 14)); // function mask
        assertFalse(doorbells.irqfdAttached(1));
        transport.callFd(1).signal();
        await("vector 2 pending", () -> pendingBits() == 1L << 2);
        Thread.sleep(50);
        assertEquals(0, interrupts(0x52));
        cfg.write(pci.slot(), control + 2, 2, value & ~(1 << 14));
        await("delivered on function unmask", () -> interrupts(0x52) == 1);
        Thread.sleep(50);
        assertEquals(1, interrupts(0x52));
        assertTrue(doorbells.irqfdAttached(1));
    }

    @Test
    void synchronousNotifyRegistersNoIoeventfdSoEveryKickExits() throws Exception {
        boot(VirtioPciTransport.NotifyMode.SYNCHRONOUS);
        assertFalse(doorbells.kickRegistered(0), "emulated-sync: kicks go to the vCPU thread");
        VmExitCounts before = t.vcpu.exitCounts();
        guestKicks(driver.notifyAddress(0), 0);
        guestKicks(driver.notifyAddress(0), 0);
        assertEquals(2, t.vcpu.exitCounts().minus(before).get(KvmIoctls.EXIT_MMIO), "one exit per kick");
        assertEquals(2, transport.notifyCount(0), "the transport saw both notify writes");
        assertEquals(0, transport.kickFd(0).drain());
    }

    /** Finds the MSI-X capability in a function's list. */
    private static final class MsixCapability {
        static int find(ConfigAccess cfg, int slot) {
            int at = cfg.read(slot, 0x34, 1);
            while (at != 0) {
                if (cfg.read(slot, at, 1) == MsixTable.CAPABILITY_ID) {
                    return at;
                }
                at = cfg.read(slot, at + 1, 1);
            }
            throw new AssertionError("no MSI-X capability");
        }
    }
}
