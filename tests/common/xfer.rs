//! A checksummed TCP transfer between two lab namespaces, IPv4 or IPv6:
//! what the sender wrote (byte count and SHA-256) must be what the receiver
//! read, end to end.

use super::{wait_until, Lab};
use std::time::Duration;

/// `recv ADDR PORT` listens, reads to the end and prints the byte count and
/// SHA-256; `send ADDR PORT BYTES` sends a fixed pseudo-random 1 MiB block
/// over and over and prints the same of what it sent. The address family
/// follows the address.
const XFER_PY: &str = r#"
import hashlib, socket, sys
BLOCK = hashlib.shake_256(b"ipmpd ipv6 transfer").digest(1 << 20)
mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
h, n = hashlib.sha256(), 0
if mode == "recv":
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(1)
    print("listening", flush=True)
    c, _ = s.accept()
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        h.update(b); n += len(b)
else:
    total = int(sys.argv[4])
    c = socket.create_connection((addr, port))
    while n < total:
        b = BLOCK[: min(len(BLOCK), total - n)]
        c.sendall(b); h.update(b); n += len(b)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)
print(n, h.hexdigest(), flush=True)
"#;
/// How long the receiver may take to listen (python start-up on a busy machine).
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the receiver may take to print its sum after the sender ended.
const RECEIVER_END_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `bytes` from namespace `sender` to `at:port`, where `receiver`
/// listens, bounded by `timeout_s` seconds; panics unless the receiver got
/// exactly what was sent (count and SHA-256). `what` names the case in
/// the failure message.
pub fn transfer_intact(
    lab: &Lab,
    what: &str,
    (sender, receiver): (&str, &str),
    (at, port): (&str, &str),
    bytes: u64,
    timeout_s: &str,
) {
    let total = bytes.to_string();
    let mut rx = lab.spawn(receiver, "python3", &["-c", XFER_PY, "recv", at, port]);
    assert!(
        wait_until(LISTEN_TIMEOUT, || rx.stdout_text().contains("listening")),
        "{what}: receiver did not start: {}",
        rx.stderr_text()
    );
    let out = lab.exec(
        sender,
        &[
            "timeout", timeout_s, "python3", "-c", XFER_PY, "send", at, port, &total,
        ],
    );
    let sent = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success(),
        "{what}: {sender} -> {receiver}: {sent} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    rx.wait_timeout(RECEIVER_END_TIMEOUT);
    let got = rx.stdout_text();
    let got = got.lines().last().unwrap_or_default().trim().to_string();
    assert_eq!(
        got, sent,
        "{what}: {sender} -> {receiver}: received {got:?}, sent {sent:?}"
    );
    assert!(sent.starts_with(&format!("{total} ")), "{what}: {sent}");
}
