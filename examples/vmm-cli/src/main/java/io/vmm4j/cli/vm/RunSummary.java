package io.vmm4j.cli.vm;

import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.List;
import java.util.Map;

/**
 * The one JSON object {@code ./vmm run --json} prints, and what the human summary is made from.
 * {@code queues} are the VMM's own data-plane counters: with vhost-user the rings are served by the
 * back-end process, which counts them itself, and these stay zero. {@code guestLink} is the link state
 * the guest last read and its changes. {@code vmExits} (exits of the vCPU to the VMM, by KVM exit
 * reason) and {@code kvm} are there only with {@code --vcpu kvm}.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record RunSummary(String backend, String port, String portName, String guestIp, String hostIp, List<String> features,
                         int queuePairs, Ping ping, Udp udp, int maxRxBuffersPerFrame, long echoRequestsAnswered,
                         List<Queue> queues, String rng, String deviceStatus, String error, GuestLink guestLink, String vcpu,
                         Map<String, Long> vmExits, Kvm kvm) {
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

    /**
     * @param vmExitsTotal all exits of the vCPU to the VMM during the run
     * @param quietPhase   the guest's steady-traffic phases (pings, serving), where it prints nothing
     * @param guest        what the guest counted itself
     * @param tscKhz       the vCPU's TSC frequency the guest timed with
     */
    public record Kvm(long vmExitsTotal, QuietPhase quietPhase, GuestCounters guest, long tscKhz) {
    }

    /**
     * Exits to the VMM against the frames the NIC moved while the guest was in steady traffic.
     *
     * @param packets        frames moved, both directions (device counters)
     * @param kicks          kicks the device served (device counters)
     * @param exits          exits of the vCPU to the VMM in those phases
     * @param exitsByReason  the same, by KVM exit reason
     * @param exitsPerPacket exits / packets: about 0 with ioeventfd + irqfd, at least one per kick without ioeventfd
     */
    public record QuietPhase(long packets, long kicks, long exits, Map<String, Long> exitsByReason, double exitsPerPacket,
                             double seconds) {
    }

    /** @param kicks notify writes the guest's driver made */
    public record GuestCounters(long kicks, long rxInterrupts, long txInterrupts, long configInterrupts, long timerInterrupts) {
    }
}
