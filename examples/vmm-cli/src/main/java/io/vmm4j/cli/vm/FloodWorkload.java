package io.vmm4j.cli.vm;

import io.vmm4j.guest.GuestAbi;

/**
 * A flood the C guest on KVM runs after its pings ({@code --workload}): {@code tx-flood} sends UDP
 * frames of {@code frameSize} bytes to the host's {@code port} as fast as the TX ring allows,
 * {@code rx-count} counts the UDP frames to its own {@code port} that the host floods in; either
 * for {@code durationMs}.
 *
 * @param frameSize Ethernet bytes per frame without FCS (14 + 20 + 8 + UDP payload); the host's frame size with rx-count
 */
public record FloodWorkload(Kind kind, int frameSize, int durationMs, int port) {
    /** The UDP port floods go to when nobody says: discard (RFC 863), where the host has no listener. */
    public static final int DEFAULT_PORT = 9;
    public static final int DEFAULT_FRAME_SIZE = 64;
    public static final int DEFAULT_DURATION_MS = 1000;
    public static final int MIN_FRAME_SIZE = GuestAbi.MIN_FLOOD_FRAME;
    public static final int MAX_FRAME_SIZE = GuestAbi.MAX_FLOOD_FRAME;
    /** An hour: longer floods are better spelt as several runs. */
    public static final int MAX_DURATION_MS = 3_600_000;

    /** Which way the frames go. */
    public enum Kind implements OptionValue {
        /** The guest sends. */
        TX_FLOOD,
        /** The host sends, the guest counts. */
        RX_COUNT;

        int abiValue() {
            return this == TX_FLOOD ? GuestAbi.WORKLOAD_TX_FLOOD : GuestAbi.WORKLOAD_RX_COUNT;
        }
    }

    public FloodWorkload {
        if (kind == null) {
            throw new IllegalArgumentException("a flood workload needs its kind: tx-flood or rx-count");
        }
        if (frameSize < MIN_FRAME_SIZE || frameSize > MAX_FRAME_SIZE) {
            throw new IllegalArgumentException("frame size " + frameSize + " is out of range; allowed: " + MIN_FRAME_SIZE + " to "
                    + MAX_FRAME_SIZE + " bytes (an Ethernet frame without FCS)");
        }
        if (durationMs < 1 || durationMs > MAX_DURATION_MS) {
            throw new IllegalArgumentException("flood duration " + durationMs + " ms is out of range; allowed: 1 to " + MAX_DURATION_MS);
        }
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("flood port " + port + " is out of range; allowed: 1 to 65535");
        }
    }

    /** UDP payload bytes of each frame. */
    public int payload() {
        return frameSize - 14 - 20 - 8;
    }
}
