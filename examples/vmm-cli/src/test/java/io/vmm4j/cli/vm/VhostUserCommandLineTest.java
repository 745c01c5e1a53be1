package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The vhost-user command lines without root: the in-memory port, the errors a user meets first, and the daemon's help. */
class VhostUserCommandLineTest {
    private Path dir;

    @BeforeEach
    void tempDir() throws IOException {
        dir = Files.createTempDirectory("vu-cli");
    }

    @AfterEach
    void cleanUp() throws IOException {
        try (var files = Files.walk(dir)) {
            for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    private static VmmProcess daemon(Path socket, String... more) throws IOException {
        List<String> args = new java.util.ArrayList<>(List.of("vhost-user-backend", "--socket", socket.toString(), "--port", "memory"));
        args.addAll(List.of(more));
        return VmmProcess.start(List.of(), args.toArray(String[]::new));
    }

    /** The daemon exits with status 1 and one line on stderr that contains each of {@code said}. */
    private static String refused(VmmProcess p, String... said) throws InterruptedException {
        assertEquals(1, p.waitFor(20), p.describe());
        List<String> lines = p.stderr().lines().toList();
        assertEquals(1, lines.size(), "one line: " + p.describe());
        for (String s : said) {
            assertTrue(lines.getFirst().contains(s), "says '" + s + "': " + lines.getFirst());
        }
        return lines.getFirst();
    }

    /** SIGTERM: the daemon's shutdown hook runs (the JVM's status is then 143). */
    private static void stop(VmmProcess d) throws InterruptedException {
        int code = d.terminate(10);
        assertTrue(code == 0 || code == 143, "the daemon stops on SIGTERM: " + code + "\n" + d.describe());
    }

    private static boolean answers(Path socket) {
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            return c.isConnected();
        } catch (IOException e) {
            return false;
        }
    }

    @Test
    void aSocketPathHoldingAFileIsRefusedAndTheFileKept() throws Exception {
        Path file = dir.resolve("vu.sock");
        Files.writeString(file, "not a socket");
        try (VmmProcess d = daemon(file)) {
            refused(d, "vmm vhost-user-backend: --socket " + file + " exists and is a regular file", "remove it or choose another path");
        }
        assertEquals("not a socket", Files.readString(file));
    }

    @Test
    void aSecondDaemonOnALiveSocketIsRefusedAndTheFirstKeepsServing() throws Exception {
        Path socket = dir.resolve("vu.sock");
        try (VmmProcess first = daemon(socket)) {
            first.awaitOutput("listening on " + socket, 30);
            try (VmmProcess second = daemon(socket)) {
                refused(second, "--socket " + socket + " is in use: a server is listening there", "stop it or choose another path");
            }
            assertTrue(answers(socket), "the first daemon still listens on its socket");
            stop(first);
        }
        assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), "the first daemon removed its own socket on exit");
    }

    @Test
    void onExitADaemonRemovesOnlyItsOwnSocket() throws Exception {
        Path socket = dir.resolve("vu.sock");
        try (VmmProcess first = daemon(socket)) {
            first.awaitOutput("listening on " + socket, 30);
            Files.delete(socket); // someone removed it, and another daemon takes the path
            try (VmmProcess second = daemon(socket)) {
                second.awaitOutput("listening on " + socket, 30);
                stop(first);
                assertTrue(answers(socket), "the second daemon's socket survived the first one's exit");
                stop(second);
            }
        }
        assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS));
    }

    @Test
    void aSocketInAMissingDirectoryOrOnADirectoryIsNamedWithItsFlag() throws Exception {
        Path missing = dir.resolve("no-such-dir").resolve("vu.sock");
        try (VmmProcess d = daemon(missing)) {
            refused(d, "--socket " + missing + ": directory " + missing.getParent() + " does not exist", "create it");
        }
        try (VmmProcess d = daemon(dir)) {
            refused(d, "--socket " + dir + " is a directory, not a socket", dir.resolve("vu.sock").toString());
        }
    }

    @Test
    void aBadHostIpOrAStatsFileInAMissingDirectoryIsRefusedAtStart() throws Exception {
        Path socket = dir.resolve("vu.sock");
        try (VmmProcess d = daemon(socket, "--host-ip", "10.0.2.2/99")) {
            refused(d, "--host-ip '10.0.2.2/99'", "a /99 prefix leaves no address for the guest");
        }
        try (VmmProcess d = daemon(socket, "--host-ip", "0.0.0.0/24")) {
            refused(d, "--host-ip '0.0.0.0/24'", "0.0.0.0 is the unspecified address");
        }
        Path stats = dir.resolve("no-such-dir").resolve("vu.json");
        try (VmmProcess d = daemon(socket, "--stats-json", stats.toString())) {
            refused(d, "--stats-json " + stats + ": directory " + stats.getParent() + " does not exist", "create it");
        }
        assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), "a refused start leaves no socket behind");
    }

    @Test
    void theStatsFileIsThereFromTheStartWithTheSilentPeersAndTheInMemoryHost() throws Exception {
        Path socket = dir.resolve("vu.sock");
        Path stats = dir.resolve("vu.json");
        try (VmmProcess d = daemon(socket, "--stats-json", stats.toString(), "--first-message-timeout", "300")) {
            d.awaitOutput("listening on " + socket, 30);
            JsonNode atStart = new ObjectMapper().readTree(stats.toFile());
            assertEquals(0, atStart.get("silentFrontends").asInt(), atStart.toString());
            assertEquals(0, atStart.get("inMemoryHost").get("udpUnanswerable").asInt(), atStart.toString());
            for (JsonNode q : atStart.get("queues")) {
                for (String counter : List.of("packets", "bytes", "kicks", "interrupts", "interruptsSuppressed", "dropsNoBuffer", "portErrors",
                        "dropsLinkDown")) {
                    assertEquals(0, q.get(counter).asLong(), counter + " of " + q);
                }
            }
            try (SocketChannel _ = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
                d.awaitOutput("front-end 1: sent no message within 300 ms of connecting", 10);
            }
            stop(d);
            JsonNode atExit = new ObjectMapper().readTree(stats.toFile());
            assertEquals(1, atExit.get("silentFrontends").asInt(), atExit.toString());
        }
    }

    @Test
    void withNoDaemonTheVmmSaysInOneLineWhichSocketAndHowToStartIt() throws Exception {
        Path socket = dir.resolve("absent.sock");
        try (VmmProcess vmm = VmmProcess.start(List.of(), "run", "--backend", "vhost-user", "--socket", socket.toString())) {
            assertEquals(1, vmm.waitFor(30), vmm.describe());
            List<String> lines = vmm.stderr().lines().toList();
            assertEquals(1, lines.size(), "one line: " + vmm.describe());
            assertTrue(lines.getFirst().contains("no vhost-user back-end at " + socket + ": the socket does not exist"), lines.getFirst());
            assertTrue(lines.getFirst().contains("./vmm vhost-user-backend --socket " + socket), lines.getFirst());
        }
    }

    @Test
    void aStaleSocketFileIsNamedAsSuch() throws Exception {
        Path socket = dir.resolve("stale.sock");
        // a daemon that died leaves its socket file behind: Java's UNIX channel does not unlink on close either
        try (ServerSocketChannel dead = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            dead.bind(UnixDomainSocketAddress.of(socket));
        }
        try (VmmProcess vmm = VmmProcess.start(List.of(), "run", "--backend", "vhost-user", "--socket", socket.toString())) {
            assertEquals(1, vmm.waitFor(30), vmm.describe());
            assertTrue(vmm.stderr().contains("no vhost-user back-end at " + socket + ": nobody is listening on it (a stale socket file)"),
                    vmm.describe());
        }
    }

    @Test
    void theDaemonHelpSaysHowToRunItAndPairItWithAVmm() throws Exception {
        try (VmmProcess help = VmmProcess.start(List.of(), "vhost-user-backend", "--help")) {
            assertEquals(0, help.waitFor(30), help.describe());
            String out = help.stdout();
            for (String s : List.of("--socket", "--tap", "--port", "--queues", "--stats-json", "./vmm run --backend vhost-user",
                    "-netdev vhost-user", "share=on")) {
                assertTrue(out.contains(s), "help mentions " + s + ":\n" + out);
            }
        }
    }

    @Test
    void theInMemoryDaemonAnswersAVmmWithoutRootAndServesTheNextOne() throws Exception {
        Path socket = dir.resolve("vu.sock");
        try (VmmProcess daemon = VmmProcess.start(List.of(), "vhost-user-backend", "--socket", socket.toString(), "--port", "memory")) {
            daemon.awaitOutput("listening on " + socket, 30);
            for (int run = 1; run <= 2; run++) {
                try (VmmProcess vmm = VmmProcess.start(List.of(), "run", "--backend", "vhost-user", "--socket", socket.toString(),
                        "--count", "3", "--json")) {
                    assertEquals(0, vmm.waitFor(60), vmm.describe());
                    JsonNode j = vmm.json();
                    assertEquals(3, j.get("ping").get("received").asInt(), vmm.describe());
                    assertTrue(!j.get("features").toString().contains("CSUM"), "an in-memory port offers no offloads: " + j);
                }
                daemon.awaitOutput("front-end " + run + " disconnected", 10);
            }
            assertTrue(daemon.stdout().contains("queue tx0: packets"), daemon.describe());
        }
    }
}
