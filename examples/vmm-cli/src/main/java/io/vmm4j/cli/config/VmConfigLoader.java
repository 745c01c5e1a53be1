package io.vmm4j.cli.config;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.lang.reflect.RecordComponent;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
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
    private static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
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

    public static VmConfig load(Path file) {
        String text;
        try {
            text = Files.readString(file);
        } catch (NoSuchFileException e) {
            throw new ConfigException(file.toString(), List.of("no such file; give the path of a JSON VM description"));
        } catch (IOException e) {
            throw new ConfigException(file.toString(), List.of("cannot read it: " + e.getMessage()));
        }
        return parse(file.toString(), text);
    }

    /** Parses and validates {@code json}; {@code source} names it in messages. */
    public static VmConfig parse(String source, String json) {
        VmConfig config;
        // our own parser, still open in the catch blocks, so that a type error can say what token it met
        JsonParser parser = null;
        try {
            parser = MAPPER.createParser(json);
            config = MAPPER.readValue(parser, VmConfig.class);
        } catch (UnrecognizedPropertyException e) {
            String parent = path(e.getPath().subList(0, e.getPath().size() - 1));
            throw new ConfigException(source, List.of(path(e.getPath()) + ": unknown field '" + e.getPropertyName() + "'; allowed in "
                    + parent + ": " + fieldsOf(e.getReferringClass())));
        } catch (MismatchedInputException e) {
            throw new ConfigException(source, List.of(path(e.getPath()) + ": " + typeProblem(e)));
        } catch (JsonMappingException e) {
            throw new ConfigException(source, List.of(path(e.getPath()) + ": " + e.getOriginalMessage()));
        } catch (JsonProcessingException e) {
            JsonLocation at = e.getLocation();
            throw new ConfigException(source, List.of("not valid JSON" + (at == null ? "" : " at line " + at.getLineNr() + ", column "
                    + at.getColumnNr()) + ": " + e.getOriginalMessage()));
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
            check(problems, "$.net.bridge", n.bridge(), VmRules::interfaceName);
            check(problems, "$.net.mac", n.mac(), VmRules::mac);
            check(problems, "$.net.mtu", n.mtu(), v -> VmRules.range(v, VmRules.MIN_MTU, VmRules.MAX_MTU, "bytes"));
            check(problems, "$.net.queues", n.queues(), v -> VmRules.range(v, 1, VmRules.MAX_QUEUE_PAIRS, "queue pairs"));
            check(problems, "$.net.queueSize", n.queueSize(), VmRules::queueSize);
            check(problems, "$.net.hostIp", n.hostIp(), VmRules::hostIp);
            check(problems, "$.net.socket", n.socket(), VmRules::path);
        }
        VmConfig.Guest g = c.guest();
        if (g != null) {
            check(problems, "$.guest.ip", g.ip(), VmRules::ipv4);
            if (g.features() != null) {
                for (int i = 0; i < g.features().size(); i++) {
                    String f = g.features().get(i);
                    check(problems, "$.guest.features[" + i + "]", f, v -> v == null ? "null is not allowed; allowed: a feature name" : VmRules.feature(v));
                }
            }
            VmConfig.Ping p = g.ping();
            if (p != null) {
                check(problems, "$.guest.ping.target", p.target(), VmRules::ipv4);
                check(problems, "$.guest.ping.count", p.count(), v -> VmRules.atLeast(v, 0));
                check(problems, "$.guest.ping.size", p.size(), v -> VmRules.range(v, 0, 65507, "bytes (and at most the MTU - 28)"));
                check(problems, "$.guest.ping.intervalMs", p.intervalMs(), v -> VmRules.range(v, 1, 60_000, "ms"));
            }
            check(problems, "$.guest.udpPort", g.udpPort(), v -> VmRules.range(v, 0, 65535, "(0: no UDP flows)"));
            check(problems, "$.guest.serveSeconds", g.serveSeconds(), v -> VmRules.atLeast(v, 0));
        }
        VmConfig.Management m = c.management();
        if (m != null) {
            check(problems, "$.management.qmp", m.qmp(), VmRules::path);
            check(problems, "$.management.metrics", m.metrics(), VmRules::metricsAddress);
            check(problems, "$.management.pcap", m.pcap(), VmRules::path);
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
