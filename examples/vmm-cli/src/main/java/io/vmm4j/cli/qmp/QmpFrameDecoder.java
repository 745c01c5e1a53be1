package io.vmm4j.cli.qmp;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Splits a QMP byte stream into JSON texts, one per top-level value, as QEMU's streaming JSON
 * lexer does: objects and arrays end at their matching bracket (brackets inside strings do not
 * count), so commands need no newline between them and may arrive in pieces. What it cannot
 * split becomes an {@link Input} error and the stream goes on:
 * <ul>
 *   <li>an ASCII control character other than tab, CR and LF, or a 0xFE/0xFF byte, drops the
 *       input collected so far — the qmp-spec's way for a client to force the parser back into a
 *       known-good state;</li>
 *   <li>a value longer than the limit is reported once and skipped to its end, so it is never
 *       held whole;</li>
 *   <li>a value that is not valid UTF-8 (RFC 8259 section 8.1: JSON text is UTF-8) is refused
 *       whole, as QEMU's parser refuses it ("invalid UTF-8 sequence in string"), rather than
 *       having the bad bytes replaced.</li>
 * </ul>
 * Top-level scalars ({@code 42}, {@code foo}) are passed on whole so that the session can say
 * what is wrong with them.
 */
final class QmpFrameDecoder extends ByteToMessageDecoder {
    /** One JSON text to parse, or an error found while splitting. */
    record Input(String json, String error) {
        static Input json(String text) {
            return new Input(text, null);
        }

        static Input error(String desc) {
            return new Input(null, desc);
        }
    }

    private final int maxLength;
    /** Strict: malformed input is an error, not U+FFFD (overlong forms and encoded surrogates are malformed too). */
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    private int scanned;
    private int depth;
    private boolean inString;
    private boolean escape;
    private boolean inScalar;
    private boolean discarding;

    QmpFrameDecoder(int maxLength) {
        this.maxLength = maxLength;
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        int i = in.readerIndex() + scanned;
        int end = in.writerIndex();
        while (i < end) {
            int b = in.getByte(i) & 0xFF;
            if (b >= 0xFE || (b < 0x20 && b != '\t' && b != '\n' && b != '\r')) {
                resetState();
                in.readerIndex(i + 1);
                i++;
                out.add(Input.error(String.format("JSON parse error, invalid character 0x%02x (input so far dropped)", b)));
                continue;
            }
            if (inString) {
                if (escape) {
                    escape = false;
                } else if (b == '\\') {
                    escape = true;
                } else if (b == '"') {
                    inString = false;
                    if (depth == 0) {
                        emit(in, i + 1, out);
                    }
                }
                i++;
            } else if (inScalar) {
                if (isWhitespace(b) || b == '{' || b == '[' || b == '"' || b == '}' || b == ']') {
                    emit(in, i, out); // the delimiter starts the next value
                } else {
                    i++;
                }
            } else if (depth == 0) {
                if (isWhitespace(b)) {
                    in.readerIndex(i + 1);
                } else if (b == '{' || b == '[') {
                    depth = 1;
                } else if (b == '"') {
                    inString = true;
                } else {
                    inScalar = true;
                }
                i++;
            } else {
                if (b == '"') {
                    inString = true;
                } else if (b == '{' || b == '[') {
                    depth++;
                } else if (b == '}' || b == ']') {
                    depth--;
                    if (depth == 0) {
                        emit(in, i + 1, out);
                    }
                }
                i++;
            }
            if (pending() && i - in.readerIndex() > maxLength) {
                if (!discarding) {
                    out.add(Input.error("JSON parse error, input longer than " + maxLength + " bytes; skipped to its end"));
                    discarding = true;
                }
                in.readerIndex(i); // keep nothing of it
            }
        }
        scanned = i - in.readerIndex();
    }

    private boolean pending() {
        return depth > 0 || inString || inScalar;
    }

    private void emit(ByteBuf in, int endExclusive, List<Object> out) {
        int start = in.readerIndex();
        if (discarding) {
            discarding = false;
        } else {
            out.add(decode(in, start, endExclusive - start));
        }
        in.readerIndex(endExclusive);
        inScalar = false;
    }

    private Input decode(ByteBuf in, int start, int length) {
        ByteBuffer bytes = in.nioBuffer(start, length);
        int base = bytes.position();
        CharBuffer chars = CharBuffer.allocate(length); // UTF-8 never decodes to more chars than bytes
        CoderResult result = utf8.reset().decode(bytes, chars, true);
        if (!result.isError()) {
            result = utf8.flush(chars);
        }
        if (!result.isError()) {
            return Input.json(chars.flip().toString());
        }
        int bad = bytes.position() - base;
        if (insideString(in, start, bad)) {
            return Input.error("JSON parse error, invalid UTF-8 sequence in string"); // QEMU's words, qobject/json-parser.c
        }
        return Input.error(String.format("JSON parse error, invalid UTF-8 byte 0x%02x outside a string", in.getByte(start + bad) & 0xFF));
    }

    /** Whether byte {@code offset} of the value starting at {@code start} lies inside a string. */
    private static boolean insideString(ByteBuf in, int start, int offset) {
        boolean string = false;
        boolean escaped = false;
        for (int i = start; i < start + offset; i++) {
            int b = in.getByte(i);
            if (escaped) {
                escaped = false;
            } else if (string && b == '\\') {
                escaped = true;
            } else if (b == '"') {
                string = !string;
            }
        }
        return string;
    }

    private void resetState() {
        depth = 0;
        inString = false;
        escape = false;
        inScalar = false;
        discarding = false;
    }

    private static boolean isWhitespace(int b) {
        return b == ' ' || b == '\t' || b == '\r' || b == '\n';
    }
}
