package io.vmm4j.core.linux;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What a listener does with what is already at its path: only a stale socket is replaced, and only its own socket is removed. */
class UnixListenerTest {
    private Path dir;

    @BeforeEach
    void tempDir() throws IOException {
        dir = Files.createTempDirectory("vmm4j-listen");
    }

    @AfterEach
    void cleanUp() throws IOException {
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    private static void assertRefused(Path path, String... said) {
        SocketPathException e = assertThrows(SocketPathException.class, () -> UnixListener.bind(path).close());
        assertTrue(e.getMessage().startsWith(path.toString()), "names the path first: " + e.getMessage());
        for (String s : said) {
            assertTrue(e.getMessage().contains(s), "says '" + s + "': " + e.getMessage());
        }
    }

    private static void assertAnswers(Path path) {
        try (UnixSocket s = UnixSocket.connect(path)) {
            assertTrue(s.fd() >= 0);
        }
    }

    @Test
    void aRegularFileIsRefusedAndKept() throws IOException {
        Path file = dir.resolve("notes.txt");
        Files.writeString(file, "keep me");
        assertRefused(file, "is a regular file", "remove it or choose another path");
        assertEquals("keep me", Files.readString(file));
    }

    @Test
    void aDirectoryASymbolicLinkAndAMissingDirectoryAreRefused() throws IOException {
        assertRefused(dir, "is a directory, not a socket", dir.resolve("vu.sock").toString());
        Path link = dir.resolve("link.sock");
        Files.createSymbolicLink(link, dir.resolve("elsewhere.sock"));
        assertRefused(link, "is a symbolic link");
        assertTrue(Files.isSymbolicLink(link), "the link is left alone");
        assertRefused(dir.resolve("no/such/dir/vu.sock"), "directory " + dir.resolve("no/such/dir") + " does not exist",
                "create it");
    }

    @Test
    void aLiveSocketIsRefusedAndKeepsServingItsOwner() throws IOException {
        Path path = dir.resolve("live.sock");
        try (UnixListener owner = UnixListener.bind(path)) {
            assertRefused(path, "is in use: a server is listening there", "stop it or choose another path");
            Thread accept = Thread.ofPlatform().start(() -> owner.accept().close());
            assertAnswers(path);
            assertTrue(Files.exists(path, LinkOption.NOFOLLOW_LINKS), "the owner's socket is still there");
            try {
                accept.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        assertTrue(Files.notExists(path, LinkOption.NOFOLLOW_LINKS), "the owner removes its own socket");
    }

    @Test
    void aStaleSocketIsReplaced() throws IOException {
        Path path = dir.resolve("stale.sock");
        try (ServerSocketChannel dead = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            dead.bind(UnixDomainSocketAddress.of(path)); // closing leaves the file behind, like a killed process
        }
        try (UnixListener listener = UnixListener.bind(path)) {
            Thread accept = Thread.ofPlatform().start(() -> listener.accept().close());
            assertAnswers(path);
            try {
                accept.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Test
    void closingLeavesASocketThatAnotherServerPutAtThePath() throws IOException {
        Path path = dir.resolve("moved.sock");
        UnixListener first = UnixListener.bind(path);
        Files.delete(path); // someone removed it and another server bound the path anew
        try (UnixListener second = UnixListener.bind(path)) {
            first.close();
            assertTrue(Files.exists(path, LinkOption.NOFOLLOW_LINKS), "the second server's socket survives the first one's exit");
            Thread accept = Thread.ofPlatform().start(() -> second.accept().close());
            assertAnswers(path);
            try {
                accept.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
