//! udpgap: a paced UDP stream and a receiver that reports its longest gap,
//! for failover benchmarks (scripts/bench-failover.sh).
//!
//! ```text
//! udpgap send --dst 192.0.2.1:9000 --rate 20000 --seconds 10 [--bind 192.0.2.200] [--sport N]
//! udpgap recv --bind 192.0.2.1:9000 --seconds 12 [--gap-ms 20] [--arrivals FILE]
//! ```
//!
//! `send` sends one flow (one fixed source port) at a steady rate, paced
//! against a deadline schedule; each payload is an 8-byte sequence number and
//! an 8-byte send timestamp (ns since the Unix epoch, little-endian). At the
//! end it sends three end markers (sequence number u64::MAX, then the number
//! of datagrams sent) and prints one JSON line with what it sent.
//!
//! `recv` stops after `--seconds`, 2 s without a packet once one arrived, or
//! at an end marker, and prints one JSON line: received, lost (sequence gaps,
//! and the tail lost when an end marker told the count), max_gap_ms (the
//! largest gap between the arrival times of consecutive received packets,
//! kernel receive timestamps), max_gap_at_s (where that gap starts, seconds
//! after the first packet), reordered (packets older than one already seen).
//! With `--gap-ms N` it also lists every gap longer than N ms (at most
//! MAX_GAPS): `[start, ms, skipped]`, start = the kernel receive timestamp
//! of the packet before the gap (ns since the Unix epoch), skipped = the
//! sequence numbers missing across it (0: the stream paused whole, e.g. a
//! sender that was not scheduled; about rate x gap: frames lost on the way)
//! (scripts/bench-stall.sh).
//! With `--arrivals FILE` it also writes every received packet's arrival
//! (at most MAX_ARRIVALS), once the stream has ended: a first line
//! `# first_ns N` (the first packet's kernel receive timestamp, ns since the
//! Unix epoch: CLOCK_REALTIME, the clock of `date +%s%N`), then one line
//! `SEQ<TAB>NS` per packet in arrival order, NS relative to the first
//! (scripts/failover-plot.sh bins them around an event stamped on that clock).

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::exit;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PAYLOAD: usize = 16;
/// Behind schedule by more than this (the sender was descheduled): restart
/// the schedule instead of sending the backlog as one burst.
const MAX_LAG: Duration = Duration::from_millis(20);
/// Sequence numbers beyond this are not tracked for duplicates.
const MAX_TRACKED_SEQ: u64 = 1 << 28;
/// Sequence number of the end marker; the rest of its payload is the count.
const END: u64 = u64::MAX;
/// Bound on the gaps listed by `recv --gap-ms`.
const MAX_GAPS: usize = 1000;
/// Bound on the arrivals kept for `recv --arrivals` (16 bytes each: 64 MiB,
/// 200 s of a 20,000 packets/s stream).
const MAX_ARRIVALS: usize = 1 << 22;

fn usage() -> ! {
    eprintln!(
        "usage: udpgap send --dst ADDR:PORT --rate PPS --seconds S [--bind ADDR] [--sport N]\n\
         \x20      udpgap recv --bind ADDR:PORT --seconds S [--gap-ms N] [--arrivals FILE]"
    );
    exit(2)
}

/// `--name value` pairs after the subcommand.
fn opts(args: &[String]) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let Some(name) = k.strip_prefix("--") else {
            eprintln!("udpgap: unexpected argument {k:?}");
            usage()
        };
        let Some(v) = it.next() else {
            eprintln!("udpgap: --{name} needs a value");
            usage()
        };
        out.push((name, v.as_str()));
    }
    out
}

fn parse<T: std::str::FromStr>(name: &str, v: &str) -> T {
    v.parse().unwrap_or_else(|_| {
        eprintln!("udpgap: invalid --{name} {v:?}");
        usage()
    })
}

fn seconds(name: &str, v: &str) -> Duration {
    let s: f64 = parse(name, v);
    if !(s > 0.0 && s <= 86400.0) {
        eprintln!("udpgap: --{name} must be in (0, 86400]");
        usage()
    }
    Duration::from_secs_f64(s)
}

fn die(what: &str, e: std::io::Error) -> ! {
    eprintln!("udpgap: {what}: {e}");
    exit(1)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn setsockopt_int(fd: i32, level: i32, name: i32, val: i32) -> bool {
    // SAFETY: fd is an open socket; the option value is a valid c_int.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&val as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    rc == 0
}

fn send(args: &[String]) {
    let (mut dst, mut rate, mut secs, mut bind, mut sport) = (None, None, None, None, 0u16);
    for (k, v) in opts(args) {
        match k {
            "dst" => dst = Some(parse::<SocketAddr>(k, v)),
            "rate" => rate = Some(parse::<u32>(k, v)),
            "seconds" => secs = Some(seconds(k, v)),
            "bind" => bind = Some(parse::<IpAddr>(k, v)),
            "sport" => sport = parse(k, v),
            _ => usage(),
        }
    }
    let (Some(dst), Some(rate), Some(secs)) = (dst, rate, secs) else {
        usage()
    };
    if rate == 0 || rate > 10_000_000 {
        eprintln!("udpgap: --rate must be 1..10000000");
        exit(2);
    }
    let local = SocketAddr::new(bind.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), sport);
    let sock = UdpSocket::bind(local).unwrap_or_else(|e| die(&format!("bind {local}"), e));
    sock.connect(dst)
        .unwrap_or_else(|e| die(&format!("connect {dst}"), e));
    let sport = sock.local_addr().map_or(0, |a| a.port());
    // Precise short sleeps: no timer slack for this thread.
    // SAFETY: PR_SET_TIMERSLACK takes an unsigned long and no pointers.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };

    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = Instant::now();
    let end = start + secs;
    let mut due = start;
    let (mut seq, mut errors, mut resets) = (0u64, 0u64, 0u64);
    let mut buf = [0u8; PAYLOAD];
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if now < due {
            let left = due - now;
            if left > Duration::from_micros(30) {
                std::thread::sleep(left - Duration::from_micros(20));
            } else {
                std::hint::spin_loop();
            }
            continue;
        }
        if now - due > MAX_LAG {
            due = now;
            resets += 1;
        }
        buf[..8].copy_from_slice(&seq.to_le_bytes());
        buf[8..].copy_from_slice(&now_ns().to_le_bytes());
        // Errors (ENOBUFS, ECONNREFUSED from an ICMP error, no carrier) are
        // counted and the sequence number is consumed: the receiver sees loss.
        if sock.send(&buf).is_err() {
            errors += 1;
        }
        seq += 1;
        due += interval;
    }
    let took = start.elapsed().as_secs_f64();
    buf[..8].copy_from_slice(&END.to_le_bytes());
    buf[8..].copy_from_slice(&seq.to_le_bytes());
    for _ in 0..3 {
        let _ = sock.send(&buf);
        std::thread::sleep(Duration::from_millis(1));
    }
    println!(
        "{{\"sent\":{seq},\"send_errors\":{errors},\"late_resets\":{resets},\"sport\":{sport},\
         \"seconds\":{took:.3},\"rate\":{:.0}}}",
        seq as f64 / took
    );
}

/// Receives one datagram with its kernel receive timestamp (ns, realtime).
fn recv_stamped(fd: i32, buf: &mut [u8]) -> std::io::Result<(usize, u64)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = [0u64; 16];
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    // SAFETY: msg points at live buffers (buf, cbuf) for the whole call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled,
    // bounded by msg_controllen; SCM_TIMESTAMPNS carries a struct timespec.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                stamp = Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, stamp.unwrap_or_else(now_ns)))
}

fn recv(args: &[String]) {
    let (mut bind, mut secs, mut gap_ms, mut arrivals_path) = (None, None, None, None);
    for (k, v) in opts(args) {
        match k {
            "bind" => bind = Some(parse::<SocketAddr>(k, v)),
            "seconds" => secs = Some(seconds(k, v)),
            "gap-ms" => gap_ms = Some(parse::<u64>(k, v)),
            "arrivals" => arrivals_path = Some(std::path::PathBuf::from(v)),
            _ => usage(),
        }
    }
    let (Some(bind), Some(secs)) = (bind, secs) else {
        usage()
    };
    let sock = UdpSocket::bind(bind).unwrap_or_else(|e| die(&format!("bind {bind}"), e));
    let fd = sock.as_raw_fd();
    if !setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1) {
        die("SO_TIMESTAMPNS", std::io::Error::last_os_error());
    }
    // A deep queue, so a descheduled receiver loses nothing (FORCE needs root).
    let rcvbuf = 32 << 20;
    if !setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, rcvbuf) {
        setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, rcvbuf);
    }
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap_or_else(|e| die("SO_RCVTIMEO", e));

    let end = Instant::now() + secs;
    let idle_limit = Duration::from_secs(2);
    let mut seen: Vec<u64> = Vec::new(); // bitmap of sequence numbers
    let (mut received, mut dups, mut reordered) = (0u64, 0u64, 0u64);
    let mut max_seq: Option<u64> = None;
    let mut total: Option<u64> = None; // from the end marker
    let (mut first_ns, mut last_ns) = (0u64, 0u64);
    let (mut max_gap_ns, mut max_gap_at_ns) = (0u64, 0u64);
    let mut last_arrival: Option<Instant> = None;
    let gap_limit_ns = gap_ms.map(|m| m.saturating_mul(1_000_000));
    let mut gaps: Vec<(u64, u64, u64)> = Vec::new();
    let mut prev_seq: Option<u64> = None;
    // (sequence number, kernel receive timestamp); written after the stream,
    // so that file I/O never delays a receive.
    let mut arrivals: Vec<(u64, u64)> = Vec::new();
    let mut arrivals_dropped = 0u64;
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        if last_arrival.is_some_and(|t| t.elapsed() >= idle_limit) {
            break;
        }
        let (n, ts) = match recv_stamped(fd, &mut buf) {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => die("recvmsg", e),
        };
        if n < 8 {
            continue;
        }
        last_arrival = Some(Instant::now());
        let seq = u64::from_le_bytes(buf[..8].try_into().unwrap_or_default());
        if seq == END && n >= PAYLOAD {
            total = Some(u64::from_le_bytes(buf[8..16].try_into().unwrap_or_default()));
            break;
        }
        if seq < MAX_TRACKED_SEQ {
            let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
            if seen.len() <= word {
                seen.resize(word + 1, 0);
            }
            if seen[word] & bit != 0 {
                dups += 1;
                continue;
            }
            seen[word] |= bit;
        }
        if received == 0 {
            first_ns = ts;
        } else if ts > last_ns && ts - last_ns > max_gap_ns {
            max_gap_ns = ts - last_ns;
            max_gap_at_ns = last_ns - first_ns;
        }
        if let (Some(limit), Some(p)) = (gap_limit_ns, prev_seq) {
            if received > 0 && ts > last_ns && ts - last_ns > limit && gaps.len() < MAX_GAPS {
                gaps.push((last_ns, ts - last_ns, seq.saturating_sub(p).saturating_sub(1)));
            }
        }
        if arrivals_path.is_some() {
            if arrivals.len() < MAX_ARRIVALS {
                arrivals.push((seq, ts));
            } else {
                arrivals_dropped += 1;
            }
        }
        prev_seq = Some(seq);
        last_ns = last_ns.max(ts);
        received += 1;
        match max_seq {
            Some(m) if seq < m => reordered += 1,
            _ => max_seq = Some(seq),
        }
    }
    if let Some(path) = &arrivals_path {
        write_arrivals(path, first_ns, &arrivals)
            .unwrap_or_else(|e| die(&format!("write {}", path.display()), e));
    }
    let arrivals_info = if arrivals_path.is_some() {
        format!(",\"first_ns\":{first_ns},\"arrivals_dropped\":{arrivals_dropped}")
    } else {
        String::new()
    };
    let expected = max_seq.map_or(0, |m| m + 1).max(total.unwrap_or(0));
    let gap_list = if gap_limit_ns.is_some() {
        let items: Vec<String> = gaps
            .iter()
            .map(|(at, len, skipped)| format!("[{at},{:.3},{skipped}]", *len as f64 / 1e6))
            .collect();
        format!(",\"first_ns\":{first_ns},\"gaps\":[{}]", items.join(","))
    } else {
        String::new()
    };
    println!(
        "{{\"received\":{received},\"lost\":{},\"max_gap_ms\":{:.3},\"max_gap_at_s\":{:.3},\
         \"reordered\":{reordered},\"duplicates\":{dups},\"max_seq\":{}{gap_list}{arrivals_info}}}",
        expected.saturating_sub(received),
        max_gap_ns as f64 / 1e6,
        max_gap_at_ns as f64 / 1e9,
        max_seq.map_or(-1, |m| m as i64)
    );
}

/// The `--arrivals` file: `# first_ns N`, then `SEQ<TAB>NS` (NS relative to
/// N; a timestamp older than the first, which the kernel can give a
/// reordered packet, counts as 0).
fn write_arrivals(path: &std::path::Path, first_ns: u64, arrivals: &[(u64, u64)]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "# first_ns {first_ns}")?;
    for (seq, ts) in arrivals {
        writeln!(out, "{seq}\t{}", ts.saturating_sub(first_ns))?;
    }
    out.flush()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("send") => send(&args[1..]),
        Some("recv") => recv(&args[1..]),
        _ => usage(),
    }
}
