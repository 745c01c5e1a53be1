package io.vmm4j.tap;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;

/**
 * Writes Ethernet frames to a file in the classic libpcap format (what tcpdump -w writes and
 * tshark, Wireshark and tcpdump read): a 24-byte global header with LINKTYPE_ETHERNET, then per
 * frame a 16-byte record header (seconds, microseconds, captured and original length) and the
 * frame, starting at the destination MAC. Frames carry no virtio-net header here; the caller
 * strips it. Little-endian, microsecond timestamps (magic 0xa1b2c3d4).
 *
 * <p>Thread-safe: the data plane's I/O threads (one per queue pair) may write concurrently. Each
 * record reaches the file before {@link #write} returns, so the file is readable while capturing.
 */
public final class PcapWriter implements AutoCloseable {
    public static final int MAGIC_MICROSECONDS = 0xA1B2_C3D4;
    public static final int LINKTYPE_ETHERNET = 1;
    /** Enough for a 64 KiB GSO frame plus Ethernet and VLAN headers; longer frames are truncated (orig_len keeps the truth). */
    public static final int DEFAULT_SNAPLEN = 262_144;
    private static final int GLOBAL_HEADER = 24;
    private static final int RECORD_HEADER = 16;

    private final Path path;
    private final FileChannel file;
    private final int snaplen;
    private final ByteBuffer record;
    private final MemorySegment recordBytes;
    private long frames;
    private boolean closed;

    private PcapWriter(Path path, FileChannel file, int snaplen) {
        this.path = path;
        this.file = file;
        this.snaplen = snaplen;
        this.record = ByteBuffer.allocateDirect(RECORD_HEADER + snaplen).order(ByteOrder.LITTLE_ENDIAN);
        this.recordBytes = MemorySegment.ofBuffer(record); // taken at position 0: the whole buffer
    }

    /** Creates (or truncates) {@code path} and writes the global header. */
    public static PcapWriter create(Path path) {
        return create(path, DEFAULT_SNAPLEN);
    }

    public static PcapWriter create(Path path, int snaplen) {
        if (snaplen < 64 || snaplen > DEFAULT_SNAPLEN) {
            throw new IllegalArgumentException("pcap snaplen must be 64.." + DEFAULT_SNAPLEN + ", was " + snaplen);
        }
        FileChannel file;
        try {
            file = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create pcap file " + path + ": " + e.getMessage()
                    + " (check that the directory exists and is writable)", e);
        }
        PcapWriter w = new PcapWriter(path, file, snaplen);
        ByteBuffer h = ByteBuffer.allocate(GLOBAL_HEADER).order(ByteOrder.LITTLE_ENDIAN);
        h.putInt(MAGIC_MICROSECONDS).putShort((short) 2).putShort((short) 4) // version 2.4
                .putInt(0).putInt(0) // thiszone (UTC), sigfigs
                .putInt(snaplen).putInt(LINKTYPE_ETHERNET).flip();
        try {
            w.writeFully(h);
        } catch (IOException e) {
            w.close();
            throw new UncheckedIOException("cannot write pcap header to " + path + ": " + e.getMessage(), e);
        }
        return w;
    }

    public Path path() {
        return path;
    }

    /** Frames written so far. */
    public synchronized long frames() {
        return frames;
    }

    /**
     * Writes one frame: {@code frame} holds the bytes captured (up to the snap length are kept),
     * {@code wireLength} the frame's length on the wire (larger when the caller truncated it).
     */
    public void write(Instant when, MemorySegment frame, long wireLength) {
        synchronized (this) {
            if (closed) {
                return;
            }
            int captured = (int) Math.min(frame.byteSize(), snaplen);
            record.clear();
            record.putInt((int) when.getEpochSecond()).putInt(when.getNano() / 1000).putInt(captured)
                    .putInt((int) Math.min(Math.max(wireLength, captured), 0xFFFF_FFFFL));
            MemorySegment.copy(frame, ValueLayout.JAVA_BYTE, 0, recordBytes, ValueLayout.JAVA_BYTE, RECORD_HEADER, captured);
            record.position(RECORD_HEADER + captured).flip();
            try {
                writeFully(record);
            } catch (IOException e) {
                throw new UncheckedIOException("writing pcap file " + path + " failed: " + e.getMessage(), e);
            }
            frames++;
        }
    }

    /** Writes one frame held in {@code frame[offset, offset + length)}. */
    public void write(Instant when, byte[] frame, int offset, int length) {
        write(when, MemorySegment.ofArray(frame).asSlice(offset, length), length);
    }

    private void writeFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            file.write(b);
        }
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            file.close();
        } catch (IOException e) {
            throw new UncheckedIOException("closing pcap file " + path + " failed: " + e.getMessage(), e);
        }
    }
}
