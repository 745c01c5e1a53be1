package io.vmm4j.cli.metrics;

import io.vmm4j.core.linux.Errno;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.linux.LinuxException;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.Inet6Address;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * Why a TCP address cannot be listened on, in words that say what to do. The JDK reports a failed
 * bind as a BindException carrying only strerror's text (in the C library's locale), so the
 * errno is read back by binding the address once more through bind(2) itself, then mapped.
 */
final class ListenFailure {
    // sys/socket.h, netinet/in.h (x86-64)
    private static final int AF_INET = 2;
    private static final int AF_INET6 = 10;
    private static final int EADDRNOTAVAIL = 99;
    private static final int ENETUNREACH = 101;
    private static final int EAFNOSUPPORT = 97;
    private static final String LOOPBACK_HINT = " (is loopback up? ip link set lo up; a new network namespace starts with lo down)";
    private static final Path UNPRIVILEGED_PORT_START = Path.of("/proc/sys/net/ipv4/ip_unprivileged_port_start");

    private ListenFailure() {
    }

    /** The errno that bind(2) of {@code address} returns now, or 0 if the bind succeeds (then the socket is closed again). */
    static int bindErrno(InetSocketAddress address) {
        boolean v6 = address.getAddress() instanceof Inet6Address;
        int fd;
        try {
            fd = LibC.socket(v6 ? AF_INET6 : AF_INET, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC);
        } catch (LinuxException e) {
            return e.errno();
        }
        try (Arena arena = Arena.ofConfined()) {
            byte[] ip = address.getAddress().getAddress();
            MemorySegment sa;
            if (v6) {
                // struct sockaddr_in6: family, port (big-endian), flowinfo, 16-byte address, scope id
                sa = arena.allocate(28);
                MemorySegment.copy(ip, 0, sa, JAVA_BYTE, 8, 16);
                sa.set(JAVA_INT, 24, ((Inet6Address) address.getAddress()).getScopeId());
            } else {
                // struct sockaddr_in: family, port (big-endian), 4-byte address, 8 bytes of zero
                sa = arena.allocate(16);
                MemorySegment.copy(ip, 0, sa, JAVA_BYTE, 4, 4);
            }
            sa.set(JAVA_SHORT, 0, (short) (v6 ? AF_INET6 : AF_INET));
            sa.set(JAVA_BYTE, 2, (byte) (address.getPort() >> 8));
            sa.set(JAVA_BYTE, 3, (byte) address.getPort());
            LibC.bind(fd, sa, address.toString());
            return 0;
        } catch (LinuxException e) {
            return e.errno();
        } finally {
            LibC.closeQuietly(fd);
        }
    }

    /**
     * Why nothing could connect to a loopback {@code address} even if it can be bound, or null: no
     * loopback interface is up. (In a network namespace that never had an address, Linux lets any
     * address be bound, so the bind alone does not tell.)
     */
    static String loopbackDown(InetSocketAddress address) {
        if (!address.getAddress().isLoopbackAddress()) {
            return null;
        }
        try {
            for (NetworkInterface i : Collections.list(NetworkInterface.getNetworkInterfaces())) {
                if (i.isLoopback() && i.isUp()) {
                    return null;
                }
            }
        } catch (SocketException e) {
            return null; // cannot tell: let the bind decide
        }
        return "the loopback interface is down, so nothing can connect to " + address.getAddress().getHostAddress()
                + " (ip link set lo up; a new network namespace starts with lo down)";
    }

    /** What is wrong with listening on {@code address}, given the errno of its bind, and what to do about it. */
    static String explain(InetSocketAddress address, int errno) {
        String host = address.getAddress().getHostAddress();
        int port = address.getPort();
        return switch (errno) {
            case EADDRNOTAVAIL -> host + " is not configured on any interface here" + (address.getAddress().isLoopbackAddress()
                    ? LOOPBACK_HINT
                    : " (ip -br addr lists the addresses this host has: use one of them, 0.0.0.0 for all, or 127.0.0.1)");
            case Errno.EADDRINUSE -> "port " + port + " on " + host + " is taken by another socket (ss -ltnp 'sport = :" + port
                    + "' shows whose); choose another port, or 0 for any free port";
            case Errno.EACCES -> {
                int first = unprivilegedPortStart();
                yield "port " + port + " is below " + first + " (net.ipv4.ip_unprivileged_port_start), so listening on it needs "
                        + "CAP_NET_BIND_SERVICE, which this process lacks; choose a port from " + first + " up, or 0 for any free port";
            }
            case ENETUNREACH -> "the network of " + host + " is unreachable from here (ip route shows the routes); use an address "
                    + "of this host, 0.0.0.0 for all, or 127.0.0.1";
            case EAFNOSUPPORT -> "this host has no " + (address.getAddress() instanceof Inet6Address ? "IPv6" : "IPv4")
                    + " (is it disabled?); use an address of the other family, like 127.0.0.1 or [::1]";
            default -> Errno.name(errno) + " (" + Errno.describe(errno) + ")";
        };
    }

    private static int unprivilegedPortStart() {
        // one read(2): a sysctl file answers only a read at offset 0, and Files.readString reads its first byte alone
        try (InputStream in = Files.newInputStream(UNPRIVILEGED_PORT_START)) {
            return Integer.parseInt(new String(in.readNBytes(32), StandardCharsets.US_ASCII).strip());
        } catch (IOException | NumberFormatException e) {
            return 1024; // the kernel's default (include/net/sock.h PROT_SOCK)
        }
    }
}
