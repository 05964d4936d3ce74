//! The control side seen from outside: the status snapshot, its
//! ipmpstat-style rendering, and the per-group Unix socket.

pub mod format;
#[doc(hidden)]
pub mod hostile;
pub mod server;
pub mod socket;

pub mod metrics;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the request/response protocol on the control socket.
pub const PROTOCOL_VERSION: u32 = 1;
/// What ipmpstat prints when no daemon answers (exit status 1).
pub const NOT_RUNNING: &str = "cannot contact ipmpd -- is IPMP in use?";

/// One group's state, as ipmpstat shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// The group interface (GROUP column).
    pub interface: String,
    /// The group's name (GROUPNAME column).
    pub group: String,
    /// ok, degraded or failed.
    pub state: String,
    /// Failure detection time in ms; None when nothing probes.
    pub fdt_ms: Option<u64>,
    pub members: Vec<MemberStatus>,
    pub addresses: Vec<AddressStatus>,
    /// Members that left the active set by failing, since start.
    #[serde(default)]
    pub failovers: u64,
}

/// A member's traffic counters (frames from the wire are `rx`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Drops by reason, only reasons that occurred.
    pub rx_drops: BTreeMap<String, u64>,
    pub tx_drops: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub name: String,
    pub active: bool,
    /// Seven characters "ismbMdh", '-' where unset.
    pub flags: String,
    /// up, down or unknown.
    pub link: String,
    /// ok, failed, unknown or disabled.
    pub probe: String,
    /// ok, failed, offline or unknown.
    pub state: String,
    /// The -t MODE column: routes, multicast or disabled.
    pub probe_mode: String,
    pub test_address: Option<String>,
    /// In firing order.
    pub targets: Vec<String>,
    /// Usable (functioning and not offline) but not active.
    pub inactive: bool,
    #[serde(default)]
    pub counters: Counters,
    /// Smoothed probe RTT over the member's targets, in microseconds.
    #[serde(default)]
    pub rtt_us: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressStatus {
    pub address: String,
    /// up, or down when no member can carry it.
    pub state: String,
    /// The member answering ARP for it.
    pub inbound: Option<String>,
    /// Every active member.
    pub outbound: Vec<String>,
}

/// One probe outcome, streamed to `ipmpstat -p` (one JSON object a line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeEvent {
    /// Milliseconds since the daemon started.
    pub time_ms: u64,
    pub interface: String,
    pub seq: u16,
    pub target: String,
    /// None: the probe was lost.
    pub rtt_us: Option<u64>,
    pub rtt_avg_us: Option<u64>,
    pub rtt_dev_us: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub version: u32,
    /// status, offline, online, standby.
    pub command: String,
    /// The command's operands, e.g. ["e1000g0"] or ["rge0", "on"].
    #[serde(default)]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub version: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<GroupStatus>,
}

/// Parses one request line as read from the control socket (the trailing
/// newline may be there or not): bounded, UTF-8, JSON, and of our protocol
/// version. The error is the text sent back to the client.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    if line.len() > server::MAX_REQUEST_LINE {
        return Err(format!("request longer than {} bytes", server::MAX_REQUEST_LINE));
    }
    let text = std::str::from_utf8(line).map_err(|e| format!("malformed request: {e}"))?;
    match serde_json::from_str::<Request>(text) {
        Err(e) => Err(format!("malformed request: {e}")),
        Ok(r) if r.version != PROTOCOL_VERSION => Err(format!(
            "protocol version {} not supported (this ipmpd speaks {PROTOCOL_VERSION})",
            r.version
        )),
        Ok(r) => Ok(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_bad_ones_say_why() {
        let r = parse_request(b"{\"version\":1,\"command\":\"offline\",\"args\":[\"e0\"]}\n").unwrap();
        assert_eq!(
            (r.command.as_str(), r.args.as_slice()),
            ("offline", &["e0".to_string()][..])
        );
        let r = parse_request(b"{\"version\":1,\"command\":\"status\"}").unwrap();
        assert!(r.args.is_empty());
        let e = parse_request(b"{\"version\":2,\"command\":\"status\"}").unwrap_err();
        assert!(e.contains("protocol version 2"), "{e}");
        assert!(parse_request(b"status\n")
            .unwrap_err()
            .starts_with("malformed request"));
        assert!(parse_request(b"\xff\xfe").unwrap_err().contains("utf-8"));
        let mut long = b"{\"version\":1,\"command\":\"status\",\"args\":[\"".to_vec();
        long.resize(server::MAX_REQUEST_LINE + 1, b'a');
        assert!(parse_request(&long).unwrap_err().contains("longer than 4096"));
    }
}
