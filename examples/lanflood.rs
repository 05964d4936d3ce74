//! A bounded flood from a hostile LAN host, for tests/forgery.rs and
//! docs/BENCHMARKS.md. Lab namespaces only.
//!
//! ```text
//! lanflood IFACE SECONDS RATE MEMBER_MAC TEST_ADDR ICMP_ID DATA_ADDR
//! ```
//!
//! Sends RATE frames per second for SECONDS (both capped) on IFACE, in turn:
//! ICMP echo requests to TEST_ADDR (unicast to MEMBER_MAC), bogus echo
//! replies to TEST_ADDR carrying the daemon's ICMP_ID and a random payload,
//! and broadcast ARP requests for DATA_ADDR from rotating sender addresses.
//! Prints `sent=N seconds=S rate=R` (the rate actually reached).

use ipmpd::wire::ethernet::{self, Address};
use ipmpd::wire::{arp, icmpv4, ipv4};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Bounds, whatever the arguments say.
const MAX_SECONDS: f64 = 30.0;
const MAX_RATE: u64 = 1_000_000;
/// Pacing granularity: each tick sends its share of the rate.
const TICK: Duration = Duration::from_millis(1);
/// Distinct frames of each kind, cycled.
const VARIANTS: usize = 64;
/// ARP senders rotate through this many addresses from SENDER_BASE.
const SENDER_BASE: [u8; 4] = [192, 0, 2, 100];
const ETH_P_ALL: u16 = 3;

/// Hop limit of the flood's datagrams (what a Linux host sends).
const TTL: u8 = 64;
/// Bytes of each echo message's data.
const ECHO_DATA_LEN: usize = 20;

/// An IPv4 datagram carrying `icmp`, in an Ethernet frame.
fn ipv4_icmp(
    dst_mac: Address,
    src_mac: Address,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    icmp: icmpv4::Repr,
) -> Vec<u8> {
    let ip = ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: ipv4::protocol::ICMP,
        payload_len: icmp.buffer_len(),
        ttl: TTL,
        dscp_ecn: 0,
        dont_frag: false,
        router_alert: false,
    };
    let eth = ethernet::Repr {
        src_addr: src_mac,
        dst_addr: dst_mac,
        ethertype: ethernet::ethertype::IPV4,
    };
    ip.frame(eth, |p| icmp.emit(&mut icmpv4::Packet::new_unchecked(p)))
}

/// A broadcast ARP request, unpadded (as short as the kernel lets it go).
fn arp_request(src_mac: Address, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let eth = ethernet::Repr {
        src_addr: src_mac,
        dst_addr: ethernet::BROADCAST,
        ethertype: ethernet::ethertype::ARP,
    };
    let arp = arp::Repr {
        operation: arp::op::REQUEST,
        source_hardware_addr: src_mac,
        source_protocol_addr: sender,
        target_hardware_addr: ethernet::UNSPECIFIED,
        target_protocol_addr: target,
    };
    let mut v = vec![0u8; eth.buffer_len() + arp.buffer_len()];
    let mut f = ethernet::Frame::new_unchecked(&mut v[..]);
    eth.emit(&mut f);
    arp.emit(&mut arp::Packet::new_unchecked(f.payload_mut()));
    v
}

fn parse_mac(s: &str) -> Option<Address> {
    let v: Vec<u8> = s
        .trim()
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).ok())
        .collect::<Option<_>>()?;
    v.try_into().ok()
}

struct Xorshift(u64);
impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// An AF_PACKET socket bound to `ifindex`, for sending only (protocol 0).
fn packet_socket(ifindex: i32) -> std::io::Result<i32> {
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: sockaddr_ll is a plain C struct; all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = ETH_P_ALL.to_be();
    sll.sll_ifindex = ifindex;
    // SAFETY: sll is a valid sockaddr_ll of the size passed.
    let r = unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // Straight to the driver: the sender measures the LAN, not its own qdisc.
    let one: libc::c_int = 1;
    // SAFETY: one is a valid c_int of the size passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    Ok(fd)
}

/// Frames per sendmmsg call.
const BURST: usize = 32;

/// Sends frames[first..first+n] (cyclically) with one sendmmsg; returns how
/// many the kernel took.
fn send_burst(fd: i32, frames: &[Vec<u8>], first: usize, n: usize) -> usize {
    let mut iov: Vec<libc::iovec> = (0..n)
        .map(|i| {
            let f = &frames[(first + i) % frames.len()];
            libc::iovec {
                iov_base: f.as_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            }
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            // SAFETY: mmsghdr is a plain C struct; all-zero is valid.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    // SAFETY: msgs and the iovecs and frames they point to outlive the call.
    let r = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), n as u32, 0) };
    r.max(0) as usize
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 8 {
        eprintln!("usage: lanflood IFACE SECONDS RATE MEMBER_MAC TEST_ADDR ICMP_ID DATA_ADDR");
        std::process::exit(2);
    }
    let iface = &a[1];
    let seconds: f64 = a[2].parse::<f64>().expect("SECONDS").clamp(0.0, MAX_SECONDS);
    let rate: u64 = a[3].parse::<u64>().expect("RATE").min(MAX_RATE);
    let member = parse_mac(&a[4]).expect("MEMBER_MAC");
    let test_addr: Ipv4Addr = a[5].parse().expect("TEST_ADDR");
    let id: u16 = a[6].parse().expect("ICMP_ID");
    let data: Ipv4Addr = a[7].parse().expect("DATA_ADDR");
    let me = parse_mac(&std::fs::read_to_string(format!("/sys/class/net/{iface}/address")).expect("own MAC"))
        .expect("own MAC");
    let c = std::ffi::CString::new(iface.as_str()).expect("IFACE");
    // SAFETY: c is NUL-terminated.
    let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) } as i32;
    let fd = packet_socket(ifindex).expect("AF_PACKET socket");
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    let mut frames = Vec::with_capacity(3 * VARIANTS);
    let target = Ipv4Addr::new(192, 0, 2, 1);
    for i in 0..VARIANTS {
        let src = Ipv4Addr::from(0xc633_6400u32 | (i as u32)); // 198.51.100.i
        let request = icmpv4::Repr::EchoRequest {
            ident: rng.next() as u16,
            seq_no: i as u16,
            data: &[0; ECHO_DATA_LEN],
        };
        frames.push(ipv4_icmp(member, me, src, test_addr, request));
        let payload: Vec<u8> = (0..ECHO_DATA_LEN).map(|_| rng.next() as u8).collect();
        let reply = icmpv4::Repr::EchoReply {
            ident: id,
            seq_no: i as u16,
            data: &payload,
        };
        frames.push(ipv4_icmp(member, me, target, test_addr, reply));
        let mut s = SENDER_BASE;
        s[3] += i as u8;
        frames.push(arp_request(me, Ipv4Addr::from(s), data));
    }
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let per_tick = (rate * TICK.as_micros() as u64 / 1_000_000).max(1);
    let mut sent: u64 = 0;
    let mut next = start;
    while Instant::now() < end {
        let mut left = per_tick as usize;
        while left > 0 {
            let n = left.min(BURST);
            let took = send_burst(fd, &frames, sent as usize, n);
            sent += took as u64;
            if took < n {
                break; // the device is full: wait for the next tick
            }
            left -= n;
        }
        next += TICK;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("sent={sent} seconds={secs:.2} rate={:.0}", sent as f64 / secs);
}
