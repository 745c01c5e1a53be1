package io.vmm4j.guest;

import io.vmm4j.core.memory.GuestMemory;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/**
 * The guest binary the Maven build compiled from src/main/c with gcc: a flat image entered at its
 * first byte, {@link GuestAbi#LOAD_ADDRESS}. Hosts that built without gcc have no image.
 */
public final class KvmGuestImage {
    static final String RESOURCE = "kvm-guest.bin";

    private KvmGuestImage() {
    }

    /** Whether this build has the image. */
    public static boolean built() {
        return KvmGuestImage.class.getResource(RESOURCE) != null;
    }

    /** The image bytes; throws with the remedy when the build had no gcc. */
    public static byte[] bytes() {
        try (InputStream in = KvmGuestImage.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("the KVM guest image was not built (this build had no gcc): apt-get install gcc, "
                        + "then rebuild (./vmm build)");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the KVM guest image: " + e.getMessage(), e);
        }
    }

    /** Copies the image to {@link GuestAbi#LOAD_ADDRESS}; returns its entry point. */
    public static long loadInto(GuestMemory memory) {
        byte[] image = bytes();
        if (GuestAbi.LOAD_ADDRESS + image.length > GuestAbi.IMAGE_LIMIT) {
            throw new IllegalStateException("the KVM guest image (" + image.length + " bytes) does not fit below its stack at 0x"
                    + Long.toHexString(GuestAbi.IMAGE_LIMIT));
        }
        memory.write(GuestAbi.LOAD_ADDRESS, image, 0, image.length);
        return GuestAbi.LOAD_ADDRESS;
    }
}
