package io.vmm4j.cli.metrics;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The Prometheus scrape endpoint ({@code --metrics ADDR:PORT}): {@code GET /metrics} answers with
 * the registry in the Prometheus text format 0.0.4.
 *
 * <p>The JDK's own HTTP server ({@code com.sun.net.httpserver}, module jdk.httpserver) rather than
 * Netty's HTTP codec: a scrape is one small GET every few seconds, with no TLS, streaming or
 * keep-alive tuning to speak of, and this server is in every JDK, so the endpoint adds no
 * dependency and no pipeline to maintain. Netty stays where its channel model pays (the QMP socket).
 */
public final class MetricsEndpoint implements AutoCloseable {
    public static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

    private final HttpServer server;
    private final ExecutorService executor;

    private MetricsEndpoint(HttpServer server, ExecutorService executor) {
        this.server = server;
        this.executor = executor;
    }

    /** Listens on {@code address} (port 0: any free port; {@link #address()} says which). */
    public static MetricsEndpoint start(InetSocketAddress address, PrometheusMeterRegistry registry) {
        String unreachable = ListenFailure.loopbackDown(address);
        if (unreachable != null) {
            throw new UncheckedIOException("--metrics " + hostAndPort(address) + ": cannot listen there: " + unreachable,
                    new BindException(unreachable));
        }
        HttpServer server;
        try {
            server = HttpServer.create(address, 16);
        } catch (IOException e) {
            int errno = ListenFailure.bindErrno(address);
            String why = errno != 0 ? ListenFailure.explain(address, errno)
                    : e.getMessage() + " (the address can be bound again now: try once more)";
            throw new UncheckedIOException("--metrics " + hostAndPort(address) + ": cannot listen there: " + why, e);
        }
        ExecutorService executor = Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().name("metrics-http").daemon().unstarted(r));
        server.setExecutor(executor);
        server.createContext("/metrics", exchange -> {
            try (exchange) {
                String method = exchange.getRequestMethod();
                if (!method.equals("GET") && !method.equals("HEAD")) {
                    exchange.getResponseHeaders().set("Allow", "GET, HEAD");
                    reply(exchange, 405, "text/plain; charset=utf-8", "use GET /metrics\n", false);
                    return;
                }
                reply(exchange, 200, CONTENT_TYPE, registry.scrape(), method.equals("HEAD"));
            }
        });
        server.createContext("/", exchange -> {
            try (exchange) {
                reply(exchange, 404, "text/plain; charset=utf-8", "vmm4j: the metrics are at /metrics\n", false);
            }
        });
        server.start();
        return new MetricsEndpoint(server, executor);
    }

    private static void reply(HttpExchange exchange, int status, String type, String body, boolean headOnly) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", type);
        exchange.sendResponseHeaders(status, headOnly ? -1 : bytes.length);
        if (!headOnly) {
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        }
    }

    /** Where it listens (the real port when started with port 0). */
    public InetSocketAddress address() {
        return server.getAddress();
    }

    /** The scrape URL, for the boot log. */
    public String url() {
        return "http://" + hostAndPort(address()) + "/metrics";
    }

    private static String hostAndPort(InetSocketAddress a) {
        String host = a.getAddress().getHostAddress();
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + a.getPort();
    }

    @Override
    public void close() {
        server.stop(0);
        executor.shutdownNow();
    }
}
