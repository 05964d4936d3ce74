//! A second, filtered receive socket per member for the frames that can be
//! probe traffic: ARP replies, ARP requests for the member's test address and
//! ICMP echo replies. A classic BPF filter picks them in the kernel, so they
//! wait in their own small queue and never behind a flood of data frames in
//! the member's main socket.

use super::{cvt, cvt_size, setsockopt};
use crate::wire::ethernet::{self, ethertype};
use crate::wire::{arp, icmpv4, icmpv6, ipv4, ipv6};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bytes kept of each frame: more than ARP or an echo reply with our
/// payload and IP options need (the control side copies at most 128).
pub const PROBE_SNAPLEN: u32 = 128;
use super::packet::ETH_P_ALL;

use super::cbpf::{
    AD_VLAN_TAG_PRESENT, JEQ_K, JSET_K, LDX_B_MSH, LD_B_ABS, LD_B_IND, LD_H_ABS, LD_W_ABS, RET_K,
};

// Where the filter looks, in an untagged frame.
const AT_ETHERTYPE: u32 = ethernet::field::ETHERTYPE.start as u32;
const L3: usize = ethernet::HEADER_LEN;
const AT_ARP_OP: u32 = (L3 + arp::field::OPER.start) as u32;
const AT_ARP_TPA: u32 = (L3 + arp::field::TPA.start) as u32;
const AT_IP_PROTOCOL: u32 = (L3 + ipv4::field::PROTOCOL) as u32;
const AT_IP_FLG_OFF: u32 = (L3 + ipv4::field::FLG_OFF.start) as u32;
/// The first byte of the IPv4 header, whose low nibble LDX_B_MSH reads.
const AT_IP_VER_IHL: u32 = (L3 + ipv4::field::VER_IHL) as u32;
/// The ICMP type, relative to the end of the IPv4 header (X).
const AT_ICMP_TYPE: u32 = (L3 + icmpv4::field::TYPE) as u32;
const AT_IP6_NEXT_HEADER: u32 = (L3 + ipv6::field::NXT_HDR) as u32;
/// The ICMPv6 type right after the fixed IPv6 header (our probes' answers
/// carry no extension headers).
const AT_ICMP6_TYPE: u32 = (L3 + ipv6::HEADER_LEN + icmpv6::field::TYPE) as u32;

const fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The filter: untagged ARP replies, untagged ARP requests for `test_addr`,
/// untagged unfragmented ICMP echo replies, untagged ICMPv6 echo replies
/// (no extension headers). Jump offsets count the instructions skipped; 22
/// accepts, 23 drops.
pub fn probe_filter(test_addr: Option<Ipv4Addr>) -> [libc::sock_filter; 24] {
    let ta = u32::from(test_addr.unwrap_or(Ipv4Addr::UNSPECIFIED));
    [
        op(LD_W_ABS, 0, 0, AD_VLAN_TAG_PRESENT),              // 0
        op(JEQ_K, 0, 21, 0),                                  // 1: tagged: drop
        op(LD_H_ABS, 0, 0, AT_ETHERTYPE),                     // 2: ethertype
        op(JEQ_K, 0, 5, ethertype::ARP as u32),               // 3: ARP, else 9
        op(LD_H_ABS, 0, 0, AT_ARP_OP),                        // 4: ARP op
        op(JEQ_K, 16, 0, arp::op::REPLY as u32),              // 5: reply: accept
        op(JEQ_K, 0, 16, arp::op::REQUEST as u32),            // 6: request, else drop
        op(LD_W_ABS, 0, 0, AT_ARP_TPA),                       // 7: target protocol address
        op(JEQ_K, 13, 14, ta),                                // 8: our test address: accept
        op(JEQ_K, 0, 7, ethertype::IPV4 as u32),              // 9: IPv4, else 17
        op(LD_B_ABS, 0, 0, AT_IP_PROTOCOL),                   // 10: protocol
        op(JEQ_K, 0, 11, ipv4::protocol::ICMP as u32),        // 11: ICMP, else drop
        op(LD_H_ABS, 0, 0, AT_IP_FLG_OFF),                    // 12: flags and fragment offset
        op(JSET_K, 9, 0, ipv4::FRAG_OFFSET_MASK as u32),      // 13: a later fragment: drop
        op(LDX_B_MSH, 0, 0, AT_IP_VER_IHL),                   // 14: X = IP header length
        op(LD_B_IND, 0, 0, AT_ICMP_TYPE),                     // 15: ICMP type
        op(JEQ_K, 5, 6, icmpv4::msg_type::ECHO_REPLY as u32), // 16: echo reply: accept
        op(JEQ_K, 0, 5, ethertype::IPV6 as u32),              // 17: IPv6, else drop
        op(LD_B_ABS, 0, 0, AT_IP6_NEXT_HEADER),               // 18: next header
        op(JEQ_K, 0, 3, ipv6::next_header::ICMPV6 as u32),    // 19: ICMPv6, else drop
        op(LD_B_ABS, 0, 0, AT_ICMP6_TYPE),                    // 20: ICMPv6 type
        op(JEQ_K, 0, 1, icmpv6::msg_type::ECHO_REPLY as u32), // 21: echo reply: accept
        op(RET_K, 0, 0, PROBE_SNAPLEN),                       // 22: accept
        op(RET_K, 0, 0, 0),                                   // 23: drop
    ]
}

/// The filtered probe socket of one member (non-blocking).
pub struct ProbeSocket {
    fd: OwnedFd,
}

impl ProbeSocket {
    pub fn open(ifindex: u32, test_addr: Option<Ipv4Addr>) -> io::Result<ProbeSocket> {
        // Protocol 0: nothing arrives before the filter is in place.
        // SAFETY: plain socket(2) call; the result is checked.
        let raw = cvt(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        })?;
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let filter = probe_filter(test_addr);
        let prog = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr() as *mut libc::sock_filter,
        };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)?;
        let one: libc::c_int = 1;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one)?;
        // The kernel's receive time of each frame (NETRTT in ipmpstat -p).
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &one)?;
        super::packet::bind(&fd, ifindex, ETH_P_ALL)?;
        Ok(ProbeSocket { fd })
    }

    /// One frame into `buf` (truncated to it); Ok(None) when none waits.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(self.recv_stamped(buf)?.map(|(n, _)| n))
    }

    /// [`recv`](Self::recv), with the time the kernel received the frame
    /// (SO_TIMESTAMPNS, CLOCK_REALTIME) when it gave one.
    pub fn recv_stamped(&self, buf: &mut [u8]) -> io::Result<Option<(usize, Option<SystemTime>)>> {
        // Room for one SCM_TIMESTAMPNS message, u64-aligned as cmsghdr wants.
        let mut control = [0u64; CMSG_WORDS];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: an all-zero msghdr is valid (no name, no buffers).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: msg points at iov (buf, valid for buf.len() bytes) and at
        // control, both alive for the call.
        let r = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, 0) };
        let n = match cvt_size(r) {
            Ok(n) => n.min(buf.len()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some((n, timestamp_of(&msg))))
    }
}

/// 8-byte words of control buffer: one cmsghdr and a timespec, with room.
const CMSG_WORDS: usize = 8;

/// The SCM_TIMESTAMPNS of a received message, if the kernel attached one.
fn timestamp_of(msg: &libc::msghdr) -> Option<SystemTime> {
    // SAFETY: msg was filled by recvmsg; CMSG_FIRSTHDR/NXTHDR stay inside
    // msg_controllen, and a timespec is read only from a message of that
    // type whose length holds one (read_unaligned: no alignment assumed).
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            let h = &*c;
            let need = libc::CMSG_LEN(std::mem::size_of::<libc::timespec>() as u32) as usize;
            if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_TIMESTAMPNS && h.cmsg_len >= need
            {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                let secs = u64::try_from(ts.tv_sec).ok()?;
                let nanos = u32::try_from(ts.tv_nsec).ok().filter(|n| *n < NANOS_PER_SEC)?;
                return UNIX_EPOCH.checked_add(Duration::new(secs, nanos));
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}

const NANOS_PER_SEC: u32 = 1_000_000_000;

/// A kernel receive time older than this is not believed: the wall clock
/// was stepped between the frame's arrival and its reading.
pub const TIMESTAMP_AGE_MAX: Duration = Duration::from_secs(10);

/// The monotonic instant of a kernel receive time (wall clock), given the
/// two clocks read together now: `now` minus the frame's age. None when
/// the age is beyond [`TIMESTAMP_AGE_MAX`]; a time after `wall_now` (the
/// clock stepped back) counts as now.
pub fn instant_of(stamp: SystemTime, wall_now: SystemTime, now: Instant) -> Option<Instant> {
    let age = wall_now.duration_since(stamp).unwrap_or(Duration::ZERO);
    if age > TIMESTAMP_AGE_MAX {
        return None;
    }
    now.checked_sub(age)
}

impl ProbeSocket {
    /// Sends one Ethernet frame without waiting: a full transmit queue is
    /// an error (EAGAIN) for the caller to count, never a stall of the
    /// control thread.
    pub fn try_send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: frame is valid for reads of frame.len() bytes.
        let r = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
            )
        };
        cvt_size(r).map(|_| ())
    }
}

impl AsRawFd for ProbeSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testns::{ifindex, in_new_netns, sh, wait_up};

    #[test]
    fn only_probe_frames_pass_the_filter() {
        in_new_netns(|| {
            sh("ip link add pa type veth peer name pb && ip link set pa up && ip link set pb up");
            wait_up("pa");
            wait_up("pb");
            let ta = Ipv4Addr::new(192, 0, 2, 201);
            let s = ProbeSocket::open(ifindex("pb"), Some(ta)).unwrap();
            let tx = ProbeSocket::open(ifindex("pa"), None).unwrap();
            let send = |f: &[u8]| tx.try_send(f).unwrap();
            let a = [2, 0, 0, 0, 0, 1];
            let b = [2, 0, 0, 0, 0, 2];
            let router = Ipv4Addr::new(192, 0, 2, 1);
            let reply = crate::detect::frames::echo_request(b, a, router, ta, 1, 1, &[0; 20]);
            let mut echo_reply = reply.clone();
            // An echo reply; the filter does not check sums.
            let at = L3 + ipv4::MIN_HEADER_LEN + icmpv4::field::TYPE;
            echo_reply[at] = icmpv4::msg_type::ECHO_REPLY;
            let arp_reply = crate::detect::frames::arp_reply(b, router, a, ta);
            let arp_for_ta = crate::detect::frames::arp_request(b, router, ta);
            let arp_for_other = crate::detect::frames::arp_request(b, router, Ipv4Addr::new(192, 0, 2, 7));
            let (ll_a, ll_b) = (
                crate::wire::ipv6::link_local_from_mac(a),
                crate::wire::ipv6::link_local_from_mac(b),
            );
            let echo6 = crate::detect::frames6::echo6_request(b, a, ll_b, ll_a, 1, 1, &[0; 20]);
            let mut echo6_reply = echo6.clone();
            echo6_reply[L3 + ipv6::HEADER_LEN + icmpv6::field::TYPE] = icmpv6::msg_type::ECHO_REPLY;
            let mut frag = echo_reply.clone();
            // A later fragment (offset 8 bytes), DF as before.
            ipv4::Packet::new_unchecked(&mut frag[L3..]).set_flags_and_offset(ipv4::FLAG_DF | 1);
            for f in [
                &reply,
                &arp_for_other,
                &frag,
                &echo6,
                &echo_reply,
                &arp_reply,
                &arp_for_ta,
                &echo6_reply,
            ] {
                send(f);
            }
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            for _ in 0..200 {
                match s.recv(&mut buf).unwrap() {
                    Some(n) => got.push(buf[..n].to_vec()),
                    None => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
                if got.len() == 4 {
                    break;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert_eq!(s.recv(&mut buf).unwrap(), None, "nothing else passes");
            assert_eq!(got, vec![echo_reply, arp_reply.clone(), arp_for_ta, echo6_reply]);
            // Each frame carries the kernel's receive time.
            let before = SystemTime::now();
            send(&arp_reply);
            let stamped = (0..200).find_map(|_| {
                let r = s.recv_stamped(&mut buf).unwrap();
                if r.is_none() {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                r
            });
            let (_, stamp) = stamped.expect("the frame arrives");
            let stamp = stamp.expect("a kernel timestamp");
            assert!(stamp >= before && stamp <= SystemTime::now(), "{stamp:?}");
        });
    }

    #[test]
    fn kernel_times_become_instants_by_their_age() {
        let now = Instant::now();
        let wall = SystemTime::now();
        let ms = Duration::from_millis;
        assert_eq!(instant_of(wall - ms(3), wall, now), now.checked_sub(ms(3)));
        // The clock stepped back after the frame: now.
        assert_eq!(instant_of(wall + ms(3), wall, now), Some(now));
        assert_eq!(instant_of(wall - TIMESTAMP_AGE_MAX - ms(1), wall, now), None);
    }
}
