package io.vmm4j.cli.vm;

import java.util.List;

/**
 * The one JSON object {@code ./vmm run --json} prints, and what the human summary is made from.
 * {@code queues} are the VMM's own data-plane counters: with vhost-user the rings are served by the
 * back-end process, which counts them itself, and these stay zero. {@code guestLink} is the link state
 * the guest last read and its changes.
 */
public record RunSummary(String backend, String port, String portName, String guestIp, String hostIp, List<String> features,
                         int queuePairs, Ping ping, Udp udp, int maxRxBuffersPerFrame, long echoRequestsAnswered,
                         List<Queue> queues, String rng, String deviceStatus, String error, GuestLink guestLink) {
    /** @param rttMs round-trip times of the replies, in order */
    public record Ping(String target, int sent, int received, List<Double> rttMs) {
    }

    public record Udp(int port, int sent, int received) {
    }

    /**
     * The link as the guest driver saw it: the STATUS field it read at bring-up and after each
     * configuration interrupt, and each change it noticed, in order ("down", "up").
     *
     * @param reboots how many times the guest rebooted after a system reset
     */
    public record GuestLink(boolean up, List<String> changes, int reboots) {
    }

    public record Queue(int pair, String direction, long packets, long bytes, long kicks, long interrupts, long interruptsSuppressed,
                        long dropsNoBuffer, long portErrors) {
    }
}
