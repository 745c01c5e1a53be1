package io.vmm4j.tap;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * An interface's packet counters as the kernel keeps them ({@code /sys/class/net/NAME/statistics},
 * in the reader's network namespace). On a tap, rx counts what the kernel took from the tap's file
 * descriptor (the guest's frames) and tx what it handed to it (frames for the guest); tx_dropped
 * counts frames the kernel dropped on the way to the reader (a full queue, no reader attached).
 */
public record LinkCounters(long rxPackets, long txPackets, long rxDropped, long txDropped) {
    /**
     * The counters of {@code interfaceName} now.
     *
     * @throws TapException if the interface does not exist (here) or its counters cannot be read
     */
    public static LinkCounters read(String interfaceName) {
        Path stats = Path.of("/sys/class/net", InterfaceName.requireValid(interfaceName, "interface"), "statistics");
        return new LinkCounters(counter(stats, "rx_packets"), counter(stats, "tx_packets"), counter(stats, "rx_dropped"),
                counter(stats, "tx_dropped"));
    }

    private static long counter(Path stats, String name) {
        Path file = stats.resolve(name);
        try {
            return Long.parseLong(Files.readString(file).strip());
        } catch (IOException | NumberFormatException e) {
            throw new TapException("cannot read " + file + " (" + e + "): is the interface there, in this network namespace?", 0, e);
        }
    }
}
