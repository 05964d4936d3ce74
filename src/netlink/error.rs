//! The error type of the netlink layer. Every [`NetlinkError`] names the
//! operation it failed ("adding 192.0.2.1/24 to d0 (index 3)") and keeps the
//! cause typed: the kernel's errno and extended-ack text, a socket error, a
//! reply that does not parse, or an argument refused before sending. Callers
//! test the cause with [`NetlinkError::errno`], [`NetlinkError::is_exists`]
//! and friends, never by reading the text.

use std::io;

use netlink_packet_core::DecodeError;
use thiserror::Error;

/// A failed netlink operation.
#[derive(Debug, Error)]
pub enum NetlinkError {
    /// The kernel refused the request (NLMSG_ERROR, or NLMSG_DONE of a dump
    /// that failed part way), with its extended-ack text when it sent one.
    #[error("{op}: {}", kernel_text(*.errno, .extack.as_deref()))]
    Kernel {
        op: String,
        errno: i32,
        extack: Option<String>,
    },
    /// The netlink socket itself failed: opening, binding, sending, receiving.
    #[error("{op}: {source}")]
    Socket {
        op: String,
        #[source]
        source: io::Error,
    },
    /// A reply the kernel sent that cannot be read.
    #[error("{op}: {source}")]
    Malformed {
        op: String,
        #[source]
        source: ParseError,
    },
    /// Refused before anything was sent.
    #[error("{op}: prefix length {len} is longer than {max}")]
    PrefixTooLong { op: String, len: u8, max: u8 },
    /// Refused before anything was sent: a route's gateway of another
    /// family than its destination.
    #[error("{op}: the gateway is not of the destination's family")]
    GatewayFamily { op: String },
}

/// "File exists (os error 17)", with " (kernel: ...)" when the kernel
/// explained itself: the same words `io::Error` would print.
fn kernel_text(errno: i32, extack: Option<&str>) -> String {
    let os = io::Error::from_raw_os_error(errno);
    match extack {
        Some(msg) => format!("{os} (kernel: {msg})"),
        None => os.to_string(),
    }
}

impl NetlinkError {
    /// The errno behind the failure: the kernel's answer, or the socket
    /// call's. `None` for malformed replies and refused arguments.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { errno, .. } => Some(*errno),
            NetlinkError::Socket { source, .. } => source.raw_os_error(),
            NetlinkError::Malformed { .. }
            | NetlinkError::PrefixTooLong { .. }
            | NetlinkError::GatewayFamily { .. } => None,
        }
    }

    /// EEXIST: the address, route or link is already there.
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// ENODEV: no link with that name or index.
    pub fn is_no_device(&self) -> bool {
        self.errno() == Some(libc::ENODEV)
    }

    /// The object named by the request is not there: no such link (ENODEV),
    /// address (EADDRNOTAVAIL), route (ESRCH) or entry (ENOENT).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc::ENODEV | libc::EADDRNOTAVAIL | libc::ESRCH | libc::ENOENT)
        )
    }

    /// The `io::ErrorKind` the errno (or the kind of failure) maps to.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            NetlinkError::Kernel { errno, .. } => io::Error::from_raw_os_error(*errno).kind(),
            NetlinkError::Socket { source, .. } => source.kind(),
            NetlinkError::Malformed { .. } => io::ErrorKind::InvalidData,
            NetlinkError::PrefixTooLong { .. } | NetlinkError::GatewayFamily { .. } => {
                io::ErrorKind::InvalidInput
            }
        }
    }
}

/// For callers that work in `io::Result`: same text, kind from the errno,
/// and the typed error stays reachable through `get_ref()`.
impl From<NetlinkError> for io::Error {
    fn from(e: NetlinkError) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// Why a netlink message (a reply or an event) could not be read.
#[derive(Debug, Error)]
pub enum ParseError {
    #[error("malformed netlink message: {0}")]
    Framing(DecodeError),
    #[error("malformed netlink header: {0}")]
    Header(DecodeError),
    #[error("malformed NLMSG_ERROR: {0}")]
    ErrorMessage(DecodeError),
    /// A header or attribute of a link, address or route message.
    #[error("{0}")]
    Payload(#[from] DecodeError),
    #[error("link {index} without IFLA_IFNAME")]
    LinkWithoutName { index: u32 },
    #[error("address on {index} without IFA_LOCAL/IFA_ADDRESS")]
    AddressWithoutValue { index: u32 },
    #[error("IPv6 address on {index} without IFA_ADDRESS")]
    Ipv6AddressWithoutValue { index: u32 },
    #[error("netlink reported data overrun")]
    Overrun,
    #[error("unparseable link reply: {0}")]
    LinkReply(Box<ParseError>),
    #[error("no link in reply")]
    NoLink,
}

/// What went wrong below an operation, before the operation is named.
#[derive(Debug)]
pub(super) enum Fault {
    Kernel { errno: i32, extack: Option<String> },
    Socket(io::Error),
    Malformed(ParseError),
}

impl Fault {
    /// Names the operation that failed.
    pub(super) fn during(self, op: impl Into<String>) -> NetlinkError {
        let op = op.into();
        match self {
            Fault::Kernel { errno, extack } => NetlinkError::Kernel { op, errno, extack },
            Fault::Socket(source) => NetlinkError::Socket { op, source },
            Fault::Malformed(source) => NetlinkError::Malformed { op, source },
        }
    }

    pub(super) fn errno(&self) -> Option<i32> {
        match self {
            Fault::Kernel { errno, .. } => Some(*errno),
            Fault::Socket(e) => e.raw_os_error(),
            Fault::Malformed(_) => None,
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Kernel { errno, extack } => f.write_str(&kernel_text(*errno, extack.as_deref())),
            Fault::Socket(e) => e.fmt(f),
            Fault::Malformed(e) => e.fmt(f),
        }
    }
}

impl From<ParseError> for Fault {
    fn from(e: ParseError) -> Fault {
        Fault::Malformed(e)
    }
}

impl From<io::Error> for Fault {
    fn from(e: io::Error) -> Fault {
        Fault::Socket(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_errors_read_like_os_errors_and_keep_the_errno() {
        let e = Fault::Kernel {
            errno: libc::EEXIST,
            extack: None,
        }
        .during("adding x");
        assert!(e.is_exists() && !e.is_not_found());
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(
            e.to_string(),
            format!("adding x: {}", io::Error::from_raw_os_error(libc::EEXIST))
        );
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::AlreadyExists);
        let inner = io.get_ref().and_then(|i| i.downcast_ref::<NetlinkError>());
        assert_eq!(inner.and_then(NetlinkError::errno), Some(libc::EEXIST));

        let e = Fault::Kernel {
            errno: libc::ESRCH,
            extack: Some("no such route".into()),
        }
        .during("removing y");
        assert!(e.is_not_found() && !e.is_no_device());
        assert!(e.to_string().ends_with("(kernel: no such route)"), "{e}");

        let e = NetlinkError::PrefixTooLong {
            op: "adding z".into(),
            len: 33,
            max: 32,
        };
        assert_eq!((e.errno(), e.kind()), (None, io::ErrorKind::InvalidInput));
        let e = Fault::Malformed(ParseError::NoLink).during("looking up link d0");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(e.to_string(), "looking up link d0: no link in reply");
    }
}
