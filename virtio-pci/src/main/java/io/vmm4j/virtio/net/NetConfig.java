package io.vmm4j.virtio.net;

import io.vmm4j.virtio.queue.RingLayout;

import java.util.HexFormat;

/**
 * The virtio-net device's static configuration.
 *
 * @param mac           the NIC's MAC address (6 bytes)
 * @param mtu           the MTU the device advertises (68..65535, §5.1.4.1)
 * @param maxQueuePairs 1..0x8000 (§5.1.4: max_virtqueue_pairs)
 * @param queueSize     maximum size of each data queue (a power of two)
 * @param offeredRings  {@link RingLayout#PACKED}: offer VIRTIO_F_RING_PACKED (where the data plane
 *                      serves packed rings), so the driver may choose either layout; SPLIT: offer
 *                      only split rings (QEMU's default, packed=off)
 */
public record NetConfig(byte[] mac, int mtu, int maxQueuePairs, int queueSize, RingLayout offeredRings) {
    /** A device that offers split rings only. */
    public NetConfig(byte[] mac, int mtu, int maxQueuePairs, int queueSize) {
        this(mac, mtu, maxQueuePairs, queueSize, RingLayout.SPLIT);
    }

    public NetConfig {
        java.util.Objects.requireNonNull(offeredRings, "offeredRings");
        if (mac.length != 6) {
            throw new IllegalArgumentException("a MAC address has 6 bytes, got " + mac.length);
        }
        if ((mac[0] & 1) != 0) {
            throw new IllegalArgumentException("MAC " + format(mac) + " is a multicast address; a NIC needs a unicast one (even first byte)");
        }
        if (mtu < 68 || mtu > 65535) {
            throw new IllegalArgumentException("MTU must be 68..65535, was " + mtu);
        }
        if (maxQueuePairs < 1 || maxQueuePairs > 0x8000) {
            throw new IllegalArgumentException("queue pairs must be 1..32768, was " + maxQueuePairs);
        }
        if (queueSize < 2 || queueSize > 32768 || Integer.bitCount(queueSize) != 1) {
            throw new IllegalArgumentException("queue size must be a power of two in 2..32768, was " + queueSize);
        }
        mac = mac.clone();
    }

    @Override
    public byte[] mac() {
        return mac.clone();
    }

    /** Parses {@code 52:54:00:12:34:56}. */
    public static byte[] parseMac(String text) {
        String[] parts = text.split(":");
        if (parts.length != 6) {
            throw new IllegalArgumentException("MAC address '" + text + "' must be six hex bytes like 52:54:00:12:34:56");
        }
        byte[] mac = new byte[6];
        for (int i = 0; i < 6; i++) {
            if (parts[i].length() != 2) {
                throw new IllegalArgumentException("MAC address '" + text + "' must be six hex bytes like 52:54:00:12:34:56");
            }
            try {
                mac[i] = (byte) Integer.parseInt(parts[i], 16);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("MAC address '" + text + "' must be six hex bytes like 52:54:00:12:34:56");
            }
        }
        return mac;
    }

    public static String format(byte[] mac) {
        return HexFormat.ofDelimiter(":").formatHex(mac);
    }

    /** Total virtqueues: a receive and a transmit queue per pair, plus the control queue. */
    public int queueCount() {
        return 2 * maxQueuePairs + 1;
    }
}
