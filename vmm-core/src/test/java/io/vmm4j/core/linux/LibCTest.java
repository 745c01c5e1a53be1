package io.vmm4j.core.linux;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LibCTest {
    @Test
    void failedCallNamesTheCallTheErrnoAndTheArgument() {
        LinuxException e = assertThrows(LinuxException.class, () -> LibC.open("/nonexistent/vmm4j", LibC.O_RDONLY));
        assertEquals("open", e.call());
        assertEquals(Errno.ENOENT, e.errno());
        assertEquals("ENOENT", e.errnoName());
        assertTrue(e.getMessage().contains("/nonexistent/vmm4j"), e.getMessage());
        assertTrue(e.getMessage().contains("No such file or directory"), e.getMessage());
    }

    @Test
    void ioctlOnTheWrongKindOfFdReportsTheRequestName() {
        int fd = LibC.eventfd(0, LibC.EFD_CLOEXEC);
        try {
            LinuxException e = assertThrows(LinuxException.class,
                    () -> LibC.ioctl(fd, Ioctl.io(0xAF, 0x01), 0L, "VHOST_SET_OWNER"));
            assertEquals(Errno.ENOTTY, e.errno());
            assertTrue(e.getMessage().startsWith("ioctl(fd=" + fd + ", VHOST_SET_OWNER"), e.getMessage());
        } finally {
            LibC.close(fd);
        }
    }

    @Test
    void closingABadFdIsEbadf() {
        LinuxException e = assertThrows(LinuxException.class, () -> LibC.close(100_000));
        assertEquals(Errno.EBADF, e.errno());
    }

    @Test
    void writevAndReadvMoveScatteredBuffersThroughAPipeLikeSocket() {
        UnixSocket[] pair = UnixSocket.pair();
        try (Arena arena = Arena.ofConfined(); UnixSocket a = pair[0]; UnixSocket b = pair[1]) {
            MemorySegment one = arena.allocateFrom("virtio-");
            MemorySegment two = arena.allocateFrom("net");
            MemorySegment iov = arena.allocate(LibC.IOVEC, 2);
            LibC.setIovec(iov, 0, one.address(), 7);
            LibC.setIovec(iov, 1, two.address(), 3);
            assertEquals(10, LibC.writev(a.fd(), iov, 2));
            MemorySegment head = arena.allocate(4);
            MemorySegment tail = arena.allocate(6);
            MemorySegment riov = arena.allocate(LibC.IOVEC, 2);
            LibC.setIovec(riov, 0, head);
            LibC.setIovec(riov, 1, tail);
            assertEquals(tail.address(), LibC.iovecBase(riov, 1));
            assertEquals(6, LibC.iovecLength(riov, 1));
            assertEquals(10, LibC.readv(b.fd(), riov, 2));
            assertEquals("virt", new String(head.toArray(ValueLayout.JAVA_BYTE)));
            assertEquals("io-net", new String(tail.toArray(ValueLayout.JAVA_BYTE)));
            // non-blocking read on an empty socket: -EAGAIN from the raw variant, no exception
            LibC.fcntl(b.fd(), LibC.F_SETFL, LibC.fcntl(b.fd(), LibC.F_GETFL, 0) | LibC.O_NONBLOCK);
            assertEquals(-Errno.EAGAIN, LibC.readRaw(b.fd(), head, 4));
        }
    }
}
