package io.vmm4j.cli.metrics;

import io.vmm4j.cli.config.NetRules;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;

/** Parses {@code --metrics}: {@code ADDR:PORT}, {@code [IPV6]:PORT}, or just {@code PORT} (or {@code :PORT}) on 127.0.0.1. */
public final class MetricsAddress {
    public static final String DEFAULT_HOST = "127.0.0.1";

    private MetricsAddress() {
    }

    public static InetSocketAddress parse(String text) {
        String s = text.strip();
        String host = DEFAULT_HOST;
        String port = s;
        if (s.startsWith("[")) {
            int close = s.indexOf("]:");
            if (close < 0) {
                throw bad(text, "an IPv6 address needs brackets and a port, like [::1]:9464");
            }
            host = s.substring(1, close);
            port = s.substring(close + 2);
        } else if (s.contains(":")) {
            int colon = s.lastIndexOf(':');
            if (s.indexOf(':') != colon) {
                throw bad(text, "write an IPv6 address in brackets, like [::1]:9464");
            }
            if (colon > 0) {
                host = s.substring(0, colon);
            }
            port = s.substring(colon + 1);
        }
        int p;
        try {
            p = Integer.parseInt(port);
        } catch (NumberFormatException e) {
            throw bad(text, "the port '" + port + "' is not a number");
        }
        if (p < 0 || p > 65535) {
            throw bad(text, "the port " + p + " is out of range 0..65535");
        }
        try {
            return new InetSocketAddress(InetAddress.getByName(host), p);
        } catch (UnknownHostException e) {
            throw bad(text, "unknown host '" + host + "'");
        }
    }

    /** The message reads as a sentence after the flag or the JSON path: the value, what is wrong, what is allowed. */
    private static IllegalArgumentException bad(String text, String why) {
        return new IllegalArgumentException(NetRules.quoted(text) + ": " + why + "; allowed: ADDR:PORT like 127.0.0.1:9464 or "
                + "[::1]:9464, or a port alone for " + DEFAULT_HOST + " (0: any free port)");
    }
}
