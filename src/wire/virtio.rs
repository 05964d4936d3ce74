//! The virtio-net header (`struct virtio_net_hdr`, virtio 1.0 5.1.6) that
//! TAP (IFF_VNET_HDR) and AF_PACKET (PACKET_VNET_HDR) put in front of every
//! frame. Little-endian: the layout of a modern device, which is what both
//! use on little-endian hosts. `datapath::vnet` reads and checks it.

/// Bytes of the header both TAP and packet sockets use by default.
pub const HEADER_LEN: usize = field::CSUM_OFFSET.end;

/// Largest frame a header can describe: a 64 KiB GSO super-frame plus its
/// link header and one VLAN tag.
pub const MAX_FRAME: usize = u16::MAX as usize + super::ethernet::HEADER_LEN + super::vlan::TAG_LEN;

pub mod field {
    use crate::wire::Field;
    pub const FLAGS: usize = 0;
    pub const GSO_TYPE: usize = 1;
    /// Bytes of the headers before the GSO payload.
    pub const HDR_LEN: Field = 2..4;
    /// Bytes of each segment's payload.
    pub const GSO_SIZE: Field = 4..6;
    /// Where the checksum to fill starts counting, from the frame's start.
    pub const CSUM_START: Field = 6..8;
    /// Where, after `CSUM_START`, the checksum goes.
    pub const CSUM_OFFSET: Field = 8..10;
}

#[inline]
pub(crate) fn read_u16_le(b: &[u8], f: crate::wire::Field) -> u16 {
    u16::from_le_bytes([b[f.start], b[f.start + 1]])
}
