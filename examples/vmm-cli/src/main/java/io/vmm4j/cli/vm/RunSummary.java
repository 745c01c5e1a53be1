package io.vmm4j.cli.vm;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonUnwrapped;
import io.vmm4j.tap.DiscardPort;
import io.vmm4j.tap.LinkCounters;
import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.NetQueueCounters;
import io.vmm4j.virtio.pci.VirtioPciTransport;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The one JSON object {@code ./vmm run --json} prints, and what the human summary is made from.
 * {@code queues} are the VMM's own data-plane counters, the same {@link NetQueueCounters.Snapshot} the
 * vhost-user back-end daemon reports: with vhost-user the rings are served by the back-end process,
 * which counts them itself, and these stay zero. {@code guestLink} is the link state
 * the guest last read and its changes. {@code vmExits} (exits of the vCPU to the VMM, by KVM exit
 * reason) and {@code kvm} are there only with {@code --vcpu kvm}. A Linux guest ({@code --kernel})
 * has {@code linux} instead of {@code ping}, {@code kvm} and {@code rng}: how the run ended, and the
 * {@code vmm4j-result:} lines its /init printed; {@code features} are what Linux's driver acked. {@code discardPort}
 * is there only with {@code --port discard}: the frames (and bytes) it dropped (tx) and made (rx). {@code tap} is
 * there only with a tap: its counters as the host kernel keeps them at the end of the run (rx: the guest's frames the
 * kernel took; tx: frames it handed to the VMM; txDropped: frames for the guest the kernel dropped), so a lost frame
 * can be placed on either side of the tap. {@code guestDrops} (the Java guest only) are the frames its network stack
 * dropped, by reason, since it last came up.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record RunSummary(String backend, String port, String portName, String guestIp, String hostIp, List<String> features,
                         int queuePairs, Ping ping, Udp udp, int maxRxBuffersPerFrame, long echoRequestsAnswered,
                         List<Queue> queues, String rng, String deviceStatus, String error, GuestLink guestLink, String vcpu,
                         Map<String, Long> vmExits, Kvm kvm, Linux linux, DiscardPort.Stats discardPort, LinkCounters tap,
                         Map<String, Long> guestDrops) {
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

    /** A data queue's counters (one JSON object: its pair, then the counters' own fields). */
    public record Queue(int pair, @JsonUnwrapped NetQueueCounters.Snapshot counters) {
    }

    /**
     * What a run did: the options it had, the NIC's port and transport, the data queues' counters
     * and what the guest reported. The error is the guest's, else the device's last ring error,
     * else why the vhost-user back-end went away ({@code backendGone}, or null).
     */
    static RunSummary of(VmOptions options, NetPort port, VirtioPciTransport nic, List<NetQueueCounters.Snapshot> counters,
                         GuestReport g, String backendGone) {
        List<Queue> queues = new ArrayList<>();
        for (NetQueueCounters.Snapshot c : counters) {
            queues.add(new Queue(c.pair(), c));
        }
        // a Linux guest pings from its own /init: its result lines are in linux.results
        Ping ping = g.linux() != null ? null : new Ping(options.target(), g.pingsSent(), g.rttMs().size(), g.rttMs());
        Udp udp = options.udpPort() > 0 ? new Udp(options.udpPort(), g.udpSent(), g.udpReceived()) : null;
        String error = g.error() != null ? g.error() : nic.lastError() != null ? nic.lastError() : backendGone;
        return new RunSummary(options.dataPlane().label(), port.kind(), port.name(), options.guestIp(), options.hostIp(),
                NetFeatures.names(g.acked()), g.pairs(), ping, udp, g.maxRxBuffers(), g.echoRequestsAnswered(), List.copyOf(queues),
                g.rng(), DeviceStatus.describe(nic.status()), error, g.link(), options.vcpu().label(), g.vmExits(), g.kvm(), g.linux(),
                port.discardStats(), port.linkCounters(), g.drops());
    }

    /**
     * @param vmExitsTotal all exits of the vCPU to the VMM during the run
     * @param quietPhase   the guest's steady-traffic phases (pings, serving), where it prints nothing
     * @param guest        what the guest counted itself
     * @param tscKhz       the vCPU's TSC frequency the guest timed with
     * @param flood        what the guest's flood workload did ({@code --workload}), or null without one
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Kvm(long vmExitsTotal, QuietPhase quietPhase, GuestCounters guest, long tscKhz, Flood flood) {
    }

    /**
     * The C guest's flood workload, as it counted it on its own clock (the TSC).
     *
     * @param workload         tx-flood or rx-count
     * @param frameSize        tx-flood: bytes of each frame sent (Ethernet, no FCS); 0 for rx-count
     * @param port             the UDP port the frames went to
     * @param frames           tx-flood: frames sent, every one handed back used by the device; rx-count: UDP frames to the port counted
     * @param bytes            their Ethernet bytes
     * @param seconds          tx-flood: first publish to the last buffer back; rx-count: the counting window
     * @param packetsPerSecond frames / seconds
     * @param otherFrames      other frames the guest received meanwhile (ARP, IPv6, ICMP errors)
     * @param kicks            notify writes the guest made meanwhile
     * @param interrupts       receive and transmit interrupts the guest took meanwhile
     */
    public record Flood(String workload, int frameSize, int port, long frames, long bytes, double seconds, double packetsPerSecond,
                        long otherFrames, long kicks, long interrupts) {
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

    /**
     * A Linux guest's run.
     *
     * @param ending       REBOOTED (the i8042 reset: {@code reboot}, or {@code panic=-1} after a panic), FAILED, TIMED_OUT or STOPPED
     * @param panic        the console's "Kernel panic" line, or null
     * @param results      the JSON of each {@code vmm4j-result: {...}} line the guest printed, in order (scripts/linux-guest/init)
     * @param lastConsoleLines the console's last lines, when the run did not end in a clean reboot
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Linux(String kernel, String commandLine, int cpus, String ending, String panic, double seconds,
                        List<Object> results, List<String> lastConsoleLines) {
    }

    /**
     * @param kicks             notify writes the guest's driver made
     * @param framesTransmitted every frame the guest queued for sending (its flood's and its stack's: ARP, ICMP)
     * @param framesReceived    every frame the device handed it
     */
    public record GuestCounters(long kicks, long rxInterrupts, long txInterrupts, long configInterrupts, long timerInterrupts,
                                long framesTransmitted, long framesReceived) {
    }
}
