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

fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn ipv4_icmp(dst_mac: [u8; 6], src_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr, icmp: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 20 + icmp.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 1;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(icmp);
    f
}

fn icmp(kind: u8, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(payload);
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn arp_request(src_mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&sender.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
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
        frames.push(ipv4_icmp(
            member,
            me,
            src,
            test_addr,
            &icmp(8, rng.next() as u16, i as u16, &[0; 20]),
        ));
        let payload: Vec<u8> = (0..20).map(|_| rng.next() as u8).collect();
        frames.push(ipv4_icmp(
            member,
            me,
            target,
            test_addr,
            &icmp(0, id, i as u16, &payload),
        ));
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
