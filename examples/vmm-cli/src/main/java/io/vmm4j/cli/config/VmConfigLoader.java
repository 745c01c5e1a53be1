package io.vmm4j.cli.config;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.exc.InputCoercionException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.json.JsonMapper;

import io.vmm4j.cli.vm.FloodWorkload;

import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.RecordComponent;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.function.Function;

/**
 * Reads a {@link VmConfig} strictly: an unknown field, a value of the wrong JSON type (no
 * coercion: {@code "1500"} is not a number, {@code 1.5} is not an integer, {@code 1} is not a
 * string) or an impossible value is rejected with a message naming the JSON path, such as
 * {@code $.net.queueSize}, and the allowed values. Every value problem is reported, not just the first.
 */
public final class VmConfigLoader {
    /** The largest config file read: a full VM description is under 1 KiB, so this only stops a wrong file. */
    public static final int MAX_FILE_BYTES = 1 << 20;

    private static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            // trailing tokens are checked in parse(), to say where they start
            .disable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT)
            .disable(DeserializationFeature.ACCEPT_SINGLE_VALUE_AS_ARRAY)
            .disable(MapperFeature.ALLOW_COERCION_OF_SCALARS)
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .withCoercionConfigDefaults(c -> {
                for (CoercionInputShape shape : CoercionInputShape.values()) {
                    c.setCoercion(shape, CoercionAction.Fail);
                }
            })
            .build();

    private VmConfigLoader() {
    }

    /**
     * Reads and validates the JSON file at {@code file}. Only a regular file is opened (a FIFO
     * would block the open, a device such as /dev/zero never ends), and only up to
     * {@link #MAX_FILE_BYTES}; the bytes must be UTF-8 (RFC 8259 §8.1).
     */
    public static VmConfig load(Path file) {
        String source = file.toString();
        byte[] bytes = readBounded(file, source);
        return parse(source, decodeUtf8(source, bytes));
    }

    private static byte[] readBounded(Path file, String source) {
        String limit = "a VM config is a JSON file of at most " + (MAX_FILE_BYTES >> 20) + " MiB (" + MAX_FILE_BYTES + " bytes)";
        try {
            // the type before opening: open(2) of a FIFO blocks until a writer comes
            BasicFileAttributes attributes = Files.readAttributes(file, BasicFileAttributes.class); // follows links
            if (!attributes.isRegularFile()) {
                throw new ConfigException(source, List.of("is " + fileType(file, attributes) + ", not a regular file; " + limit));
            }
            long size = attributes.size();
            if (size > MAX_FILE_BYTES) {
                throw new ConfigException(source, List.of("is " + size + " bytes, too large; " + limit));
            }
            try (InputStream in = Files.newInputStream(file)) {
                byte[] bytes = in.readNBytes(MAX_FILE_BYTES + 1); // one more: a file that grew since the size check
                if (bytes.length > MAX_FILE_BYTES) {
                    throw new ConfigException(source, List.of("is more than " + MAX_FILE_BYTES + " bytes, too large; " + limit));
                }
                return bytes;
            }
        } catch (NoSuchFileException e) {
            throw new ConfigException(source, List.of("no such file; give the path of a JSON VM description"));
        } catch (AccessDeniedException e) {
            throw new ConfigException(source, List.of("permission denied; the file must be readable by this user"));
        } catch (FileSystemException e) {
            throw new ConfigException(source, List.of("cannot read it: " + (e.getReason() == null ? e.getMessage() : e.getReason())));
        } catch (IOException e) {
            throw new ConfigException(source, List.of("cannot read it: " + e.getMessage()));
        }
    }

    /** What {@code file}, not a regular file, is. */
    private static String fileType(Path file, BasicFileAttributes a) throws IOException {
        if (a.isDirectory()) {
            return "a directory";
        }
        int mode;
        try {
            mode = (Integer) Files.getAttribute(file, "unix:mode");
        } catch (UnsupportedOperationException | IllegalArgumentException e) {
            return "a special file";
        }
        // sys/stat.h: the S_IFMT bits of st_mode
        return switch (mode & 0170000) {
            case 0010000 -> "a named pipe (FIFO)";
            case 0020000 -> "a character device";
            case 0060000 -> "a block device";
            case 0140000 -> "a socket";
            default -> "a special file (mode 0" + Integer.toOctalString(mode) + ")";
        };
    }

    /** The text of UTF-8 {@code bytes}; a byte-order mark is dropped (RFC 8259 §8.1 lets a parser ignore it). */
    static String decodeUtf8(String source, byte[] bytes) {
        int start = bytes.length >= 3 && (bytes[0] & 0xFF) == 0xEF && (bytes[1] & 0xFF) == 0xBB && (bytes[2] & 0xFF) == 0xBF ? 3 : 0;
        ByteBuffer in = ByteBuffer.wrap(bytes, start, bytes.length - start);
        CharBuffer out = CharBuffer.allocate(bytes.length);
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        CoderResult r = decoder.decode(in, out, true);
        if (!r.isError()) {
            r = decoder.flush(out);
        }
        if (r.isError()) {
            int at = in.position();
            int line = 1;
            for (int i = 0; i < at; i++) {
                if (bytes[i] == '\n') {
                    line++;
                }
            }
            throw new ConfigException(source, List.of(String.format("not valid UTF-8 at byte offset %d (line %d): byte 0x%02X is not part "
                    + "of a valid UTF-8 sequence there; a VM config is JSON text in UTF-8 (RFC 8259 section 8.1)", at, line, bytes[at] & 0xFF)));
        }
        return out.flip().toString();
    }

    /** Parses and validates {@code json}; {@code source} names it in messages. */
    public static VmConfig parse(String source, String json) {
        VmConfig config;
        // our own parser, still open in the catch blocks, so that a type error can say what token it met
        JsonParser parser = null;
        try {
            parser = MAPPER.createParser(json);
            config = MAPPER.readValue(parser, VmConfig.class);
            int rest = (int) parser.currentLocation().getCharOffset();
            while (rest < json.length() && " \t\r\n".indexOf(json.charAt(rest)) >= 0) { // RFC 8259 §2: the only whitespace
                rest++;
            }
            if (rest < json.length()) {
                throw new ConfigException(source, List.of("trailing content after the top-level " + (config == null ? "value" : "object")
                        + " at " + lineAndColumn(json, rest) + "; a VM config is exactly one JSON object"));
            }
        } catch (UnrecognizedPropertyException e) {
            String parent = path(e.getPath().subList(0, e.getPath().size() - 1));
            throw new ConfigException(source, List.of(path(e.getPath()) + ": unknown field '" + e.getPropertyName() + "'; allowed in "
                    + parent + ": " + fieldsOf(e.getReferringClass())));
        } catch (MismatchedInputException e) {
            throw new ConfigException(source, List.of(path(e.getPath()) + ": " + typeProblem(e)));
        } catch (JsonMappingException e) {
            // a syntax error inside a value (a raw control character in a string) arrives wrapped, with the field's path
            String problem = switch (e.getCause()) {
                case InputCoercionException big -> tooBig(big);
                case JsonProcessingException syntax -> syntaxProblem(syntax);
                case null, default -> e.getOriginalMessage();
            };
            throw new ConfigException(source, List.of(path(e.getPath()) + ": " + problem));
        } catch (JsonProcessingException e) {
            throw new ConfigException(source, List.of(syntaxProblem(e)));
        } catch (IOException e) {
            throw new ConfigException(source, List.of("cannot read it: " + e.getMessage()));
        } finally {
            if (parser != null) {
                try {
                    parser.close();
                } catch (IOException ignored) {
                    // a string source
                }
            }
        }
        if (config == null) {
            throw new ConfigException(source, List.of("$: the file holds null; allowed: a JSON object"));
        }
        List<String> problems = validate(config);
        if (!problems.isEmpty()) {
            throw new ConfigException(source, problems);
        }
        return config;
    }

    /** A number that is valid JSON but does not fit the field's Java type. */
    private static String tooBig(InputCoercionException e) {
        String text = "the number";
        JsonLocation at = e.getLocation();
        if (e.getProcessor() instanceof JsonParser p) {
            at = p.currentTokenLocation(); // where the number starts
            try {
                text = p.getText();
            } catch (IOException io) {
                // keep "the number"
            }
        }
        return text + " does not fit in an integer (" + Integer.MIN_VALUE + " to " + Integer.MAX_VALUE
                + (at == null ? "" : "; at line " + at.getLineNr() + ", column " + at.getColumnNr()) + ")";
    }

    private static String syntaxProblem(JsonProcessingException e) {
        JsonLocation at = e.getLocation();
        return "not valid JSON" + (at == null ? "" : " at line " + at.getLineNr() + ", column " + at.getColumnNr()) + ": "
                + e.getOriginalMessage();
    }

    /** "line L, column C" of a character offset, both counted from 1 as Jackson does. */
    private static String lineAndColumn(String text, int offset) {
        int line = 1;
        int lineStart = 0;
        for (int i = 0; i < offset; i++) {
            if (text.charAt(i) == '\n') {
                line++;
                lineStart = i + 1;
            }
        }
        return "line " + line + ", column " + (offset - lineStart + 1);
    }

    private static String path(List<JsonMappingException.Reference> refs) {
        StringBuilder p = new StringBuilder("$");
        for (JsonMappingException.Reference r : refs) {
            if (r.getFieldName() != null) {
                p.append('.').append(r.getFieldName());
            } else if (r.getIndex() >= 0) {
                p.append('[').append(r.getIndex()).append(']');
            }
        }
        return p.toString();
    }

    private static String fieldsOf(Class<?> type) {
        if (type == null || !type.isRecord()) {
            return "?";
        }
        List<String> names = new ArrayList<>();
        for (RecordComponent c : type.getRecordComponents()) {
            names.add(c.getName());
        }
        return String.join(", ", names);
    }

    private static String typeProblem(MismatchedInputException e) {
        Class<?> target = e.getTargetType();
        String expected;
        if (target == null) {
            expected = "another type";
        } else if (target == Integer.class || target == int.class) {
            expected = "an integer";
        } else if (target == String.class) {
            expected = "a string";
        } else if (target == Boolean.class || target == boolean.class) {
            expected = "true or false";
        } else if (Collection.class.isAssignableFrom(target)) {
            expected = "an array of strings";
        } else if (target.isRecord()) {
            expected = "an object with fields " + fieldsOf(target);
        } else {
            expected = target.getSimpleName();
        }
        return "expected " + expected + ", got " + found(e);
    }

    private static String found(MismatchedInputException e) {
        if (!(e.getProcessor() instanceof JsonParser p)) {
            return "something else";
        }
        JsonToken t = p.currentToken();
        try {
            return switch (t) {
                case null -> "nothing";
                case VALUE_STRING -> "a string (\"" + p.getText() + "\")";
                case VALUE_NUMBER_INT -> "an integer (" + p.getText() + ")";
                case VALUE_NUMBER_FLOAT -> "a fractional number (" + p.getText() + ")";
                case VALUE_TRUE, VALUE_FALSE -> "a boolean (" + p.getText() + ")";
                case VALUE_NULL -> "null";
                case START_OBJECT, END_OBJECT, FIELD_NAME -> "an object";
                case START_ARRAY, END_ARRAY -> "an array";
                default -> t.asString() == null ? t.name() : t.asString();
            };
        } catch (IOException io) {
            return t.name();
        }
    }

    /** Checks every present value; returns the problems, each starting with its JSON path. */
    static List<String> validate(VmConfig c) {
        List<String> problems = new ArrayList<>();
        check(problems, "$.backend", c.backend(), v -> VmRules.oneOf(v, VmRules.BACKENDS));
        check(problems, "$.memoryMiB", c.memoryMiB(), v -> VmRules.range(v, VmRules.MIN_MEMORY_MIB, VmRules.MAX_MEMORY_MIB, "MiB"));
        VmConfig.Net n = c.net();
        if (n != null) {
            check(problems, "$.net.port", n.port(), v -> VmRules.oneOf(v, VmRules.PORTS));
            check(problems, "$.net.tap", n.tap(), VmRules::interfaceName);
            check(problems, "$.net.bridge", n.bridge(), VmRules::bridge);
            check(problems, "$.net.mac", n.mac(), VmRules::mac);
            check(problems, "$.net.mtu", n.mtu(), v -> VmRules.range(v, VmRules.MIN_MTU, VmRules.MAX_MTU, "bytes"));
            check(problems, "$.net.queues", n.queues(), v -> VmRules.range(v, 1, VmRules.MAX_QUEUE_PAIRS, "queue pairs"));
            check(problems, "$.net.queueSize", n.queueSize(), VmRules::queueSize);
            check(problems, "$.net.hostIp", n.hostIp(), VmRules::hostIp);
            check(problems, "$.net.socket", n.socket(), VmRules::path);
            check(problems, "$.net.socketListen", n.socketListen(), VmRules::path);
            check(problems, "$.net.reconnect", n.reconnect(), v -> VmRules.range(v, 0, VmRules.MAX_RECONNECT_SECONDS,
                    "seconds (0: never reconnect)"));
            check(problems, "$.net.ring", n.ring(), v -> VmRules.oneOf(v, VmRules.RINGS));
            check(problems, "$.net.pollUs", n.pollUs(), v -> VmRules.range(v, 0, VmRules.MAX_POLL_MICROS, "µs (0: no busy-poll)"));
            // socket with socketListen is refused with the flags (./vmm run names the file's fields): they exclude each other
        }
        VmConfig.Guest g = c.guest();
        if (g != null) {
            check(problems, "$.guest.ip", g.ip(), VmRules::unicastIpv4);
            if (g.features() != null) {
                for (int i = 0; i < g.features().size(); i++) {
                    String f = g.features().get(i);
                    check(problems, "$.guest.features[" + i + "]", f, v -> v == null ? "null is not allowed; allowed: a feature name" : VmRules.feature(v));
                }
            }
            VmConfig.Ping p = g.ping();
            if (p != null) {
                check(problems, "$.guest.ping.target", p.target(), VmRules::unicastIpv4);
                check(problems, "$.guest.ping.count", p.count(), v -> VmRules.atLeast(v, 0));
                check(problems, "$.guest.ping.size", p.size(), v -> VmRules.range(v, 0, 65507, "bytes (and at most the MTU - 28)"));
                check(problems, "$.guest.ping.intervalMs", p.intervalMs(), v -> VmRules.range(v, 1, 60_000, "ms"));
            }
            check(problems, "$.guest.udpPort", g.udpPort(), v -> VmRules.range(v, 0, 65535, "(0: no UDP flows)"));
            check(problems, "$.guest.serveSeconds", g.serveSeconds(), v -> VmRules.atLeast(v, 0));
            VmConfig.Workload w = g.workload();
            if (w != null) {
                check(problems, "$.guest.workload.kind", w.kind(), v -> VmRules.oneOf(v, VmRules.WORKLOADS));
                check(problems, "$.guest.workload.frameSize", w.frameSize(), v -> VmRules.range(v, FloodWorkload.MIN_FRAME_SIZE,
                        FloodWorkload.MAX_FRAME_SIZE, "bytes (an Ethernet frame without FCS)"));
                check(problems, "$.guest.workload.durationMs", w.durationMs(), v -> VmRules.range(v, 1, FloodWorkload.MAX_DURATION_MS, "ms"));
            }
        }
        VmConfig.Management m = c.management();
        if (m != null) {
            check(problems, "$.management.qmp", m.qmp(), VmRules::path);
            check(problems, "$.management.metrics", m.metrics(), VmRules::metricsAddress);
            check(problems, "$.management.pcap", m.pcap(), VmRules::path);
        }
        check(problems, "$.vcpu", c.vcpu(), v -> VmRules.oneOf(v, VmRules.VCPUS));
        VmConfig.Linux l = c.linux();
        if (l != null) {
            check(problems, "$.linux.kernel", l.kernel(), VmRules::path);
            check(problems, "$.linux.initrd", l.initrd(), VmRules::path);
            check(problems, "$.linux.append", l.append(), v -> v.chars().anyMatch(ch -> ch < 0x20 || ch == 0x7F)
                    ? "the kernel command line is one line of printable text" : null);
            check(problems, "$.linux.cpus", l.cpus(), v -> VmRules.range(v, 1, 254, "vCPUs"));
        }
        return problems;
    }

    private static <T> void check(List<String> problems, String path, T value, Function<T, String> rule) {
        if (value == null && !path.endsWith("]")) {
            return; // absent: the flag's default
        }
        String problem = rule.apply(value);
        if (problem != null) {
            problems.add(path + ": " + problem);
        }
    }
}
