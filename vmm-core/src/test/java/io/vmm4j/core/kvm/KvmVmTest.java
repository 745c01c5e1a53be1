package io.vmm4j.core.kvm;

import io.vmm4j.core.bus.BusDevice;
import io.vmm4j.core.event.EventFd;
import io.vmm4j.core.testing.GuestAssembler;
import io.vmm4j.core.testing.KvmTestVm;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** ioeventfds absorb guest writes in the kernel; irqfds and KVM_SIGNAL_MSI reach a real guest's IDT handlers. */
class KvmVmTest {
    /** A guest with its own IDT, local APIC on, counting interrupts per vector at DATA + 8 * (vector - 0x41). */
    static final String INTERRUPT_COUNTER = """
            _start:
                lea rdi, [rip + idt]
                lea rax, [rip + vector41]
                mov ecx, 0x41
                call set_gate
                lea rax, [rip + vector42]
                mov ecx, 0x42
                call set_gate
                lea rax, [rip + vector43]
                mov ecx, 0x43
                call set_gate
                lidt [rip + idtr]
                mov eax, 0xfee000f0           # local APIC spurious-interrupt vector register
                mov dword ptr [rax], 0x1ff    # APIC software enable, spurious vector 0xff
                xor ebx, ebx
            step:
                lea edx, [rbx + 0x510]
                out dx, al                    # "step i": the host acts during this exit
            wait:
                sti
                hlt                           # with the in-kernel irqchip this sleeps in the kernel
                cli
                cmp qword ptr [0x90000 + rbx * 8], 0
                je wait
                inc ebx
                cmp ebx, 3
                jne step
                mov dx, 0x51f
                out dx, al                    # done
            1:  hlt
                jmp 1b

            vector41:
                lock inc qword ptr [0x90000]
                jmp eoi
            vector42:
                lock inc qword ptr [0x90008]
                jmp eoi
            vector43:
                lock inc qword ptr [0x90010]
            eoi:
                push rax
                mov eax, 0xfee000b0           # EOI register
                mov dword ptr [rax], 0
                pop rax
                iretq

            .balign 16
            idtr: .word 4095
                  .quad idt
            .balign 16
            idt:  .space 4096
            """ + GuestAssembler.SET_GATE;

    @Test
    void ioeventfdsTakeMatchingWritesWithoutAnExit() throws Exception {
        String guest = """
                _start:
                    mov dx, 0x520
                    mov ax, 7
                    out dx, ax                    # 2 bytes: matches the PIO ioeventfd, no exit
                    movabs rbx, 0xd0003000
                    mov word ptr [rbx], 0         # matches the MMIO ioeventfd (any length), no exit
                    mov dword ptr [rbx + 4], 1    # next queue's notify address: not registered, exits
                    mov dx, 0x520
                    out dx, al                    # 1 byte: the PIO ioeventfd wants 2, so this exits
                    hlt
                """;
        try (KvmTestVm t = new KvmTestVm(guest, false);
             EventFd portKick = EventFd.create();
             EventFd mmioKick = EventFd.create()) {
            KvmTestVm.RecordingPort port = new KvmTestVm.RecordingPort(0, v -> { });
            t.pio.register(0x520, 2, port);
            KvmTestVm.RecordingPort notify = new KvmTestVm.RecordingPort(0, v -> { });
            t.mmio.register(0xD000_3000L, 0x1000, notify);
            t.vm.addIoEventFd(0x520, 2, true, portKick);
            KvmVm.IoEventFd registration = t.vm.addIoEventFd(0xD000_3000L, 0, false, mmioKick);

            assertEquals(KvmVcpu.StopReason.HALTED, t.vcpu.run());

            assertEquals(1, portKick.drain(), "the 2-byte OUT signalled the PIO ioeventfd");
            assertEquals(1, mmioKick.drain(), "the notify write signalled the MMIO ioeventfd");
            assertEquals(List.of(7L & 0xFF), port.values(), "only the 1-byte OUT reached the device");
            assertEquals(List.of(1L), notify.values(), "only the unregistered address reached the device");
            VmExitCounts exits = t.vcpu.exitCounts();
            assertEquals(1, exits.get(KvmIoctls.EXIT_IO), exits.toString());
            assertEquals(1, exits.get(KvmIoctls.EXIT_MMIO), exits.toString());
            registration.close(); // deassign: must name the same address, length and fd
        }
    }

    @Test
    void irqfdRoutesAndSignalMsiReachTheGuestsInterruptHandlers() throws Exception {
        try (KvmTestVm t = new KvmTestVm(INTERRUPT_COUNTER, true);
             EventFd call = EventFd.create()) {
            int gsi = t.vm.allocateGsi();
            assertEquals(KvmVm.FIRST_MSI_GSI, gsi);
            t.vm.setMsiRoute(gsi, 0xFEE0_0000L, 0x41);
            KvmVm.IrqFd irqfd = t.vm.irqfd(call, gsi);
            CompletableFuture<Void> done = new CompletableFuture<>();
            boolean[] msiDelivered = new boolean[1];
            t.pio.register(0x510, 3, new BusDevice() {
                @Override
                public long read(long offset, int size) {
                    return 0;
                }

                @Override
                public void write(long offset, int size, long value) {
                    switch ((int) offset) {
                        case 0 -> call.signal();                              // irqfd -> GSI -> MSI vector 0x41
                        case 1 -> {
                            t.vm.setMsiRoute(gsi, 0xFEE0_0000L, 0x42);       // the same irqfd follows the new route
                            call.signal();
                        }
                        default -> msiDelivered[0] = t.vm.signalMsi(0xFEE0_0000L, 0x43); // config-interrupt path
                    }
                }
            });
            t.pio.register(0x51f, 1, new KvmTestVm.RecordingPort(0, v -> done.complete(null)));
            CompletableFuture<KvmVcpu.StopReason> run = t.vcpu.start("vcpu-test");
            try {
                done.get(5, TimeUnit.SECONDS);
            } finally {
                t.vcpu.requestStop();
            }
            assertEquals(KvmVcpu.StopReason.STOPPED, run.get(5, TimeUnit.SECONDS));
            assertEquals(1, t.memory.readLong(KvmTestVm.DATA), "vector 0x41 once");
            assertEquals(1, t.memory.readLong(KvmTestVm.DATA + 8), "vector 0x42 once, after the route change");
            assertEquals(1, t.memory.readLong(KvmTestVm.DATA + 16), "vector 0x43 once, from KVM_SIGNAL_MSI");
            assertTrue(msiDelivered[0], "KVM_SIGNAL_MSI reported delivery to an enabled APIC");
            assertEquals(0, call.drain(), "KVM consumed the call eventfd");
            assertEquals(0, t.vcpu.exitCounts().get(KvmIoctls.EXIT_HLT), "HLT waits in the kernel");
            irqfd.close();
        }
    }
}
