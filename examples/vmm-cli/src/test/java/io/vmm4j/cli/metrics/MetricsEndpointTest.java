package io.vmm4j.cli.metrics;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.junit.jupiter.api.Test;

import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.ServerSocket;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** {@code --metrics} that cannot listen: the message says what is wrong with the address (from bind's errno) and what to do. */
class MetricsEndpointTest {
    private static final PrometheusMeterRegistry REGISTRY = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);

    @Test
    void aTakenPortIsNamedAsTaken() throws Exception {
        try (ServerSocket other = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            int port = other.getLocalPort();
            UncheckedIOException e = assertThrows(UncheckedIOException.class,
                    () -> MetricsEndpoint.start(new InetSocketAddress("127.0.0.1", port), REGISTRY));
            assertEquals("--metrics 127.0.0.1:" + port + ": cannot listen there: port " + port + " on 127.0.0.1 is taken by another socket "
                    + "(ss -ltnp 'sport = :" + port + "' shows whose); choose another port, or 0 for any free port", e.getMessage());
        }
    }

    @Test
    void anAddressThisHostDoesNotHaveIsNamedAsSuch() throws Exception {
        InetAddress absent = InetAddress.getByName("198.51.100.7"); // RFC 5737 TEST-NET-2: documentation only
        assumeTrue(NetworkInterface.getByInetAddress(absent) == null, "this host has 198.51.100.7");
        InetSocketAddress address = new InetSocketAddress(absent, 9464);
        assumeTrue(ListenFailure.bindErrno(address) != 0, "this network namespace lets any address be bound (it has no address yet)");
        UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> MetricsEndpoint.start(address, REGISTRY));
        assertEquals("--metrics 198.51.100.7:9464: cannot listen there: 198.51.100.7 is not configured on any interface here "
                + "(ip -br addr lists the addresses this host has: use one of them, 0.0.0.0 for all, or 127.0.0.1)", e.getMessage());
    }

    @Test
    void eachErrnoReadsAsWhatToDo() throws Exception {
        InetSocketAddress loopback = new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 80);
        assertEquals("127.0.0.1 is not configured on any interface here (is loopback up? ip link set lo up; a new network namespace "
                + "starts with lo down)", ListenFailure.explain(loopback, 99));
        assertTrue(ListenFailure.explain(loopback, 13).startsWith("port 80 is below "), ListenFailure.explain(loopback, 13));
        assertTrue(ListenFailure.explain(loopback, 13).contains("(net.ipv4.ip_unprivileged_port_start), so listening on it needs "
                + "CAP_NET_BIND_SERVICE"), ListenFailure.explain(loopback, 13));
        assertTrue(ListenFailure.explain(loopback, 101).startsWith("the network of 127.0.0.1 is unreachable from here (ip route"));
        assertEquals("EMFILE (Too many open files)", ListenFailure.explain(loopback, 24), "others: the errno and its text");
    }

    @Test
    void aFreeAddressIsServed() {
        try (MetricsEndpoint endpoint = MetricsEndpoint.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), REGISTRY)) {
            assertTrue(endpoint.url().matches("http://127\\.0\\.0\\.1:\\d+/metrics"), endpoint.url());
            assertEquals(0, ListenFailure.bindErrno(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0)), "a free address binds");
            assertEquals(98, ListenFailure.bindErrno(endpoint.address()), "EADDRINUSE: the endpoint holds its port");
        }
    }
}
