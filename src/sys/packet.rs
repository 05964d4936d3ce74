//! AF_PACKET sockets on the members, with virtio-net headers.
//!
//! Each member gets two sockets: a non-blocking receive socket bound with
//! ETH_P_ALL (the only kind that sees frames before the tcx program drops
//! them) that ignores our own outgoing frames, and a non-blocking send
//! socket bound with protocol 0 (it receives nothing). A member whose queue
//! is full (its qdisc drops, or its socket's send buffer is full because the
//! NIC stopped draining) loses the frame at once, counted, so one wedged
//! member never holds up the frames of the others.

use super::{cvt, cvt_size, setsockopt};
use crate::wire::virtio::{HEADER_LEN as VNET_HDR_LEN, MAX_FRAME};
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub const ETH_P_ALL: u16 = 0x0003;
/// Frames received per recvmmsg call.
pub const BATCH: usize = 32;
/// Room before each received frame, so a VLAN tag delivered out of band can
/// be reinserted by moving only the vnet header and the MACs.
pub const HEADROOM: usize = 4;
/// One receive slot: headroom, vnet header, the largest describable frame.
pub const SLOT_LEN: usize = HEADROOM + VNET_HDR_LEN + MAX_FRAME;
const RCVBUF: libc::c_int = 8 << 20;
const SNDBUF: libc::c_int = 4 << 20;
const CTRL_LEN: usize = 64;

fn socket() -> io::Result<OwnedFd> {
    // Protocol 0: the socket sees nothing until bound.
    // SAFETY: plain socket(2) call; the result is checked.
    let raw = cvt(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: raw is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

pub(crate) fn bind(fd: &OwnedFd, ifindex: u32, proto: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = proto.to_be();
    sa.sll_ifindex = ifindex as i32;
    // SAFETY: sa is a valid sockaddr_ll and its size is passed.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    let fl = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) }).map(|_| ())
}

/// A step of setting up a member's socket that failed.
#[derive(Debug, thiserror::Error)]
#[error("{op} on {ifname}: {source}")]
pub struct SetupError {
    pub op: &'static str,
    pub ifname: String,
    #[source]
    pub source: io::Error,
}

/// Names the failed step; the kind stays the OS error's.
fn ctx(source: io::Error, op: &'static str, ifname: &str) -> io::Error {
    let kind = source.kind();
    let ifname = ifname.to_string();
    io::Error::new(kind, SetupError { op, ifname, source })
}

/// A packet socket with virtio-net headers and a socket buffer of `size`
/// (the *FORCE option lifts the sysctl cap; it needs CAP_NET_ADMIN).
fn vnet_socket(
    ifname: &str,
    force_opt: libc::c_int,
    opt: libc::c_int,
    size: libc::c_int,
) -> io::Result<OwnedFd> {
    let fd = socket().map_err(|e| ctx(e, "opening packet socket", ifname))?;
    let one: libc::c_int = 1;
    setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VNET_HDR, &one)
        .map_err(|e| ctx(e, "PACKET_VNET_HDR", ifname))?;
    if setsockopt(&fd, libc::SOL_SOCKET, force_opt, &size).is_err() {
        setsockopt(&fd, libc::SOL_SOCKET, opt, &size).map_err(|e| ctx(e, "socket buffer size", ifname))?;
    }
    Ok(fd)
}

/// The receive socket of one member.
pub struct RxSocket {
    fd: OwnedFd,
    ifindex: u32,
}

impl RxSocket {
    pub fn open(ifindex: u32, ifname: &str) -> io::Result<RxSocket> {
        let fd = vnet_socket(ifname, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, RCVBUF)?;
        let one: libc::c_int = 1;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_AUXDATA, &one)
            .map_err(|e| ctx(e, "PACKET_AUXDATA", ifname))?;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one)
            .map_err(|e| ctx(e, "PACKET_IGNORE_OUTGOING", ifname))?;
        set_nonblocking(&fd)?;
        bind(&fd, ifindex, ETH_P_ALL).map_err(|e| ctx(e, "binding packet socket", ifname))?;
        Ok(RxSocket { fd, ifindex })
    }

    /// Attaches (or replaces, atomically) the socket's classic BPF filter:
    /// from then on only the frames it accepts are queued.
    pub fn set_filter(&self, filter: &[libc::sock_filter]) -> io::Result<()> {
        let len = u16::try_from(filter.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let prog = libc::sock_fprog {
            len,
            filter: filter.as_ptr() as *mut libc::sock_filter,
        };
        setsockopt(&self.fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)
    }

    fn membership(&self, opt: libc::c_int, what: &'static str) -> io::Result<()> {
        self.membership_of(opt, libc::PACKET_MR_ALLMULTI, None, what)
    }

    fn membership_of(
        &self,
        opt: libc::c_int,
        kind: libc::c_int,
        mac: Option<[u8; 6]>,
        what: &'static str,
    ) -> io::Result<()> {
        // SAFETY: packet_mreq is plain data; all-zero is valid.
        let mut mr: libc::packet_mreq = unsafe { zeroed() };
        mr.mr_ifindex = self.ifindex as i32;
        mr.mr_type = kind as u16;
        if let Some(m) = mac {
            mr.mr_alen = m.len() as u16;
            mr.mr_address[..m.len()].copy_from_slice(&m);
        }
        setsockopt(&self.fd, libc::SOL_PACKET, opt, &mr)
            .map_err(|e| ctx(e, what, &format!("index {}", self.ifindex)))
    }

    /// Receive all multicast on this member (the nominee), without
    /// promiscuous mode: real NICs filter multicast in hardware. Held by the
    /// socket, so it ends with the daemon.
    pub fn join_all_multicast(&self) -> io::Result<()> {
        self.membership(libc::PACKET_ADD_MEMBERSHIP, "joining all-multicast")
    }

    /// Receive the multicast group with Ethernet address `mac` on this
    /// member (a test address's solicited-node group) despite hardware
    /// filters. Held by the socket.
    pub fn join_multicast(&self, mac: [u8; 6]) -> io::Result<()> {
        self.membership_of(
            libc::PACKET_ADD_MEMBERSHIP,
            libc::PACKET_MR_MULTICAST,
            Some(mac),
            "joining a multicast group",
        )
    }

    /// Stop receiving the multicast group with Ethernet address `mac`
    /// (an old test address's solicited-node group after a MAC change).
    pub fn leave_multicast(&self, mac: [u8; 6]) -> io::Result<()> {
        self.membership_of(
            libc::PACKET_DROP_MEMBERSHIP,
            libc::PACKET_MR_MULTICAST,
            Some(mac),
            "leaving a multicast group",
        )
    }

    pub fn leave_all_multicast(&self) -> io::Result<()> {
        self.membership(libc::PACKET_DROP_MEMBERSHIP, "leaving all-multicast")
    }
}

impl AsRawFd for RxSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The send socket of one member.
pub struct TxSocket {
    fd: OwnedFd,
}

impl TxSocket {
    /// `qdisc_bypass`: frames go straight to the driver (PACKET_QDISC_BYPASS),
    /// unseen by tcpdump on the member and by tc egress.
    pub fn open(ifindex: u32, ifname: &str, qdisc_bypass: bool) -> io::Result<TxSocket> {
        let fd = vnet_socket(ifname, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, SNDBUF)?;
        if qdisc_bypass {
            let one: libc::c_int = 1;
            setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &one)
                .map_err(|e| ctx(e, "PACKET_QDISC_BYPASS", ifname))?;
        }
        // Every user of the socket (the data thread, gratuitous ARPs and
        // probes from the control thread) must never wait on the member.
        set_nonblocking(&fd).map_err(|e| ctx(e, "O_NONBLOCK", ifname))?;
        bind(&fd, ifindex, 0).map_err(|e| ctx(e, "binding packet socket", ifname))?;
        Ok(TxSocket { fd })
    }

    /// Sends one frame, vnet header first, without ever waiting.
    pub fn send(&self, buf: &[u8]) -> Result<(), SendError> {
        // MSG_DONTWAIT as well as O_NONBLOCK: the send must not wait even if
        // the descriptor's flags were changed.
        // SAFETY: buf is valid for reads of buf.len() bytes.
        let r = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        cvt_size(r).map(|_| ()).map_err(SendError::from)
    }

    /// Sends up to [`SEND_BATCH`] frames (each vnet header first) with one
    /// sendmmsg(2), in order, without ever waiting; frames past
    /// [`SEND_BATCH`] are not looked at. Returns how many left (at least
    /// one), or the error of the first frame when none did. Like
    /// sendmmsg(2) itself, it stops at the first frame the kernel refuses
    /// and forgets that frame's error: calling again from there tells it.
    pub fn send_batch(&self, frames: &[&[u8]]) -> Result<usize, SendError> {
        let n = frames.len().min(SEND_BATCH);
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: iovec and mmsghdr are plain C structs; all-zero is valid.
        let mut iovs: [libc::iovec; SEND_BATCH] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; SEND_BATCH] = unsafe { zeroed() };
        for (i, f) in frames[..n].iter().enumerate() {
            iovs[i] = libc::iovec {
                iov_base: f.as_ptr().cast_mut().cast(),
                iov_len: f.len(),
            };
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the first n headers each point to one iovec on this stack
        // frame, which points into a frame borrowed for the whole call; the
        // kernel only reads the frames (and writes msg_len in the headers).
        let r = unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                n as u32,
                libc::MSG_DONTWAIT,
            )
        };
        cvt(r).map(|k| k as usize).map_err(SendError::from)
    }
}

/// Frames handed to one sendmmsg(2) call at most.
pub const SEND_BATCH: usize = 32;

/// Why a frame did not leave through a member.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The member cannot take the frame now: its socket's send buffer is
    /// full (EAGAIN). The frame is dropped, never retried.
    #[error("transmit queue full")]
    QueueFull,
    /// The qdisc or a tc rule refused this one frame (ENOBUFS: say, a flow
    /// at fq's per-flow limit); the member may well take the next. Dropped,
    /// counted as a full queue.
    #[error("transmit queue refused the frame")]
    Refused,
    /// Any other refusal (the interface went down, a malformed frame...).
    #[error(transparent)]
    Io(io::Error),
}

/// Sorts send(2)'s own errno: the plain OS error, not a wrapped one.
impl From<io::Error> for SendError {
    fn from(e: io::Error) -> SendError {
        match e.raw_os_error() {
            Some(libc::EAGAIN) => SendError::QueueFull,
            Some(libc::ENOBUFS) => SendError::Refused,
            _ => SendError::Io(e),
        }
    }
}

/// What the kernel told us about one received frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxMeta {
    /// Bytes received: vnet header plus frame.
    pub len: usize,
    /// PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST.
    pub pkttype: u8,
    /// (TPID, TCI) of a VLAN tag the NIC stripped.
    pub vlan: Option<(u16, u16)>,
    /// The frame did not fit the slot.
    pub truncated: bool,
}

/// Buffers for one recvmmsg call, allocated once per thread.
pub struct RecvBatch {
    buf: Vec<u8>,
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_ll>,
    ctrl: Vec<[u64; CTRL_LEN / 8]>,
    meta: [RxMeta; BATCH],
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            buf: vec![0; BATCH * SLOT_LEN],
            // SAFETY: these are plain C structs; all-zero is a valid value.
            hdrs: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            // SAFETY: as above.
            iovs: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            // SAFETY: as above.
            addrs: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            ctrl: vec![[0; CTRL_LEN / 8]; BATCH],
            meta: [RxMeta::default(); BATCH],
        }
    }
}

/// Data offset of a control message: CMSG_ALIGN(sizeof(struct cmsghdr)).
const CMSG_HDR: usize = size_of::<libc::cmsghdr>().div_ceil(size_of::<usize>()) * size_of::<usize>();

impl RecvBatch {
    /// Receives up to [`BATCH`] frames without blocking; returns how many.
    pub fn recv(&mut self, sock: &RxSocket) -> io::Result<usize> {
        for i in 0..BATCH {
            // Re-pointed on every call: cheap, and no pointer outlives a move.
            self.iovs[i] = libc::iovec {
                iov_base: self.buf[i * SLOT_LEN + HEADROOM..].as_mut_ptr().cast(),
                iov_len: SLOT_LEN - HEADROOM,
            };
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_ll).cast();
            h.msg_namelen = size_of::<libc::sockaddr_ll>() as u32;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = self.ctrl[i].as_mut_ptr().cast();
            h.msg_controllen = CTRL_LEN;
            h.msg_flags = 0;
        }
        // SAFETY: every header points into buffers owned by self that stay
        // alive and unmoved for the duration of the call.
        let r = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        let n = match cvt(r) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) => return Err(e),
        };
        for i in 0..n {
            let h = &self.hdrs[i];
            let ctrl_len = h.msg_hdr.msg_controllen.min(CTRL_LEN);
            let ctrl: &[u8] = bytes_of(&self.ctrl[i]);
            self.meta[i] = RxMeta {
                len: h.msg_len as usize,
                pkttype: self.addrs[i].sll_pkttype,
                vlan: parse_auxdata_vlan(&ctrl[..ctrl_len]),
                truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            };
        }
        Ok(n)
    }

    pub fn meta(&self, i: usize) -> RxMeta {
        self.meta[i]
    }

    /// The whole slot of frame `i`: [`HEADROOM`] spare bytes, then the vnet
    /// header and the frame (`meta(i).len` bytes).
    pub fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self.buf[i * SLOT_LEN..(i + 1) * SLOT_LEN]
    }
}

fn bytes_of(words: &[u64; CTRL_LEN / 8]) -> &[u8] {
    // SAFETY: u64 has no padding and any byte pattern is a valid u8; the
    // slice covers exactly the array.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast(), CTRL_LEN) }
}

/// `struct tpacket_auxdata` (linux/if_packet.h): the fields we read.
pub mod auxdata {
    use std::ops::Range;
    pub const STATUS: Range<usize> = 0..4;
    pub const VLAN_TCI: Range<usize> = 16..18;
    pub const VLAN_TPID: Range<usize> = 18..20;
    /// Bytes up to the last field we read.
    pub const LEN: usize = VLAN_TPID.end;
}

/// Finds PACKET_AUXDATA among the control messages and returns the VLAN tag
/// it reports, if any. Pure byte parsing of `struct cmsghdr` +
/// `struct tpacket_auxdata`.
pub fn parse_auxdata_vlan(ctrl: &[u8]) -> Option<(u16, u16)> {
    let usz = size_of::<usize>();
    let mut off = 0;
    while off + CMSG_HDR <= ctrl.len() {
        let len = usize::from_ne_bytes(ctrl[off..off + usz].try_into().ok()?);
        let level = i32::from_ne_bytes(ctrl[off + usz..off + usz + 4].try_into().ok()?);
        let ty = i32::from_ne_bytes(ctrl[off + usz + 4..off + usz + 8].try_into().ok()?);
        // A length past the buffer (or so large the end wraps) ends the walk.
        let end = off
            .checked_add(len)
            .filter(|&e| e <= ctrl.len() && len >= CMSG_HDR)?;
        let data = &ctrl[off + CMSG_HDR..end];
        if level == libc::SOL_PACKET && ty == libc::PACKET_AUXDATA && data.len() >= auxdata::LEN {
            let status = u32::from_ne_bytes(data[auxdata::STATUS].try_into().ok()?);
            let tci = u16::from_ne_bytes(data[auxdata::VLAN_TCI].try_into().ok()?);
            let tpid = u16::from_ne_bytes(data[auxdata::VLAN_TPID].try_into().ok()?);
            if status & libc::TP_STATUS_VLAN_VALID == 0 {
                return None;
            }
            let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                tpid
            } else {
                crate::wire::ethernet::ethertype::VLAN
            };
            return Some((tpid, tci));
        }
        off += len.div_ceil(usz) * usz;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmsg(status: u32, tci: u16, tpid: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(CMSG_HDR + auxdata::LEN).to_ne_bytes());
        v.extend_from_slice(&libc::SOL_PACKET.to_ne_bytes());
        v.extend_from_slice(&libc::PACKET_AUXDATA.to_ne_bytes());
        v.resize(CMSG_HDR, 0);
        let mut data = [0u8; auxdata::LEN];
        data[auxdata::STATUS].copy_from_slice(&status.to_ne_bytes());
        data[auxdata::VLAN_TCI].copy_from_slice(&tci.to_ne_bytes());
        data[auxdata::VLAN_TPID].copy_from_slice(&tpid.to_ne_bytes());
        v.extend_from_slice(&data);
        v
    }

    #[test]
    fn full_queue_is_told_apart_from_other_errors() {
        let e = SendError::from(io::Error::from_raw_os_error(libc::EAGAIN));
        assert!(matches!(e, SendError::QueueFull), "{e}");
        let e = SendError::from(io::Error::from_raw_os_error(libc::ENOBUFS));
        assert!(matches!(e, SendError::Refused), "{e}");
        for errno in [libc::ENETDOWN, libc::ENXIO, libc::EMSGSIZE, libc::EINVAL] {
            let e = SendError::from(io::Error::from_raw_os_error(errno));
            assert!(matches!(e, SendError::Io(_)), "{errno}: {e}");
        }
    }

    #[test]
    fn auxdata_vlan_parsing() {
        assert_eq!(
            parse_auxdata_vlan(&cmsg(libc::TP_STATUS_VLAN_VALID, 5, 0)),
            Some((0x8100, 5))
        );
        assert_eq!(
            parse_auxdata_vlan(&cmsg(
                libc::TP_STATUS_VLAN_VALID | libc::TP_STATUS_VLAN_TPID_VALID,
                7,
                0x88a8
            )),
            Some((0x88a8, 7))
        );
        assert_eq!(parse_auxdata_vlan(&cmsg(0, 5, 0)), None);
        let c = cmsg(libc::TP_STATUS_VLAN_VALID, 5, 0);
        for n in 0..c.len() {
            assert_eq!(parse_auxdata_vlan(&c[..n]), None, "truncated at {n}");
        }
    }

    #[test]
    fn auxdata_with_an_absurd_length_after_a_valid_message_is_refused() {
        // A first message of another type, then one claiming usize::MAX
        // bytes: the end offset must not wrap around.
        let mut c = cmsg(libc::TP_STATUS_VLAN_VALID, 5, 0);
        c[size_of::<usize>()..size_of::<usize>() + 4].copy_from_slice(&0i32.to_ne_bytes());
        let mut second = cmsg(libc::TP_STATUS_VLAN_VALID, 5, 0);
        second[..size_of::<usize>()].copy_from_slice(&usize::MAX.to_ne_bytes());
        c.resize(c.len().div_ceil(size_of::<usize>()) * size_of::<usize>(), 0);
        c.extend_from_slice(&second);
        assert_eq!(parse_auxdata_vlan(&c), None);
    }
}
