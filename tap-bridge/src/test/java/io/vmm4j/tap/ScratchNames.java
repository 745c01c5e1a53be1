package io.vmm4j.tap;

import java.util.HexFormat;
import java.util.concurrent.ThreadLocalRandom;

/** Names for the links and namespaces tests create: "vt", a role letter, 6 random hex digits (at most 9 chars). */
final class ScratchNames {
    private ScratchNames() {
    }

    static String tap() {
        return random('t');
    }

    static String bridge() {
        return random('b');
    }

    static String namespace() {
        return random('n');
    }

    private static String random(char role) {
        byte[] suffix = new byte[3];
        ThreadLocalRandom.current().nextBytes(suffix);
        return "vt" + role + HexFormat.of().formatHex(suffix);
    }
}
