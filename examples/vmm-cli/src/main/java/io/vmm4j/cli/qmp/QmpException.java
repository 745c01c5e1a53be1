package io.vmm4j.cli.qmp;

/**
 * A command failed: becomes {@code {"error": {"class": ..., "desc": ...}, "id": ...}}. The class
 * is one of QEMU's QapiErrorClass names; the description names the bad value and what to do.
 */
public final class QmpException extends RuntimeException {
    /** QEMU's error classes (qapi/error.json); most errors are GenericError. */
    public enum ErrorClass {
        GenericError, CommandNotFound, DeviceNotActive, DeviceNotFound
    }

    private final ErrorClass errorClass;

    public QmpException(ErrorClass errorClass, String desc) {
        super(desc);
        this.errorClass = errorClass;
    }

    public static QmpException generic(String desc) {
        return new QmpException(ErrorClass.GenericError, desc);
    }

    public ErrorClass errorClass() {
        return errorClass;
    }
}
