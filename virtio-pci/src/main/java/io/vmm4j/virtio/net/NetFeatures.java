package io.vmm4j.virtio.net;

import io.vmm4j.virtio.VirtioFeatures;

import java.util.List;
import java.util.Map;

/** virtio-net feature bits (virtio 1.2 §5.1.3) and the dependencies between them (§5.1.3.1). */
public final class NetFeatures {
    public static final int CSUM = 0;
    public static final int GUEST_CSUM = 1;
    public static final int CTRL_GUEST_OFFLOADS = 2;
    public static final int MTU = 3;
    public static final int MAC = 5;
    public static final int GUEST_TSO4 = 7;
    public static final int GUEST_TSO6 = 8;
    public static final int GUEST_ECN = 9;
    public static final int GUEST_UFO = 10;
    public static final int HOST_TSO4 = 11;
    public static final int HOST_TSO6 = 12;
    public static final int HOST_ECN = 13;
    public static final int HOST_UFO = 14;
    public static final int MRG_RXBUF = 15;
    public static final int STATUS = 16;
    public static final int CTRL_VQ = 17;
    public static final int CTRL_RX = 18;
    public static final int CTRL_VLAN = 19;
    public static final int GUEST_ANNOUNCE = 21;
    public static final int MQ = 22;
    public static final int CTRL_MAC_ADDR = 23;

    /** The offloads a driver may switch at run time with CTRL_GUEST_OFFLOADS (§5.1.6.5.6.1). */
    public static final long GUEST_OFFLOAD_MASK = VirtioFeatures.bit(GUEST_CSUM) | VirtioFeatures.bit(GUEST_TSO4)
            | VirtioFeatures.bit(GUEST_TSO6) | VirtioFeatures.bit(GUEST_ECN) | VirtioFeatures.bit(GUEST_UFO);

    public static final Map<Integer, String> NAMES = Map.ofEntries(
            Map.entry(CSUM, "CSUM"), Map.entry(GUEST_CSUM, "GUEST_CSUM"), Map.entry(CTRL_GUEST_OFFLOADS, "CTRL_GUEST_OFFLOADS"),
            Map.entry(MTU, "MTU"), Map.entry(MAC, "MAC"), Map.entry(GUEST_TSO4, "GUEST_TSO4"), Map.entry(GUEST_TSO6, "GUEST_TSO6"),
            Map.entry(GUEST_ECN, "GUEST_ECN"), Map.entry(GUEST_UFO, "GUEST_UFO"), Map.entry(HOST_TSO4, "HOST_TSO4"),
            Map.entry(HOST_TSO6, "HOST_TSO6"), Map.entry(HOST_ECN, "HOST_ECN"), Map.entry(HOST_UFO, "HOST_UFO"),
            Map.entry(MRG_RXBUF, "MRG_RXBUF"), Map.entry(STATUS, "STATUS"), Map.entry(CTRL_VQ, "CTRL_VQ"),
            Map.entry(CTRL_RX, "CTRL_RX"), Map.entry(CTRL_VLAN, "CTRL_VLAN"), Map.entry(GUEST_ANNOUNCE, "GUEST_ANNOUNCE"),
            Map.entry(MQ, "MQ"), Map.entry(CTRL_MAC_ADDR, "CTRL_MAC_ADDR"));

    /** {feature, what it needs (any of)} — §5.1.3.1. */
    private static final int[][] REQUIRES = {
            {GUEST_TSO4, GUEST_CSUM}, {GUEST_TSO6, GUEST_CSUM}, {GUEST_ECN, GUEST_TSO4, GUEST_TSO6}, {GUEST_UFO, GUEST_CSUM},
            {HOST_TSO4, CSUM}, {HOST_TSO6, CSUM}, {HOST_ECN, HOST_TSO4, HOST_TSO6}, {HOST_UFO, CSUM},
            {CTRL_RX, CTRL_VQ}, {CTRL_VLAN, CTRL_VQ}, {GUEST_ANNOUNCE, CTRL_VQ}, {MQ, CTRL_VQ}, {CTRL_MAC_ADDR, CTRL_VQ},
            {CTRL_GUEST_OFFLOADS, CTRL_VQ},
    };

    private NetFeatures() {
    }

    /** Whether {@code features} has the rule's feature without any of what it needs. */
    private static boolean broken(int[] rule, long features) {
        if (!VirtioFeatures.has(features, rule[0])) {
            return false;
        }
        for (int i = 1; i < rule.length; i++) {
            if (VirtioFeatures.has(features, rule[i])) {
                return false;
            }
        }
        return true;
    }

    /** Names of the bits in {@code features}, transport and net. */
    public static List<String> names(long features) {
        return VirtioFeatures.names(features, NAMES);
    }

    /** Why a feature set breaks a dependency of §5.1.3.1, or null if it does not. */
    public static String dependencyProblem(long features) {
        for (int[] rule : REQUIRES) {
            if (broken(rule, features)) {
                StringBuilder need = new StringBuilder();
                for (int i = 1; i < rule.length; i++) {
                    need.append(i > 1 ? " or " : "").append(NAMES.get(rule[i]));
                }
                return NAMES.get(rule[0]) + " requires " + need + " (virtio 1.2 §5.1.3.1)";
            }
        }
        return null;
    }

    /** Drops offered features whose requirements are not offered, until the set is closed. */
    public static long closeOverDependencies(long features) {
        long prev;
        do {
            prev = features;
            for (int[] rule : REQUIRES) {
                if (broken(rule, features)) {
                    features &= ~VirtioFeatures.bit(rule[0]);
                }
            }
        } while (features != prev);
        return features;
    }
}
