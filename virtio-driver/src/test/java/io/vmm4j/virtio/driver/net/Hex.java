package io.vmm4j.virtio.driver.net;

import java.util.HexFormat;

/** Hex text to bytes for frames written out in tests; spaces, newlines and {@code |} separators are ignored. */
final class Hex {
    private Hex() {
    }

    static byte[] bytes(String text) {
        return HexFormat.of().parseHex(text.replaceAll("[\\s|]", ""));
    }

    static String of(byte[] bytes) {
        return HexFormat.of().formatHex(bytes);
    }
}
