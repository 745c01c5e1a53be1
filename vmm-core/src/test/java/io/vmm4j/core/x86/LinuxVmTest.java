package io.vmm4j.core.x86;

import io.vmm4j.core.boot.BzImage;
import io.vmm4j.core.boot.TestKernels;
import io.vmm4j.core.kvm.GuestFailureException;
import io.vmm4j.core.kvm.KvmIoctls;
import io.vmm4j.core.testing.GuestAssembler;
import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The whole direct-boot path on this host's KVM, with a "kernel" of our own at the 64-bit entry:
 * it checks the state boot.rst promises (selectors, RSI, the zero page, IF clear, the identity map
 * reaching the local APIC), prints the command line on the UART and resets through the i8042.
 */
class LinuxVmTest {
    private static final String CHECKING_KERNEL = """
            _start:
                mov ax, cs
                cmp ax, 0x10                      # __BOOT_CS
                jne fail
                mov ax, ds
                cmp ax, 0x18                      # __BOOT_DS
                jne fail
                mov ax, ss
                cmp ax, 0x18
                jne fail
                cmp rsi, 0x7000                   # the zero page
                jne fail
                cmp dword ptr [rsi + 0x202], 0x53726448   # its setup header: HdrS
                jne fail
                cmp byte ptr [rsi + 0x210], 0xff  # type_of_loader
                jne fail
                pushfq
                pop rax
                test rax, 0x200                   # interrupts disabled
                jnz fail
                movabs rbx, 0xfee00030            # local APIC version register, through the identity map
                mov eax, dword ptr [rbx]
                cmp al, 0x14
                jne fail
                mov ebx, dword ptr [rsi + 0x228]  # cmd_line_ptr
                mov dx, 0x3f8
            print:
                mov al, byte ptr [rbx]
                test al, al
                jz done
                out dx, al
                inc rbx
                jmp print
            done:
                mov al, 10
                out dx, al
                mov al, 0xfe                      # i8042: pulse the CPU reset line
                out 0x64, al
            spin:
                hlt
                jmp spin
            fail:
                ud2                               # no IDT yet: a triple fault
            """;

    private static BzImage kernelWith(String code) throws Exception {
        byte[] entry = GuestAssembler.assemble(code, BzImage.LOAD_ADDRESS + BzImage.ENTRY_64_OFFSET);
        ByteBuffer b = TestKernels.valid();
        int body = (TestKernels.SETUP_SECTS + 1) * 512;
        b.position(body + (int) BzImage.ENTRY_64_OFFSET);
        b.put(entry);
        return BzImage.parse("checking-kernel", TestKernels.bytes(b));
    }

    @Test
    void aKernelEntersWithTheProtocolStateAndItsResetEndsTheRunAsReboot() throws Exception {
        HostRequirements.requireKvm();
        BzImage kernel = kernelWith(CHECKING_KERNEL);
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        try (LinuxVm vm = LinuxVm.create(new LinuxVm.Config(kernel, new byte[4096], "console=ttyS0 reboot=k", 1, 64, console, null,
                new PrintStream(log, true)))) {
            LinuxVm.Outcome out = vm.run(Duration.ofSeconds(30));
            assertEquals(LinuxVm.Ending.REBOOTED, out.ending(), out + "\n" + log);
            assertEquals("console=ttyS0 reboot=k\n", console.toString());
            assertEquals(1, out.exits().size());
            assertTrue(out.totalExits().get(KvmIoctls.EXIT_IO) >= 24, out.totalExits().toString());
            assertTrue(log.toString().contains("the guest reset the CPU through the i8042"), log.toString());
        }
    }

    /** The exit counts are readable while the vCPUs run (a window of steady traffic is measured between two reads). */
    @Test
    void exitsSoFarCountWhileTheGuestRuns() throws Exception {
        HostRequirements.requireKvm();
        BzImage kernel = kernelWith("""
                _start:
                    out 0x80, al                  # one PIO exit per loop, forever
                    jmp _start
                """);
        try (LinuxVm vm = LinuxVm.create(new LinuxVm.Config(kernel, null, "", 1, 64, new ByteArrayOutputStream(), null, null))) {
            assertEquals(0, vm.exitsSoFar().total(), "nothing ran yet");
            var run = java.util.concurrent.CompletableFuture.supplyAsync(() -> vm.run(Duration.ofSeconds(30)));
            long deadline = System.nanoTime() + 20_000_000_000L;
            long first = 0;
            while (first < 1000 && System.nanoTime() < deadline) {
                Thread.sleep(10);
                first = vm.exitsSoFar().get(KvmIoctls.EXIT_IO);
            }
            assertTrue(first >= 1000, "PIO exits counted while running: " + vm.exitsSoFar());
            Thread.sleep(50);
            assertTrue(vm.exitsSoFar().get(KvmIoctls.EXIT_IO) > first, "and still counting: " + vm.exitsSoFar());
            vm.stop();
            LinuxVm.Outcome out = run.get(30, java.util.concurrent.TimeUnit.SECONDS);
            assertEquals(LinuxVm.Ending.STOPPED, out.ending());
            assertTrue(out.totalExits().get(KvmIoctls.EXIT_IO) >= vm.exitsSoFar().get(KvmIoctls.EXIT_IO), out.totalExits().toString());
        }
    }

    @Test
    void aTripleFaultEndsTheRunAsFailedWithTheRegisters() throws Exception {
        HostRequirements.requireKvm();
        BzImage kernel = kernelWith("_start:\n    mov rax, 0x1234\n    ud2\n");
        try (LinuxVm vm = LinuxVm.create(new LinuxVm.Config(kernel, null, "", 1, 64, new ByteArrayOutputStream(), null, null))) {
            LinuxVm.Outcome out = vm.run(Duration.ofSeconds(30));
            assertEquals(LinuxVm.Ending.FAILED, out.ending());
            GuestFailureException f = assertInstanceOf(GuestFailureException.class, out.failure());
            assertEquals(KvmIoctls.EXIT_SHUTDOWN, f.exitReason());
            assertTrue(f.getMessage().contains("rax=0x1234"), f.getMessage());
        }
    }

    @Test
    void unclaimedPortsAreLoggedOncePerAddress() throws Exception {
        HostRequirements.requireKvm();
        BzImage kernel = kernelWith("""
                _start:
                    mov dx, 0x2f9
                    in al, dx
                    in al, dx
                    out 0x80, al                  # the POST port is claimed: not logged
                    mov al, 0xfe
                    out 0x64, al
                spin:
                    hlt
                    jmp spin
                """);
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        try (LinuxVm vm = LinuxVm.create(new LinuxVm.Config(kernel, null, "", 1, 64, new ByteArrayOutputStream(), null,
                new PrintStream(log, true)))) {
            assertEquals(LinuxVm.Ending.REBOOTED, vm.run(Duration.ofSeconds(30)).ending());
            String text = log.toString();
            assertEquals(1, text.split("unclaimed pio read at 0x2f9", -1).length - 1, text);
            assertTrue(!text.contains("0x80 "), text);
            assertEquals(2, vm.pio().unclaimedAccesses());
        }
    }
}
