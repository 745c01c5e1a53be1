package io.vmm4j.cli.vm;

import java.util.List;
import java.util.Map;

/**
 * What a guest reports after its run, whoever ran it.
 *
 * @param acked         virtio-net features the guest's driver acked
 * @param rttMs         round-trip times of the ping replies, in order
 * @param rng           hex of the virtio-rng bytes the guest read, or "not found"
 * @param error         why the guest stopped early, or null
 * @param link          the link as the guest's driver saw it, or null for a guest that does not say
 * @param vmExits       exits of the vCPU to the VMM by KVM exit reason, or null for a guest without KVM
 * @param kvm           what the KVM guest's run cost in exits, or null for a guest without KVM
 * @param linux         how a Linux guest's run ended and what its /init printed, or null for our own guests
 * @param drops         frames the guest's network stack dropped, by reason (non-zero ones), or null for a guest that does not say
 */
record GuestReport(long acked, int pairs, int pingsSent, List<Double> rttMs, int udpSent, int udpReceived, int maxRxBuffers,
                   long echoRequestsAnswered, String rng, String error, RunSummary.GuestLink link, Map<String, Long> vmExits,
                   RunSummary.Kvm kvm, RunSummary.Linux linux, Map<String, Long> drops) {
}
