package io.vmm4j.cli.vm;

import java.util.List;

/**
 * What a guest reports after its run, whoever ran it.
 *
 * @param acked         virtio-net features the guest's driver acked
 * @param rttMs         round-trip times of the ping replies, in order
 * @param rng           hex of the virtio-rng bytes the guest read, or "not found"
 * @param error         why the guest stopped early, or null
 */
record GuestReport(long acked, int pairs, int pingsSent, List<Double> rttMs, int udpSent, int udpReceived, int maxRxBuffers,
                   long echoRequestsAnswered, String rng, String error) {
}
