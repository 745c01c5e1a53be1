package io.vmm4j.vhost.user;

import java.util.HashMap;
import java.util.Map;

/**
 * Front-end message types (vhost-user.rst, "Front-end message types") that vmm4j sends or serves.
 * The number is the {@code request} field of the header.
 */
public enum VhostUserRequest {
    GET_FEATURES(1),
    SET_FEATURES(2),
    SET_OWNER(3),
    RESET_OWNER(4),
    SET_MEM_TABLE(5),
    SET_LOG_BASE(6),
    SET_LOG_FD(7),
    SET_VRING_NUM(8),
    SET_VRING_ADDR(9),
    SET_VRING_BASE(10),
    GET_VRING_BASE(11),
    SET_VRING_KICK(12),
    SET_VRING_CALL(13),
    SET_VRING_ERR(14),
    GET_PROTOCOL_FEATURES(15),
    SET_PROTOCOL_FEATURES(16),
    GET_QUEUE_NUM(17),
    SET_VRING_ENABLE(18),
    SEND_RARP(19),
    NET_SET_MTU(20),
    SET_SLAVE_REQ_FD(21),
    IOTLB_MSG(22),
    SET_VRING_ENDIAN(23),
    GET_CONFIG(24),
    SET_CONFIG(25),
    GET_INFLIGHT_FD(31),
    SET_INFLIGHT_FD(32),
    GET_MAX_MEM_SLOTS(36),
    ADD_MEM_REG(37),
    REM_MEM_REG(38),
    SET_STATUS(39),
    GET_STATUS(40);

    private static final Map<Integer, VhostUserRequest> BY_CODE = new HashMap<>();

    static {
        for (VhostUserRequest r : values()) {
            BY_CODE.put(r.code, r);
        }
    }

    private final int code;

    VhostUserRequest(int code) {
        this.code = code;
    }

    /** The value of the header's {@code request} field. */
    public int code() {
        return code;
    }

    /** The request with this code, or null for a code vmm4j does not know. */
    public static VhostUserRequest of(int code) {
        return BY_CODE.get(code);
    }

    /** The request's name, or {@code request N} for an unknown code. */
    public static String describe(int code) {
        VhostUserRequest r = of(code);
        return r == null ? "request " + code : r.name();
    }
}
