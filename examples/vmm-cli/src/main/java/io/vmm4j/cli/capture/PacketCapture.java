package io.vmm4j.cli.capture;

import io.vmm4j.tap.PcapWriter;
import io.vmm4j.vhost.emulated.EmulatedNetBackend;
import io.vmm4j.vhost.engine.FrameObserver;
import io.vmm4j.virtio.net.NetBackend;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.time.Instant;
import java.util.function.Supplier;

/**
 * Packet capture of the NIC into a pcap file ({@code --pcap FILE}, QMP {@code x-vmm4j-pcap}):
 * every frame the device sends or receives, without the virtio-net header. It observes the
 * emulated data plane, the only one whose frames pass through the VMM; with vhost-net or
 * vhost-user they move in the kernel or in another process, and starting a capture says so.
 */
public final class PacketCapture implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(PacketCapture.class);

    /** Thrown when a capture cannot start or stop; the message says why and what to do. */
    public static final class CaptureException extends RuntimeException {
        public CaptureException(String message) {
            super(message);
        }
    }

    /** Where a capture writes and how many frames it wrote; {@code file} is null when none runs. */
    public record Status(Path file, long frames) {
    }

    private final Supplier<NetBackend> backend;
    private PcapWriter writer;
    private EmulatedNetBackend observed;
    private long lastFrames;
    private long closedFrames;
    private Path lastFile;

    /** @param backend the NIC's current data plane (it may be switched while the VM runs) */
    public PacketCapture(Supplier<NetBackend> backend) {
        this.backend = backend;
    }

    /** Starts writing every frame to {@code file} (created or truncated). */
    public synchronized Status start(Path file) {
        if (writer != null) {
            throw new CaptureException("a capture is already writing to " + writer.path() + "; stop it first");
        }
        NetBackend current = backend.get();
        if (!(current instanceof EmulatedNetBackend emulated)) {
            throw new CaptureException("packet capture needs the emulated data plane, but this NIC runs on " + current.name()
                    + ": its frames move between the rings and the tap " + (current.name().equals("vhost-user")
                    ? "in the vhost-user backend process" : "in the kernel")
                    + " and never pass through the VMM. Capture on the tap instead (tshark -i TAP), or run with --backend emulated");
        }
        PcapWriter w;
        try {
            w = PcapWriter.create(file);
        } catch (UncheckedIOException e) {
            throw new CaptureException(e.getMessage());
        }
        writer = w;
        observed = emulated;
        emulated.setFrameObserver(new Observer(w));
        LOG.debug("capturing frames into {}", file);
        return new Status(w.path(), 0);
    }

    /** Stops the capture and closes the file; returns what it wrote. */
    public synchronized Status stop() {
        if (writer == null) {
            throw new CaptureException("no capture is running; start one with a file");
        }
        observed.setFrameObserver(null); // when this returns no worker is inside the observer for a new frame
        PcapWriter w = writer;
        writer = null;
        observed = null;
        w.close();
        lastFrames = w.frames();
        lastFile = w.path();
        closedFrames += lastFrames;
        return new Status(w.path(), lastFrames);
    }

    /** The running capture, or the last one (with its final count) when none runs. */
    public synchronized Status status() {
        return writer != null ? new Status(writer.path(), writer.frames()) : new Status(null, lastFrames);
    }

    /** Frames written by the running capture, or by the last one. */
    public synchronized long frames() {
        return writer != null ? writer.frames() : lastFrames;
    }

    /** Frames written by every capture so far (a counter: it never goes down). */
    public synchronized long totalFrames() {
        return closedFrames + (writer != null ? writer.frames() : 0);
    }

    public synchronized Path lastFile() {
        return writer != null ? writer.path() : lastFile;
    }

    public synchronized boolean running() {
        return writer != null;
    }

    @Override
    public synchronized void close() {
        if (writer != null) {
            stop();
        }
    }

    private final class Observer implements FrameObserver {
        private final PcapWriter out;

        Observer(PcapWriter out) {
            this.out = out;
        }

        @Override
        public void frame(int pair, Direction direction, MemorySegment frame, long wireLength) {
            try {
                out.write(Instant.now(), frame, wireLength);
            } catch (UncheckedIOException e) {
                LOG.error("packet capture stopped: {}", e.getMessage());
                Thread.ofVirtual().start(() -> {
                    synchronized (PacketCapture.this) {
                        if (writer == out) {
                            stop();
                        }
                    }
                });
            }
        }
    }
}
