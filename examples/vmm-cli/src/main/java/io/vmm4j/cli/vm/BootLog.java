package io.vmm4j.cli.vm;

import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.pci.MsixTable;
import io.vmm4j.virtio.pci.QueueRegisters;
import io.vmm4j.virtio.pci.VirtioPciTransport;

import java.io.PrintStream;
import java.util.List;
import java.util.function.LongFunction;

/** Prints what the driver does to a device as it happens: status, features, queues, vectors. */
final class BootLog implements VirtioPciTransport.Observer {
    private final String device;
    private final PrintStream out;
    private final LongFunction<List<String>> featureNames;

    BootLog(String device, PrintStream out, LongFunction<List<String>> featureNames) {
        this.device = device;
        this.out = out;
        this.featureNames = featureNames;
    }

    @Override
    public void statusChanged(int oldStatus, int newStatus) {
        out.printf("%s: status %s -> %s%n", device, DeviceStatus.describe(oldStatus), DeviceStatus.describe(newStatus));
    }

    @Override
    public void featuresNegotiated(long offered, long acked, boolean accepted, String problem) {
        out.printf("%s: features offered %s%n", device, featureNames.apply(offered));
        out.printf("%s: features acked   %s%s%n", device, featureNames.apply(acked), accepted ? "" : " -- refused: " + problem);
    }

    @Override
    public void queueActivated(QueueRegisters q) {
        out.printf("%s: queue %d size %d desc 0x%x avail 0x%x used 0x%x msix %s%n", device, q.index(), q.size(), q.desc(), q.driver(),
                q.device(), q.msixVector() == MsixTable.NO_VECTOR ? "none" : Integer.toString(q.msixVector()));
    }

    @Override
    public void deviceError(String reason) {
        out.printf("%s: DEVICE_NEEDS_RESET: %s%n", device, reason);
    }
}
