package io.vmm4j.core.linux;

import io.vmm4j.core.memory.GuestMemory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The child half of {@link FdPassingTest}, run in a separate JVM with the socket on fd 3. It
 * receives a memfd and an eventfd in one message, maps the memfd as guest memory, checks the
 * parent's bytes, writes its own, signals the eventfd and replies. Exit 0 on success.
 */
public final class FdPassingChild {
    private FdPassingChild() { // a main class
    }


    public static void main(String[] args) {
        try (UnixSocket socket = UnixSocket.adopt(3); Arena arena = Arena.ofConfined()) {
            MemorySegment header = arena.allocate(24);
            UnixSocket.Received got = socket.receive(header, 4);
            if (got.bytes() != 24 || got.fds().length != 2) {
                fail("expected 24 bytes and 2 fds, got " + got.bytes() + " bytes and " + got.fds().length + " fds");
            }
            long guestAddress = header.get(ValueLayout.JAVA_LONG, 0);
            long size = header.get(ValueLayout.JAVA_LONG, 8);
            long offset = header.get(ValueLayout.JAVA_LONG, 16);
            int eventFd = got.fds()[1];
            try (GuestMemory memory = GuestMemory.builder().region(guestAddress, size, got.fds()[0], offset).build()) {
                for (int i = 0; i < 256; i++) {
                    if (memory.readByte(guestAddress + i) != (byte) (i ^ 0x5A)) {
                        fail("parent byte " + i + " differs: " + memory.readByte(guestAddress + i));
                    }
                }
                memory.writeLong(guestAddress + size - 8, 0xC0FFEE_CAFEL);
                MemorySegment one = arena.allocate(ValueLayout.JAVA_LONG);
                one.set(ValueLayout.JAVA_LONG, 0, 1L);
                LibC.write(eventFd, one, 8);
                socket.send(arena.allocateFrom("ok"));
            }
        }
        System.exit(0);
    }

    private static void fail(String why) {
        System.err.println("FdPassingChild: " + why);
        System.exit(3);
    }
}
