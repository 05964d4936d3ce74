//! The virtio-net header that TAP (IFF_VNET_HDR) and AF_PACKET
//! (PACKET_VNET_HDR) put in front of every frame. It carries checksum and
//! GSO state, so checksum-partial and GSO super-frames cross the relay whole.

use super::counters::DropReason;
use super::frame::ETH_HLEN;
use crate::sys::packet::HEADROOM;
use crate::wire::virtio::{self, field, read_u16_le};
use crate::wire::vlan;

/// `struct virtio_net_hdr`: the size both TAP and packet sockets use by default.
pub const VNET_HDR_LEN: usize = virtio::HEADER_LEN;

pub const F_NEEDS_CSUM: u8 = 1;
pub const F_DATA_VALID: u8 = 2;
const KNOWN_FLAGS: u8 = F_NEEDS_CSUM | F_DATA_VALID;

pub const GSO_NONE: u8 = 0;
pub const GSO_TCPV4: u8 = 1;
pub const GSO_UDP: u8 = 3;
pub const GSO_TCPV6: u8 = 4;
pub const GSO_UDP_L4: u8 = 5;
pub const GSO_ECN: u8 = 0x80;

pub use crate::wire::virtio::MAX_FRAME;

/// Why a header cannot describe its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadHeader;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Little-endian: the layout of a modern (virtio 1.0) device, which is
    /// what both TAP and packet sockets use on little-endian hosts.
    pub fn parse(b: &[u8]) -> Result<VnetHdr, BadHeader> {
        if b.len() < VNET_HDR_LEN {
            return Err(BadHeader);
        }
        Ok(VnetHdr {
            flags: b[field::FLAGS],
            gso_type: b[field::GSO_TYPE],
            hdr_len: read_u16_le(b, field::HDR_LEN),
            gso_size: read_u16_le(b, field::GSO_SIZE),
            csum_start: read_u16_le(b, field::CSUM_START),
            csum_offset: read_u16_le(b, field::CSUM_OFFSET),
        })
    }

    pub fn write(&self, b: &mut [u8]) {
        b[field::FLAGS] = self.flags;
        b[field::GSO_TYPE] = self.gso_type;
        b[field::HDR_LEN].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[field::GSO_SIZE].copy_from_slice(&self.gso_size.to_le_bytes());
        b[field::CSUM_START].copy_from_slice(&self.csum_start.to_le_bytes());
        b[field::CSUM_OFFSET].copy_from_slice(&self.csum_offset.to_le_bytes());
    }

    /// Checks that the header describes a frame of `frame_len` bytes: known
    /// flags and GSO types, checksum field inside the frame, a segment size
    /// for GSO. The kernel would reject a bad one with EINVAL on the socket;
    /// we count and drop the frame instead.
    pub fn validate(&self, frame_len: usize) -> Result<(), BadHeader> {
        if self.flags & !KNOWN_FLAGS != 0 || frame_len > MAX_FRAME {
            return Err(BadHeader);
        }
        if self.flags & F_NEEDS_CSUM != 0 {
            let end = usize::from(self.csum_start) + usize::from(self.csum_offset) + 2;
            if usize::from(self.csum_start) < ETH_HLEN || end > frame_len {
                return Err(BadHeader);
            }
        }
        match self.gso_type & !GSO_ECN {
            GSO_NONE => {
                if self.gso_type & GSO_ECN != 0 {
                    return Err(BadHeader);
                }
            }
            GSO_TCPV4 | GSO_UDP | GSO_TCPV6 | GSO_UDP_L4 => {
                if self.gso_size == 0 || self.flags & F_NEEDS_CSUM == 0 {
                    return Err(BadHeader);
                }
            }
            _ => return Err(BadHeader),
        }
        Ok(())
    }

    /// Adjusts the offsets after a VLAN tag was inserted after the MACs.
    pub fn shift_for_vlan(&mut self) -> Result<(), BadHeader> {
        if self.flags & F_NEEDS_CSUM != 0 {
            self.csum_start = self.csum_start.checked_add(TAG_LEN16).ok_or(BadHeader)?;
        }
        if self.hdr_len != 0 {
            self.hdr_len = self.hdr_len.checked_add(TAG_LEN16).ok_or(BadHeader)?;
        }
        Ok(())
    }
}

/// Bytes of the two MAC addresses, after which a VLAN tag goes.
const MACS_LEN: usize = vlan::TAG_OFFSET;
/// Bytes of an 802.1Q tag (TPID and TCI).
const VLAN_TAG_LEN: usize = vlan::TAG_LEN;
/// The same, for header fields.
const TAG_LEN16: u16 = VLAN_TAG_LEN as u16;
const _: () = assert!(
    HEADROOM >= VLAN_TAG_LEN,
    "the receive headroom must fit a VLAN tag"
);

/// Readies one received frame for the relay: reinserts the VLAN tag the NIC
/// stripped (delivered out of band as `vlan`) and checks the vnet header.
/// `slot` holds [`HEADROOM`] spare bytes, then the `len` received bytes
/// (vnet header and frame). Returns where the header-and-frame now starts in
/// `slot` and its length, or why the frame is dropped.
pub fn prepare_rx(
    slot: &mut [u8],
    len: usize,
    vlan: Option<(u16, u16)>,
) -> Result<(usize, usize), DropReason> {
    if len < VNET_HDR_LEN + ETH_HLEN || len > slot.len().saturating_sub(HEADROOM) {
        return Err(DropReason::Malformed);
    }
    let mut hdr = VnetHdr::parse(&slot[HEADROOM..]).map_err(|_| DropReason::Malformed)?;
    let (start, len) = match vlan {
        None => (HEADROOM, len),
        Some((tpid, tci)) => {
            // Move the vnet header and the MACs four bytes into the
            // headroom and write the tag after them.
            let macs = VNET_HDR_LEN + MACS_LEN;
            slot.copy_within(HEADROOM..HEADROOM + macs, HEADROOM - VLAN_TAG_LEN);
            let start = HEADROOM - VLAN_TAG_LEN;
            vlan::write_tag(&mut slot[start + VNET_HDR_LEN..], tpid, tci);
            hdr.shift_for_vlan().map_err(|_| DropReason::Vlan)?;
            hdr.write(&mut slot[start..]);
            (start, len + VLAN_TAG_LEN)
        }
    };
    hdr.validate(len - VNET_HDR_LEN).map_err(|_| {
        if vlan.is_some() {
            DropReason::Vlan
        } else {
            DropReason::BadVnetHeader
        }
    })?;
    Ok((start, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_validation() {
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 66,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let mut b = [0u8; VNET_HDR_LEN];
        h.write(&mut b);
        assert_eq!(VnetHdr::parse(&b).unwrap(), h);
        assert!(h.validate(3000).is_ok());
        assert!(h.validate(40).is_err(), "checksum field beyond the frame");
        assert!(VnetHdr { gso_size: 0, ..h }.validate(3000).is_err());
        assert!(VnetHdr { gso_type: 9, ..h }.validate(3000).is_err());
        assert!(VnetHdr { flags: 0x40, ..h }.validate(3000).is_err());
        assert!(VnetHdr::default().validate(60).is_ok());
        assert!(VnetHdr::parse(&b[..VNET_HDR_LEN - 1]).is_err());
    }

    #[test]
    fn vlan_shift_moves_checksum_start() {
        let mut h = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 16,
            ..Default::default()
        };
        h.shift_for_vlan().unwrap();
        assert_eq!(h.csum_start, 38);
        assert_eq!(h.hdr_len, 0);
        let mut edge = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: u16::MAX - 1,
            ..Default::default()
        };
        assert!(edge.shift_for_vlan().is_err());
    }
}
