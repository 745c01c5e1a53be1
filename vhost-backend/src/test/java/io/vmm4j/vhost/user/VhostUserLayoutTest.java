package io.vmm4j.vhost.user;

import io.vmm4j.vhost.VringAddress;
import io.vmm4j.core.testing.HeaderConstants;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** vhost-user payloads reuse the kernel's vhost structs (vhost-user.rst, "C structure"): their sizes must match. */
class VhostUserLayoutTest {
    @Test
    void payloadSizesMatchTheKernelStructs() throws Exception {
        new HeaderConstants().include("linux/vhost.h")
                .expect("sizeof(struct vhost_vring_state)", VhostUserProtocol.VRING_STATE_SIZE)
                .expect("sizeof(struct vhost_vring_addr)", VhostUserProtocol.VRING_ADDRESS_SIZE)
                .expect("sizeof(struct vhost_memory_region)", VhostUserProtocol.MEMORY_REGION_SIZE)
                .expect("sizeof(struct vhost_memory)", VhostUserProtocol.MEMORY_TABLE_HEADER_SIZE)
                .verify();
    }

    @Test
    void messagesEncodeTheHeaderThenThePayloadAndDecodeBack() {
        VhostUserMessage.Region r = new VhostUserMessage.Region(0xC0000, 0x7FF40000L, 0x7F12_3400_0000L, 0xC0000);
        VhostUserMessage m = VhostUserMessage.request(VhostUserRequest.SET_MEM_TABLE, true, VhostUserMessage.memoryTable(List.of(r)));
        byte[] wire = m.encode();
        assertEquals(12 + 8 + 32, wire.length);
        assertEquals(5, wire[0]);
        assertEquals(VhostUserProtocol.VERSION | VhostUserProtocol.FLAG_NEED_REPLY, wire[4]);
        assertEquals(40, wire[8]);
        assertEquals(List.of(r), m.memoryTable());
        VhostUserMessage.VringAddressDescription a = new VhostUserMessage.VringAddressDescription(3, 0, new VringAddress(1, 2, 3), 4);
        assertEquals(a, new VhostUserMessage(9, 1, VhostUserMessage.vringAddress(a), null).vringAddress());
        assertArrayEquals(new byte[] {7, 0, 0, 0, 0, 1, 0, 0}, VhostUserMessage.vringState(7, 256));
        assertThrows(VhostUserFramingException.class, () -> new VhostUserMessage(8, 1, new byte[12], null).vringState());
    }
}
