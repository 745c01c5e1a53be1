package io.vmm4j.core.x86;

import io.vmm4j.core.boot.BootVcpuState;
import io.vmm4j.core.boot.BzImage;
import io.vmm4j.core.boot.LinuxLoader;
import io.vmm4j.core.boot.MpTable;
import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.irq.IntxLine;
import io.vmm4j.core.kvm.CpuidTable;
import io.vmm4j.core.kvm.GuestFailureException;
import io.vmm4j.core.kvm.Kvm;
import io.vmm4j.core.kvm.KvmIoctls;
import io.vmm4j.core.kvm.KvmVcpu;
import io.vmm4j.core.kvm.KvmVm;
import io.vmm4j.core.kvm.VmExitCounts;
import io.vmm4j.core.memory.GuestMemory;

import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A KVM virtual PC that boots a Linux bzImage directly (no firmware): guest RAM below the PCI
 * window at 3 GiB and above 4 GiB, the in-kernel PIC/IOAPIC/LAPICs and PIT, normalised CPUID and
 * boot state on every vCPU, and the legacy devices a stock kernel looks for on the PIO bus: a
 * 16550 UART at 0x3F8 on IRQ 4 (the console), the i8042 at 0x60/0x64 (its reset ends the run as
 * "the guest rebooted"), the CMOS RTC at 0x70 and the POST port 0x80. Other devices (a PCI host)
 * go on {@link #pio()} and {@link #mmio()} before {@link #run}.
 *
 * <p>Accesses to ports or MMIO addresses nobody claims read as all-ones and are logged once per
 * address, so a hanging boot shows what it probed.
 */
public final class LinuxVm implements AutoCloseable {
    /** Guest RAM below 4 GiB ends here; [3 GiB, 4 GiB) is the PCI/IOAPIC/LAPIC window. */
    public static final long LOW_RAM_LIMIT = LinuxLoader.DEVICE_WINDOW;
    public static final long HIGH_RAM_START = 4L << 30;

    /** How a run ended. */
    public enum Ending {
        /** The guest asked for a CPU reset through the i8042 (Linux's reboot=k, or `reboot`). */
        REBOOTED,
        /** A vCPU stopped in a way the VMM cannot continue (triple fault, KVM internal error, device failure). */
        FAILED,
        /** The time limit passed first. */
        TIMED_OUT,
        /** {@link #stop()} was called. */
        STOPPED
    }

    /** The end of a run: how, why (for FAILED), the exits each vCPU took, and how long it ran. */
    public record Outcome(Ending ending, Throwable failure, List<VmExitCounts> exits, Duration elapsed) {
        public VmExitCounts totalExits() {
            VmExitCounts t = VmExitCounts.none();
            for (VmExitCounts c : exits) {
                t = t.plus(c);
            }
            return t;
        }
    }

    /** What to build; see {@link LinuxVm#create}. */
    public record Config(BzImage kernel, byte[] initrd, String commandLine, int cpus, long memoryMiB,
                         OutputStream console, InputStream consoleInput, PrintStream log) {
        public Config {
            Objects.requireNonNull(kernel, "kernel");
            Objects.requireNonNull(commandLine, "commandLine");
            Objects.requireNonNull(console, "console");
            if (cpus < 1 || cpus > 254) {
                throw new IllegalArgumentException("--cpus must be 1 to 254, was " + cpus);
            }
            if (memoryMiB < 64) {
                throw new IllegalArgumentException("--memory must be at least 64 MiB for a Linux guest, was " + memoryMiB);
            }
        }
    }

    private final Config config;
    private final KvmVm vm;
    private final GuestMemory memory;
    private final Bus pio = new Bus("pio");
    private final Bus mmio = new Bus("mmio");
    private final Uart16550 uart;
    private final I8042 i8042;
    private final List<KvmVcpu> vcpus = new ArrayList<>();
    private final Set<String> reportedUnclaimed = ConcurrentHashMap.newKeySet();
    private final CompletableFuture<Ending> ended = new CompletableFuture<>();
    private final CpuidTable bootCpuid;
    private LinuxLoader.Loaded loaded;
    private volatile Throwable failure;

    private LinuxVm(Config config, KvmVm vm, GuestMemory memory, CpuidTable supported, boolean tscDeadline) {
        this.config = config;
        this.vm = vm;
        this.memory = memory;
        PrintStream log = config.log();
        IntxLine com1 = new IntxLine() {
            @Override
            public void assertLine() {
                vm.irqLine(Uart16550.COM1_IRQ, true);
            }

            @Override
            public void deassertLine() {
                vm.irqLine(Uart16550.COM1_IRQ, false);
            }
        };
        uart = new Uart16550(config.console(), com1);
        i8042 = new I8042(() -> {
            if (log != null) {
                log.println("vmm4j: the guest reset the CPU through the i8042 (reboot)");
            }
            finish(Ending.REBOOTED);
        });
        pio.register(Uart16550.COM1_PORT, Uart16550.PORTS, uart);
        pio.register(I8042.DATA_PORT, 1, i8042.dataPort());
        pio.register(I8042.COMMAND_PORT, 1, i8042.commandPort());
        pio.register(CmosRtc.INDEX_PORT, CmosRtc.PORTS, new CmosRtc(Clock.systemUTC()));
        pio.register(IgnoredPorts.POST_PORT, 1, new IgnoredPorts("post-code", 0xFF));
        pio.setUnclaimedListener((write, address, size, value) -> reportUnclaimed("pio", write, address, size, value));
        mmio.setUnclaimedListener((write, address, size, value) -> reportUnclaimed("mmio", write, address, size, value));

        CpuidTable first = null;
        for (int id = 0; id < config.cpus(); id++) {
            KvmVcpu v = vm.createVcpu(id, pio, mmio);
            vcpus.add(v);
            CpuidTable c = BootVcpuState.configure(v, supported, tscDeadline, id, config.cpus());
            if (first == null) {
                first = c;
            }
        }
        bootCpuid = first;
    }

    /**
     * Creates the VM and loads the kernel; fails with a {@link io.vmm4j.core.kvm.KvmException} naming
     * what this host's KVM lacks, or a {@link io.vmm4j.core.boot.KernelImageException} for what does not fit.
     */
    public static LinuxVm create(Config config) {
        long bytes = config.memoryMiB() << 20;
        GuestMemory.Builder b = GuestMemory.builder().region(0, Math.min(bytes, LOW_RAM_LIMIT));
        if (bytes > LOW_RAM_LIMIT) {
            b.region(HIGH_RAM_START, bytes - LOW_RAM_LIMIT);
        }
        GuestMemory memory = b.build();
        KvmVm vm = null;
        try (Kvm kvm = Kvm.open(); Arena arena = Arena.ofConfined()) {
            kvm.requireExtension(KvmIoctls.CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "gives the guest its PIC, IOAPIC and local APICs");
            kvm.requireExtension(KvmIoctls.CAP_PIT2, "KVM_CAP_PIT2", "gives the guest its i8254 timer");
            kvm.requireExtension(KvmIoctls.CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stops a vCPU cleanly");
            CpuidTable supported = CpuidTable.read(kvm.supportedCpuid(arena));
            boolean tscDeadline = kvm.checkExtension(KvmIoctls.CAP_TSC_DEADLINE_TIMER) > 0;
            vm = kvm.createVm();
            vm.createIrqchip();
            vm.createPit2();
            vm.mapMemory(memory);
            LinuxVm lvm = new LinuxVm(config, vm, memory, supported, tscDeadline);
            lvm.loaded = LinuxLoader.load(memory, config.kernel(), config.initrd(), config.commandLine(), config.cpus());
            LinuxLoader.enter(lvm.vcpus.get(0), lvm.loaded);
            if (config.log() != null) {
                config.log().println("vmm4j: " + config.kernel().name() + " (" + config.kernel().versionString() + ")");
                config.log().println("vmm4j: " + lvm.loaded);
                config.log().println("vmm4j: vCPU 0 CPUID vendor " + supported.vendor() + ", hypervisor leaf \""
                        + lvm.bootCpuid.hypervisorSignature().replace("\0", "\\0") + "\"");
            }
            return lvm;
        } catch (RuntimeException e) {
            if (vm != null) {
                vm.close();
            }
            memory.close();
            throw e;
        }
    }

    public Bus pio() {
        return pio;
    }

    public Bus mmio() {
        return mmio;
    }

    public KvmVm kvmVm() {
        return vm;
    }

    public GuestMemory memory() {
        return memory;
    }

    public Uart16550 uart() {
        return uart;
    }

    /**
     * The INTA line of PCI bus 0 slot {@code slot}, as the MP table wires it: a level on IOAPIC pin
     * {@link MpTable#pciIntxPin} through KVM_IRQ_LINE (1 while asserted; KVM's IOAPIC re-raises a
     * level-triggered pin after EOI while it is still high).
     */
    public IntxLine pciIntx(int slot) {
        int gsi = MpTable.pciIntxPin(slot);
        return new IntxLine() {
            @Override
            public void assertLine() {
                vm.irqLine(gsi, true);
            }

            @Override
            public void deassertLine() {
                vm.irqLine(gsi, false);
            }
        };
    }

    public List<KvmVcpu> vcpus() {
        return List.copyOf(vcpus);
    }

    /**
     * The exits of every vCPU counted so far, summed, read while the guest runs: two reads bracket
     * a window (e.g. steady traffic) whose difference is what that window cost in exits to user space.
     */
    public VmExitCounts exitsSoFar() {
        VmExitCounts t = VmExitCounts.none();
        for (KvmVcpu v : vcpus) {
            t = t.plus(v.exitCounts());
        }
        return t;
    }

    public LinuxLoader.Loaded loaded() {
        return loaded;
    }

    public CpuidTable bootCpuid() {
        return bootCpuid;
    }

    /**
     * Runs every vCPU on its own thread until the guest reboots, a vCPU fails, {@code limit}
     * passes or {@link #stop()} is called; then stops them all and reports how it ended.
     */
    public Outcome run(Duration limit) {
        long start = System.nanoTime();
        Thread input = config.consoleInput() == null ? null : uart.startInput(config.consoleInput(), "vmm4j-console-in");
        List<CompletableFuture<KvmVcpu.StopReason>> runs = new ArrayList<>();
        for (KvmVcpu v : vcpus) {
            CompletableFuture<KvmVcpu.StopReason> f = v.start("vcpu-" + v.id());
            f.whenComplete((r, t) -> {
                if (t != null) {
                    failure = t;
                    finish(Ending.FAILED);
                }
            });
            runs.add(f);
        }
        Ending ending;
        try {
            ending = ended.get(limit.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            ending = Ending.TIMED_OUT;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            ending = Ending.STOPPED;
        } catch (java.util.concurrent.ExecutionException e) {
            ending = Ending.FAILED;
        }
        for (KvmVcpu v : vcpus) {
            v.requestStop();
        }
        for (CompletableFuture<KvmVcpu.StopReason> f : runs) {
            try {
                f.get(5, TimeUnit.SECONDS);
            } catch (Exception e) {
                // its failure (if any) is already recorded; a vCPU that does not stop is closed with the VM
            }
        }
        if (input != null) {
            input.interrupt();
        }
        List<VmExitCounts> exits = new ArrayList<>();
        for (KvmVcpu v : vcpus) {
            exits.add(v.exitCounts());
        }
        try {
            config.console().flush();
        } catch (java.io.IOException e) {
            // the console is gone; nothing to flush into
        }
        return new Outcome(ending, ending == Ending.FAILED ? failure : null, exits, Duration.ofNanos(System.nanoTime() - start));
    }

    /** Ends a {@link #run} from any thread. */
    public void stop() {
        finish(Ending.STOPPED);
    }

    private void finish(Ending e) {
        ended.complete(e);
        for (KvmVcpu v : vcpus) {
            v.requestStop();
        }
    }

    private void reportUnclaimed(String bus, boolean write, long address, int size, long value) {
        PrintStream log = config.log();
        if (log != null && reportedUnclaimed.add(bus + (write ? " write " : " read ") + Long.toHexString(address))) {
            log.println(String.format("vmm4j: unclaimed %s %s at 0x%x (%d byte%s)%s; %s", bus, write ? "write" : "read", address, size,
                    size == 1 ? "" : "s", write ? String.format(" of 0x%x", value) : "", write ? "dropped" : "answered all-ones")
                    + " (logged once per address)");
        }
    }

    /** The failure that ended the run, if it was {@link Ending#FAILED}; a {@link GuestFailureException} carries registers. */
    public Throwable failure() {
        return failure;
    }

    @Override
    public void close() {
        stop();
        vm.close();
        memory.close();
    }
}
