package io.vmm4j.cli;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vmm4j.cli.capture.PacketCapture;
import io.vmm4j.cli.metrics.MetricsAddress;
import io.vmm4j.cli.metrics.MetricsEndpoint;
import io.vmm4j.cli.metrics.VmMetrics;
import io.vmm4j.cli.qmp.QmpServer;
import io.vmm4j.cli.qmp.VmCommands;
import io.vmm4j.cli.qmp.VmEvents;
import io.vmm4j.cli.vm.ToyVm;
import io.vmm4j.vhost.BackendConnectionListener;

import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.file.Path;

/**
 * Management and observability around a {@link ToyVm}: the QMP control socket, the Prometheus
 * endpoint and packet capture, each only when asked for. Start it after the VM is built and
 * before it runs; close it before the VM.
 */
public final class Management implements AutoCloseable {
    /**
     * @param qmp     control socket path, or null
     * @param metrics {@code ADDR:PORT} for the scrape endpoint, or null
     * @param pcap    file to capture the NIC's frames into from boot on, or null
     */
    public record Settings(Path qmp, String metrics, Path pcap) {
        public static final Settings NONE = new Settings(null, null, null);
    }

    private final PacketCapture capture;
    private final VmEvents events = new VmEvents();
    private MetricsEndpoint metrics;
    private QmpServer qmp;

    private Management(PacketCapture capture) {
        this.capture = capture;
    }

    /** The registry the VM's meters go to: a Prometheus one when the endpoint is asked for. */
    public static MeterRegistry registry(Settings settings) {
        return settings.metrics() != null ? new PrometheusMeterRegistry(PrometheusConfig.DEFAULT) : new SimpleMeterRegistry();
    }

    /** Checks what can be checked before the VM is built (the metrics address). */
    public static void validate(Settings settings) {
        if (settings.metrics() != null) {
            MetricsAddress.parse(settings.metrics());
        }
    }

    public static Management start(ToyVm vm, Settings settings, MeterRegistry registry, PrintStream log) {
        Management m = new Management(new PacketCapture(() -> vm.net().backend()));
        try {
            m.events.attach(vm);
            vm.setBackendConnectionListener(m.events);
            VmMetrics.register(registry, vm, m.capture);
            if (settings.pcap() != null) {
                Path file = settings.pcap().toAbsolutePath();
                try {
                    m.capture.start(file);
                } catch (PacketCapture.CaptureException e) {
                    throw new ToyVm.VmException("--pcap " + settings.pcap() + ": " + e.getMessage());
                }
                log.printf("vmm4j: capturing the NIC's frames into %s (pcap)%n", file);
            }
            if (settings.metrics() != null) {
                InetSocketAddress address = MetricsAddress.parse(settings.metrics());
                if (!(registry instanceof PrometheusMeterRegistry prometheus)) {
                    throw new IllegalArgumentException("--metrics needs the registry from Management.registry(settings)");
                }
                m.metrics = MetricsEndpoint.start(address, prometheus);
                log.printf("vmm4j: metrics at %s (Prometheus text format)%n", m.metrics.url());
            }
            if (settings.qmp() != null) {
                m.qmp = QmpServer.start(settings.qmp(), VmCommands.version(), new VmCommands(vm, m.capture, m.events).all());
                m.events.publishTo(m.qmp);
                log.printf("vmm4j: QMP control socket at %s (mode 0600; try: socat - UNIX-CONNECT:%s)%n", m.qmp.path(), m.qmp.path());
            }
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
        return m;
    }

    /** What a data plane outside the VMM (vhost-user) calls when it connects or goes away: QMP events. */
    public BackendConnectionListener backendConnections() {
        return events;
    }

    public PacketCapture capture() {
        return capture;
    }

    /** The VM's guest stopped: tells QMP clients (SHUTDOWN) before the socket closes. */
    public void vmStopped() {
        events.vmStopped();
    }

    @Override
    public void close() {
        if (qmp != null) {
            qmp.close();
            qmp = null;
        }
        if (metrics != null) {
            metrics.close();
            metrics = null;
        }
        capture.close();
    }
}
