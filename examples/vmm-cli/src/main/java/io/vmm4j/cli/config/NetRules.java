package io.vmm4j.cli.config;

import java.nio.charset.StandardCharsets;
import java.util.OptionalInt;

/**
 * What an IPv4 address, an address with a prefix, a MAC address or a Linux interface name may be,
 * for any command that takes one ({@code ./vmm run}, the vhost-user back-end, ...). Each check
 * returns null when the value is fine, else a sentence that quotes the value (control characters
 * escaped) and says why it is refused and what is allowed; the caller puts the flag or the JSON
 * path in front.
 */
public final class NetRules {
    /** include/uapi/linux/if.h: IFNAMSIZ is 16 bytes with the terminating NUL, so a name has at most 15. */
    public static final int MAX_INTERFACE_NAME_BYTES = 15;
    /** Prefix lengths that leave room for the host side, the guest and a broadcast address in one subnet. */
    public static final int MIN_PREFIX = 1;
    public static final int MAX_PREFIX = 30;

    private static final String INTERFACE_NAME_RULE = "an interface name is 1 to " + MAX_INTERFACE_NAME_BYTES
            + " printable ASCII characters without '/', ':' or whitespace, and not '.' or '..' (Linux IFNAMSIZ and dev_valid_name)";
    private static final String UNICAST_EXAMPLE = "allowed: a unicast IPv4 address like 10.0.2.15";

    private NetRules() {
    }

    /** An IPv4 subnet: the network address (host bits zero) and the prefix length. */
    public record Subnet(int network, int prefix) {
        public static Subnet of(int address, int prefix) {
            return new Subnet(address & mask(prefix), prefix);
        }

        public boolean contains(int address) {
            return (address & mask(prefix)) == network;
        }

        /** The all-ones host part: the subnet's directed broadcast address (RFC 919, RFC 922). */
        public int broadcast() {
            return network | ~mask(prefix);
        }

        private static int mask(int prefix) {
            return prefix == 0 ? 0 : -1 << (32 - prefix);
        }

        @Override
        public String toString() {
            return format(network) + "/" + prefix;
        }
    }

    /** The address as a 32-bit value (network order read as an int), or empty if {@code s} is not four decimal numbers 0..255. */
    public static OptionalInt parseIpv4(String s) {
        String[] parts = s.split("\\.", -1);
        if (parts.length != 4) {
            return OptionalInt.empty();
        }
        int value = 0;
        for (String p : parts) {
            if (!p.matches("[0-9]{1,3}") || Integer.parseInt(p) > 255) {
                return OptionalInt.empty();
            }
            value = value << 8 | Integer.parseInt(p);
        }
        return OptionalInt.of(value);
    }

    public static String format(int address) {
        return (address >>> 24) + "." + (address >>> 16 & 0xFF) + "." + (address >>> 8 & 0xFF) + "." + (address & 0xFF);
    }

    /**
     * An address a host on the virtual link can own or be pinged at: not unspecified, loopback,
     * multicast, broadcast or reserved (RFC 1122 §3.2.1.3, RFC 6890).
     */
    public static String unicastIpv4(String value) {
        OptionalInt parsed = parseIpv4(value);
        if (parsed.isEmpty()) {
            return quoted(value) + " is not an IPv4 address; " + UNICAST_EXAMPLE + " (four numbers 0..255)";
        }
        String why = notUnicast(parsed.getAsInt());
        return why == null ? null : quoted(value) + " is " + why + "; " + UNICAST_EXAMPLE;
    }

    /** Why {@code a} cannot be a host's address, or null if it can. */
    private static String notUnicast(int a) {
        int first = a >>> 24;
        if (a == 0) {
            return "the unspecified address ('any'), which no host can be reached at";
        }
        if (a == -1) {
            return "the limited broadcast address (every host on the link)";
        }
        if (first == 0) {
            return "in 0.0.0.0/8 ('this network', RFC 1122 3.2.1.3), which no host may use as its address";
        }
        if (first == 127) {
            return "a loopback address (127.0.0.0/8): it never leaves a host, so it is not on the virtual link";
        }
        if (first >= 224 && first <= 239) {
            return "a multicast address (224.0.0.0/4), not one host's";
        }
        if (first >= 240) {
            return "in the reserved block 240.0.0.0/4 (RFC 1112), which hosts do not use";
        }
        return null;
    }

    /**
     * A host's address with an optional prefix, like {@code 10.0.2.2/24} ({@code defaultPrefix}
     * without one): a unicast address that is neither the network nor the broadcast address of its
     * subnet, and a prefix of {@value #MIN_PREFIX} to {@value #MAX_PREFIX}.
     */
    public static String hostWithPrefix(String value, int defaultPrefix) {
        String allowed = "allowed: ADDRESS/PREFIX with a prefix of " + MIN_PREFIX + " to " + MAX_PREFIX + " like 10.0.2.2/24 (no /PREFIX: /"
                + defaultPrefix + ")";
        int slash = value.indexOf('/');
        String address = slash < 0 ? value : value.substring(0, slash);
        OptionalInt parsed = parseIpv4(address);
        if (parsed.isEmpty()) {
            return quoted(value) + ": " + quoted(address) + " is not an IPv4 address; " + allowed;
        }
        int prefix = defaultPrefix;
        if (slash >= 0) {
            String p = value.substring(slash + 1);
            if (!p.matches("[0-9]{1,2}")) {
                return quoted(value) + ": the prefix " + quoted(p) + " is not a number; " + allowed;
            }
            prefix = Integer.parseInt(p);
            if (prefix < MIN_PREFIX || prefix > MAX_PREFIX) {
                return quoted(value) + ": a /" + prefix + " prefix "
                        + (prefix == 0 ? "would put every address on the link" : "leaves no address for the guest next to the host")
                        + "; " + allowed;
            }
        }
        String why = notUnicast(parsed.getAsInt());
        if (why != null) {
            return quoted(value) + ": " + address + " is " + why + "; " + allowed;
        }
        Subnet subnet = Subnet.of(parsed.getAsInt(), prefix);
        if (parsed.getAsInt() == subnet.network()) {
            return quoted(value) + ": " + address + " is the network address of " + subnet + " (host part all zeros); allowed: an address "
                    + "inside it like " + format(subnet.network() + 1) + "/" + prefix;
        }
        if (parsed.getAsInt() == subnet.broadcast()) {
            return quoted(value) + ": " + address + " is the broadcast address of " + subnet + " (host part all ones); allowed: an address "
                    + "inside it like " + format(subnet.network() + 1) + "/" + prefix;
        }
        return null;
    }

    /** The subnet of a value that {@link #hostWithPrefix} accepted. */
    public static Subnet subnetOf(String hostWithPrefix, int defaultPrefix) {
        int slash = hostWithPrefix.indexOf('/');
        String address = slash < 0 ? hostWithPrefix : hostWithPrefix.substring(0, slash);
        int prefix = slash < 0 ? defaultPrefix : Integer.parseInt(hostWithPrefix.substring(slash + 1));
        return Subnet.of(parseIpv4(address).orElseThrow(), prefix);
    }

    /**
     * A NIC's own MAC address: six hex bytes, unicast (the I/G bit, bit 0 of the first byte, is
     * clear: IEEE 802 §8.2) and not all zeros.
     */
    public static String mac(String value) {
        String example = "like 52:54:00:12:34:56";
        String[] parts = value.split(":", -1);
        boolean ok = parts.length == 6;
        for (int i = 0; ok && i < 6; i++) {
            ok = parts[i].matches("[0-9a-fA-F]{2}");
        }
        if (!ok) {
            return quoted(value) + " is not a MAC address; allowed: six hex bytes separated by colons, " + example;
        }
        if (value.equalsIgnoreCase("ff:ff:ff:ff:ff:ff")) {
            return quoted(value) + " is the broadcast address; allowed: a unicast MAC (even first byte), " + example;
        }
        if ((Integer.parseInt(parts[0], 16) & 1) != 0) {
            return quoted(value) + " is a multicast address (the I/G bit of the first byte is set); allowed: a unicast MAC "
                    + "(even first byte), " + example;
        }
        if (value.equals("00:00:00:00:00:00")) {
            return quoted(value) + " is the all-zero address, which no NIC may have; allowed: a unicast MAC (even first byte), " + example;
        }
        return null;
    }

    /**
     * A Linux network interface name. The kernel's rule (net/core/dev.c, dev_valid_name) is at most
     * 15 bytes, no '/', ':' or whitespace, not "." or ".."; a NUL cannot be passed at all. Control
     * characters and non-ASCII bytes are refused too: they pass the kernel but not every tool, and
     * a name has to be typed again to be used.
     */
    public static String interfaceName(String value) {
        String problem = interfaceNameProblem(value);
        return problem == null ? null : quoted(value) + " " + problem + "; " + INTERFACE_NAME_RULE;
    }

    private static String interfaceNameProblem(String value) {
        if (value.isEmpty()) {
            return "is empty";
        }
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c == 0) {
                return "contains a NUL character at index " + i;
            }
            if (c == '/' || c == ':') {
                return "contains '" + c + "' at index " + i;
            }
            if (Character.isWhitespace(c) || Character.isSpaceChar(c)) {
                return "contains whitespace (" + unicode(c) + ") at index " + i;
            }
            if (c < 0x20 || c == 0x7F) {
                return "contains a control character (" + unicode(c) + ") at index " + i;
            }
            if (c > 0x7E) {
                return "contains a non-ASCII character (" + unicode(c) + ") at index " + i;
            }
        }
        if (value.equals(".") || value.equals("..")) {
            return "is reserved (a path component)";
        }
        int bytes = value.getBytes(StandardCharsets.UTF_8).length;
        if (bytes > MAX_INTERFACE_NAME_BYTES) {
            return "is " + bytes + " bytes long";
        }
        return null;
    }

    /** The value in single quotes, with control and other invisible characters written as \\uXXXX so that a message shows them. */
    public static String quoted(String value) {
        StringBuilder b = new StringBuilder("'");
        value.codePoints().forEach(c -> {
            if (c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0) || Character.getType(c) == Character.FORMAT
                    || (Character.isSpaceChar(c) && c != ' ')) {
                b.append(String.format("\\u%04X", c));
            } else {
                b.appendCodePoint(c);
            }
        });
        return b.append('\'').toString();
    }

    private static String unicode(char c) {
        return String.format("U+%04X", (int) c);
    }
}
