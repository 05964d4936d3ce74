//! The control socket's messages as types: a [`Request`] or a [`Reply`]
//! inside an [`Envelope`] that carries the protocol version. On the wire
//! each is one JSON line (see the module doc of [`super`] for every
//! command); these types are what both sides hold, so no code matches a
//! command by its name.
//!
//! # Changing the protocol
//!
//! The daemon refuses requests of another [`PROTOCOL_VERSION`]; clients
//! read replies leniently, so an older ipmpstat still prints what a newer
//! daemon sends as long as the change is one of these:
//!
//! - a new value of a status state ([`super::state`]): every state enum has
//!   a catch-all, `Unrecognised`, that any name it does not know
//!   deserializes into; ipmpstat shows it as `?`;
//! - a new field in a status object: unknown fields are ignored (no
//!   `deny_unknown_fields`); give it `#[serde(default)]` so a newer client
//!   reads an older daemon too.
//!
//! Anything else a client cannot read needs a [`PROTOCOL_VERSION`] bump: a
//! new command, new or changed operands, a field renamed, removed or given
//! another type, a new required field.

use super::{server, GroupStatus};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// Version of the request/response protocol on the control socket.
pub const PROTOCOL_VERSION: u32 = 1;

/// A message with the protocol version it speaks:
/// `{"version":1,"command":"status"}`, `{"version":1,"ok":true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub version: u32,
    #[serde(flatten)]
    pub body: T,
}

impl<T> Envelope<T> {
    /// `body` in this daemon's protocol version.
    pub fn new(body: T) -> Envelope<T> {
        Envelope {
            version: PROTOCOL_VERSION,
            body,
        }
    }
}

/// Standby on or off, as `ipmpadm standby IF on|off` says it.
const ON: &str = "on";
const OFF: &str = "off";

/// What a client asks of the daemon. On the wire the command's name is the
/// `command` field and its operands the `args` array, e.g.
/// `"command":"standby","args":["rge0","on"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CommandLine", into = "CommandLine")]
pub enum Request {
    /// The group's status (`ipmpstat -a -g -i -t`); anyone allowed to connect.
    Status,
    /// A stream of probe results, one JSON line each (`ipmpstat -p`); anyone.
    Probes,
    /// Re-read the configuration (`ipmpadm reload`); root only.
    Reload,
    /// Take a member out of service (`ipmpadm offline`); root only.
    Offline { member: String },
    /// Put an offline member back (`ipmpadm online`); root only.
    Online { member: String },
    /// Make a member a standby or a normal member (`ipmpadm standby`); root only.
    Standby { member: String, standby: bool },
}

/// Every command's name, as the `command` field spells it.
pub const COMMANDS: [&str; 6] = ["status", "probes", "reload", "offline", "online", "standby"];

impl Request {
    /// The name on the wire (the `command` field).
    pub fn name(&self) -> &'static str {
        match self {
            Request::Status => COMMANDS[0],
            Request::Probes => COMMANDS[1],
            Request::Reload => COMMANDS[2],
            Request::Offline { .. } => COMMANDS[3],
            Request::Online { .. } => COMMANDS[4],
            Request::Standby { .. } => COMMANDS[5],
        }
    }

    /// The member a change is for.
    pub fn member(&self) -> Option<&str> {
        match self {
            Request::Offline { member } | Request::Online { member } | Request::Standby { member, .. } => {
                Some(member)
            }
            Request::Status | Request::Probes | Request::Reload => None,
        }
    }

    /// Whether it only reads (anyone may); every other request changes the
    /// group and needs root.
    pub fn reads_only(&self) -> bool {
        matches!(self, Request::Status | Request::Probes)
    }
}

/// A request as it travels: the command's name and its operands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CommandLine {
    command: String,
    /// The command's operands, e.g. ["e1000g0"] or ["rge0", "on"].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    args: Vec<String>,
}

impl TryFrom<CommandLine> for Request {
    type Error = String;

    /// Checks the command and its operands; the error names what is wrong.
    fn try_from(line: CommandLine) -> Result<Request, String> {
        let CommandLine { command, args } = line;
        let mut args = args.into_iter();
        let mut member = || args.next().ok_or_else(|| format!("{command}: which interface?"));
        let req = match command.as_str() {
            "status" => Request::Status,
            "probes" => Request::Probes,
            "reload" => Request::Reload,
            "offline" => Request::Offline { member: member()? },
            "online" => Request::Online { member: member()? },
            "standby" => {
                let member = member()?;
                let standby = match args.next().as_deref() {
                    Some(ON) => true,
                    Some(OFF) => false,
                    Some(other) => return Err(format!("standby: expected on or off, not {other:?}")),
                    None => return Err("standby: expected on or off".into()),
                };
                Request::Standby { member, standby }
            }
            other => {
                return Err(format!(
                    "unknown command {other:?} (commands: {})",
                    COMMANDS.join(", ")
                ))
            }
        };
        match args.next() {
            Some(extra) => Err(format!("{command}: unexpected operand {extra:?}")),
            None => Ok(req),
        }
    }
}

impl From<Request> for CommandLine {
    fn from(r: Request) -> CommandLine {
        let command = r.name().to_string();
        let args = match r {
            Request::Status | Request::Probes | Request::Reload => vec![],
            Request::Offline { member } | Request::Online { member } => vec![member],
            Request::Standby { member, standby } => {
                vec![member, (if standby { ON } else { OFF }).to_string()]
            }
        };
        CommandLine { command, args }
    }
}

/// The daemon's answer. On the wire `ok` tells success from refusal:
/// `"ok":true` (with `status` for a status request) or
/// `"ok":false,"error":"..."`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "ReplyLine")]
pub enum Reply {
    /// Done; for `probes`, the stream follows.
    Done,
    /// The answer to `status`.
    Status(Box<GroupStatus>),
    /// Refused or failed: the text says why.
    Error(String),
}

impl Reply {
    pub fn error(msg: impl fmt::Display) -> Reply {
        Reply::Error(msg.to_string())
    }

    pub fn ok(&self) -> bool {
        !matches!(self, Reply::Error(_))
    }
}

/// A reply as it travels (what [`Reply`] deserializes from).
#[derive(Deserialize)]
struct ReplyLine {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    status: Option<GroupStatus>,
}

impl From<ReplyLine> for Reply {
    fn from(l: ReplyLine) -> Reply {
        match l {
            ReplyLine { ok: false, error, .. } => Reply::Error(error.unwrap_or_default()),
            ReplyLine { status: Some(s), .. } => Reply::Status(Box::new(s)),
            ReplyLine { status: None, .. } => Reply::Done,
        }
    }
}

/// Written by hand rather than through `ReplyLine` so a status is not
/// copied to be sent.
impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Reply", 2)?;
        st.serialize_field("ok", &self.ok())?;
        match self {
            Reply::Done => {}
            Reply::Status(g) => st.serialize_field("status", g)?,
            Reply::Error(e) => st.serialize_field("error", e)?,
        }
        st.end()
    }
}

/// Parses one request line as read from the control socket (the trailing
/// newline may be there or not): bounded, UTF-8, JSON, of our protocol
/// version, then a known command with the operands it takes. The error is
/// the text sent back to the client.
pub fn parse_request(line: &[u8]) -> Result<Envelope<Request>, String> {
    if line.len() > server::MAX_REQUEST_LINE {
        return Err(format!("request longer than {} bytes", server::MAX_REQUEST_LINE));
    }
    let text = std::str::from_utf8(line).map_err(|e| format!("malformed request: {e}"))?;
    // The version first: a request of another version is refused for
    // that, whatever its command.
    let raw: Envelope<CommandLine> =
        serde_json::from_str(text).map_err(|e| format!("malformed request: {e}"))?;
    if raw.version != PROTOCOL_VERSION {
        return Err(format!(
            "protocol version {} not supported (this ipmpd speaks {PROTOCOL_VERSION})",
            raw.version
        ));
    }
    Ok(Envelope::new(Request::try_from(raw.body)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{
        Counters, GroupState, LinkState, MemberState, MemberStatus, ProbeState, TargetMode,
    };

    fn parse(s: &str) -> Result<Request, String> {
        parse_request(s.as_bytes()).map(|e| e.body)
    }

    #[test]
    fn requests_parse_and_bad_ones_say_why() {
        let r = parse("{\"version\":1,\"command\":\"offline\",\"args\":[\"e0\"]}\n").unwrap();
        assert_eq!(r, Request::Offline { member: "e0".into() });
        assert_eq!(
            parse_request(b"{\"version\":1,\"command\":\"status\"}").unwrap(),
            Envelope::new(Request::Status)
        );
        let e = parse("{\"version\":2,\"command\":\"status\"}").unwrap_err();
        assert!(e.contains("protocol version 2"), "{e}");
        // The version is checked before the command.
        let e = parse("{\"version\":2,\"command\":\"bogus\"}").unwrap_err();
        assert!(e.contains("protocol version 2"), "{e}");
        assert!(parse("status\n").unwrap_err().starts_with("malformed request"));
        assert!(parse("{\"command\":\"status\"}")
            .unwrap_err()
            .contains("missing field `version`"));
        assert!(parse_request(b"\xff\xfe").unwrap_err().contains("utf-8"));
        let mut long = b"{\"version\":1,\"command\":\"status\",\"args\":[\"".to_vec();
        long.resize(server::MAX_REQUEST_LINE + 1, b'a');
        assert!(parse_request(&long).unwrap_err().contains("longer than 4096"));
    }

    #[test]
    fn commands_and_operands_are_checked_by_name() {
        assert_eq!(
            parse("{\"version\":1,\"command\":\"bogus\"}").unwrap_err(),
            "unknown command \"bogus\" (commands: status, probes, reload, offline, online, standby)"
        );
        assert_eq!(
            parse("{\"version\":1,\"command\":\"online\"}").unwrap_err(),
            "online: which interface?"
        );
        assert_eq!(
            parse("{\"version\":1,\"command\":\"standby\",\"args\":[\"rge0\"]}").unwrap_err(),
            "standby: expected on or off"
        );
        assert_eq!(
            parse("{\"version\":1,\"command\":\"standby\",\"args\":[\"rge0\",\"maybe\"]}").unwrap_err(),
            "standby: expected on or off, not \"maybe\""
        );
        assert_eq!(
            parse("{\"version\":1,\"command\":\"offline\",\"args\":[\"e0\",\"e1\"]}").unwrap_err(),
            "offline: unexpected operand \"e1\""
        );
        // What older clients send: an empty operand list.
        assert_eq!(
            parse("{\"version\":1,\"command\":\"status\",\"args\":[]}"),
            Ok(Request::Status)
        );
    }

    #[test]
    fn requests_keep_their_wire_form() {
        let cases = [
            (Request::Status, "{\"version\":1,\"command\":\"status\"}"),
            (Request::Probes, "{\"version\":1,\"command\":\"probes\"}"),
            (Request::Reload, "{\"version\":1,\"command\":\"reload\"}"),
            (
                Request::Offline {
                    member: "e1000g0".into(),
                },
                "{\"version\":1,\"command\":\"offline\",\"args\":[\"e1000g0\"]}",
            ),
            (
                Request::Online {
                    member: "e1000g0".into(),
                },
                "{\"version\":1,\"command\":\"online\",\"args\":[\"e1000g0\"]}",
            ),
            (
                Request::Standby {
                    member: "rge0".into(),
                    standby: true,
                },
                "{\"version\":1,\"command\":\"standby\",\"args\":[\"rge0\",\"on\"]}",
            ),
            (
                Request::Standby {
                    member: "rge0".into(),
                    standby: false,
                },
                "{\"version\":1,\"command\":\"standby\",\"args\":[\"rge0\",\"off\"]}",
            ),
        ];
        for (r, wire) in cases {
            let line = serde_json::to_string(&Envelope::new(r.clone())).unwrap();
            assert_eq!(line, wire);
            assert_eq!(parse(wire), Ok(r));
        }
    }

    #[test]
    fn replies_keep_their_wire_form() {
        let done = serde_json::to_string(&Envelope::new(Reply::Done)).unwrap();
        assert_eq!(done, "{\"version\":1,\"ok\":true}");
        let err = serde_json::to_string(&Envelope::new(Reply::error("no"))).unwrap();
        assert_eq!(err, "{\"version\":1,\"ok\":false,\"error\":\"no\"}");
        for line in [done, err] {
            let back: Envelope<Reply> = serde_json::from_str(&line).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), line);
        }
    }

    #[test]
    fn a_status_reply_carries_the_status() {
        let status = GroupStatus {
            interface: "ipmp0".into(),
            group: "production0".into(),
            state: crate::control::GroupState::Failed,
            fdt_ms: None,
            members: vec![],
            addresses: vec![],
            failovers: 0,
        };
        let line = serde_json::to_string(&Envelope::new(Reply::Status(Box::new(status.clone())))).unwrap();
        assert!(
            line.starts_with("{\"version\":1,\"ok\":true,\"status\":{\"interface\":\"ipmp0\""),
            "{line}"
        );
        assert!(line.contains("\"state\":\"failed\""), "{line}");
        let back: Envelope<Reply> = serde_json::from_str(&line).unwrap();
        assert_eq!(back.body, Reply::Status(Box::new(status)));
    }

    fn member() -> MemberStatus {
        MemberStatus {
            name: "e1000g0".into(),
            active: true,
            flags: "--mb---".into(),
            link: LinkState::Up,
            probe: ProbeState::Ok,
            state: MemberState::Ok,
            target_mode: TargetMode::Multicast,
            test_address: Some("192.0.2.21".into()),
            targets: vec!["192.0.2.1".into()],
            inactive: false,
            counters: Counters::default(),
            rtt_us: Some(250),
            ipv6: None,
        }
    }

    /// A member's status as protocol version 1 spells it, every field.
    const MEMBER_V1: &str = "{\"name\":\"e1000g0\",\"active\":true,\"flags\":\"--mb---\",\
        \"link\":\"up\",\"probe\":\"ok\",\"state\":\"ok\",\"probe_mode\":\"multicast\",\
        \"test_address\":\"192.0.2.21\",\"targets\":[\"192.0.2.1\"],\"inactive\":false,\
        \"counters\":{\"rx_frames\":0,\"rx_bytes\":0,\"tx_frames\":0,\"tx_bytes\":0,\
        \"rx_drops\":{},\"tx_drops\":{}},\"rtt_us\":250}";

    #[test]
    fn a_member_keeps_its_wire_form() {
        assert_eq!(serde_json::to_string(&member()).unwrap(), MEMBER_V1);
        assert_eq!(serde_json::from_str::<MemberStatus>(MEMBER_V1).unwrap(), member());
    }

    /// What a newer daemon may add without a version bump (see the module
    /// doc) still reads: new state names as `Unrecognised`, new fields
    /// ignored.
    #[test]
    fn a_status_from_a_newer_daemon_still_reads() {
        let newer = MEMBER_V1
            .replace("\"state\":\"ok\"", "\"state\":\"draining\"")
            .replace("\"probe_mode\":\"multicast\"", "\"probe_mode\":\"neighbours\"")
            .replace("\"rtt_us\":250", "\"rtt_us\":250,\"weight\":3");
        let line = format!(
            "{{\"version\":1,\"ok\":true,\"status\":{{\"interface\":\"ipmp0\",\
             \"group\":\"production0\",\"state\":\"overloaded\",\"fdt_ms\":null,\
             \"members\":[{newer}],\"addresses\":[],\"failovers\":0}}}}"
        );
        let back: Envelope<Reply> = serde_json::from_str(&line).unwrap();
        let Reply::Status(s) = back.body else {
            panic!("not a status: {line}");
        };
        assert_eq!(s.state, GroupState::Unrecognised);
        let m = &s.members[0];
        assert_eq!(m.state, MemberState::Unrecognised);
        assert_eq!(m.target_mode, TargetMode::Unrecognised);
        assert_eq!(
            *m,
            MemberStatus {
                state: m.state,
                target_mode: m.target_mode,
                ..member()
            }
        );
        let table = crate::control::format::interfaces(std::slice::from_ref(&*s));
        assert!(table.lines().nth(1).unwrap().ends_with(" ?"), "{table}");
    }
}
