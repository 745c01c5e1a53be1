package io.vmm4j.tap;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The classic pcap layout byte by byte: global header, record headers, truncation to the snap length. */
class PcapWriterTest {
    @Test
    void writesGlobalHeaderAndOneRecordPerFrame(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("t.pcap");
        byte[] frame = new byte[60];
        for (int i = 0; i < frame.length; i++) {
            frame[i] = (byte) i;
        }
        Instant t = Instant.ofEpochSecond(1_700_000_000L, 123_456_789);
        try (PcapWriter w = PcapWriter.create(file)) {
            w.write(t, frame, 0, frame.length);
            w.write(t.plusMillis(1), MemorySegment.ofArray(frame).asSlice(0, 20), 1514); // a truncated capture
            assertEquals(2, w.frames());
        }
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(24 + 16 + 60 + 16 + 20, b.remaining());
        assertEquals(0xA1B2C3D4, b.getInt(0), "magic: little-endian, microseconds");
        assertEquals(2, b.getShort(4));
        assertEquals(4, b.getShort(6));
        assertEquals(PcapWriter.DEFAULT_SNAPLEN, b.getInt(16));
        assertEquals(1, b.getInt(20), "LINKTYPE_ETHERNET");
        assertEquals(1_700_000_000, b.getInt(24));
        assertEquals(123_456, b.getInt(28), "microseconds");
        assertEquals(60, b.getInt(32), "incl_len");
        assertEquals(60, b.getInt(36), "orig_len");
        assertArrayEquals(frame, Arrays.copyOfRange(b.array(), 40, 100));
        assertEquals(20, b.getInt(100 + 8), "incl_len of the truncated frame");
        assertEquals(1514, b.getInt(100 + 12), "orig_len keeps the wire length");
    }

    @Test
    void snapLengthTruncatesLongFrames(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("s.pcap");
        try (PcapWriter w = PcapWriter.create(file, 64)) {
            w.write(Instant.now(), new byte[1000], 0, 1000);
        }
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(24 + 16 + 64, b.remaining());
        assertEquals(64, b.getInt(32));
        assertEquals(1000, b.getInt(36));
    }

    @Test
    void anUnwritableFileIsNamedWithTheRemedy(@TempDir Path dir) {
        Path file = dir.resolve("no/such/dir/x.pcap");
        UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> PcapWriter.create(file));
        assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("directory exists"), e.getMessage());
    }
}
