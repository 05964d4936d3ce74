//! What the group core has to say, typed: one variant per message. The
//! texts (in.mpathd's where it has one, see the reference's section 8) and
//! their log levels are rendered here and nowhere else; the shell logs
//! [`Notice::level`] with the notice's `Display`.

use log::Level;
use std::fmt;

/// Why a member left the active set (the parenthesis of
/// [`Notice::Inactive`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftBecause {
    Offline,
    Failed,
    Standby,
    Inactive,
}

impl LeftBecause {
    pub fn as_str(self) -> &'static str {
        match self {
            LeftBecause::Offline => "offline",
            LeftBecause::Failed => "failed",
            LeftBecause::Standby => "standby",
            LeftBecause::Inactive => "inactive",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The member was taken over.
    Joined {
        member: String,
        group: String,
        link_up: bool,
    },
    /// The member's interface disappeared.
    Gone {
        member: String,
        group: String,
    },
    LinkUp {
        member: String,
    },
    LinkDown {
        member: String,
    },
    /// Link flap damping holds the member's repair.
    LinkFlapping {
        member: String,
        limit: u32,
    },
    /// Flap damping released the held repair.
    LinkStabilized {
        member: String,
    },
    FailureDetected {
        member: String,
        group: String,
    },
    RepairDetected {
        member: String,
        group: String,
    },
    /// The member was removed from the configuration.
    Removed {
        member: String,
        group: String,
    },
    AllFailed {
        group: String,
    },
    /// Every member fails its probes with its link up: forwarding goes on.
    Blackhole {
        group: String,
    },
    /// The group came back from a total failure; `member` is the first
    /// usable one.
    Usable {
        member: String,
        group: String,
    },
    Active {
        member: String,
        group: String,
    },
    Inactive {
        member: String,
        group: String,
        why: LeftBecause,
    },
    /// Flag h set: `member` has the hardware address `holder` claimed first.
    DuplicateHwAddr {
        member: String,
        holder: String,
        group: String,
    },
    /// Flag h cleared.
    HwAddrUnique {
        member: String,
        group: String,
    },
    /// Reload: a member's probing was rebuilt.
    ProbingReconfigured {
        member: String,
    },
    /// Reload: a member was added.
    MemberAdded {
        member: String,
        group: String,
    },
    /// Reload: no slot left for an added member.
    NoFreeSlot {
        member: String,
        group: String,
    },
}

impl Notice {
    pub fn level(&self) -> Level {
        match self {
            Notice::FailureDetected { .. } | Notice::AllFailed { .. } | Notice::DuplicateHwAddr { .. } => {
                Level::Error
            }
            Notice::NoFreeSlot { .. } => Level::Error,
            Notice::Gone { .. }
            | Notice::LinkDown { .. }
            | Notice::LinkFlapping { .. }
            | Notice::Blackhole { .. } => Level::Warn,
            // The repair of a failure logged above: at the same priority
            // band (in.mpathd logs both with LOG_ERR), so that an admin who
            // filters the journal by priority (`-p warning`) sees a failure
            // end, not only begin.
            Notice::LinkUp { .. }
            | Notice::LinkStabilized { .. }
            | Notice::RepairDetected { .. }
            | Notice::Usable { .. }
            | Notice::HwAddrUnique { .. } => Level::Warn,
            Notice::Joined { .. }
            | Notice::Removed { .. }
            | Notice::Active { .. }
            | Notice::Inactive { .. }
            | Notice::ProbingReconfigured { .. }
            | Notice::MemberAdded { .. } => Level::Info,
        }
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Joined {
                member,
                group,
                link_up,
            } => write!(
                f,
                "{member} joined group {group} (link {})",
                if *link_up { "up" } else { "down" }
            ),
            Notice::Gone { member, group } => write!(
                f,
                "{member} was removed from the system; it rejoins group {group} when it comes back"
            ),
            Notice::LinkUp { member } => write!(f, "The link has come up on {member}"),
            Notice::LinkDown { member } => write!(f, "The link has gone down on {member}"),
            Notice::LinkFlapping { member, limit } => write!(
                f,
                "The link has come up on {member} more than {limit} times in the last minute; disabling repair until it stabilizes"
            ),
            Notice::LinkStabilized { member } => {
                write!(f, "The link on {member} has stabilized; repair enabled")
            }
            Notice::FailureDetected { member, group } => {
                write!(f, "IP interface failure detected on {member} of group {group}")
            }
            Notice::RepairDetected { member, group } => {
                write!(f, "IP interface repair detected on {member} of group {group}")
            }
            Notice::Removed { member, group } => write!(f, "{member} was removed from group {group}"),
            Notice::AllFailed { group } => write!(f, "All IP interfaces in group {group} are now unusable"),
            Notice::Blackhole { group } => write!(
                f,
                "Every member of group {group} fails its probes while its link is up; forwarding continues on the last active members until a probe is answered"
            ),
            Notice::Usable { member, group } => {
                write!(f, "At least 1 IP interface ({member}) in group {group} is now usable")
            }
            Notice::Active { member, group } => write!(f, "{member} is now active in group {group}"),
            Notice::Inactive { member, group, why } => write!(
                f,
                "{member} is no longer active in group {group} ({})",
                why.as_str()
            ),
            Notice::DuplicateHwAddr {
                member,
                holder,
                group,
            } => write!(
                f,
                "{member} has the same hardware address as {holder} in group {group}; {member} is offline until its hardware address changes"
            ),
            Notice::HwAddrUnique { member, group } => write!(
                f,
                "{member} of group {group} no longer has a duplicate hardware address; it is back in service"
            ),
            Notice::ProbingReconfigured { member } => write!(f, "reload: probing of {member} reconfigured"),
            Notice::MemberAdded { member, group } => write!(f, "reload: {member} added to group {group}"),
            Notice::NoFreeSlot { member, group } => {
                write!(f, "reload: group {group} has no free slot for {member}; not added")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> String {
        x.to_string()
    }

    /// The texts and levels the daemon logged before notices were typed
    /// (operators' log filters and the integration tests match them).
    #[test]
    fn texts_and_levels_are_the_logged_ones() {
        let (m, g) = (s("e1000g0"), s("production0"));
        let cases = [
            (
                Notice::Joined {
                    member: m.clone(),
                    group: g.clone(),
                    link_up: false,
                },
                Level::Info,
                "e1000g0 joined group production0 (link down)",
            ),
            (
                Notice::LinkFlapping {
                    member: m.clone(),
                    limit: 2,
                },
                Level::Warn,
                "The link has come up on e1000g0 more than 2 times in the last minute; disabling repair until it stabilizes",
            ),
            (
                Notice::FailureDetected {
                    member: m.clone(),
                    group: g.clone(),
                },
                Level::Error,
                "IP interface failure detected on e1000g0 of group production0",
            ),
            (
                Notice::Usable {
                    member: m.clone(),
                    group: g.clone(),
                },
                Level::Warn,
                "At least 1 IP interface (e1000g0) in group production0 is now usable",
            ),
            (
                Notice::RepairDetected {
                    member: m.clone(),
                    group: g.clone(),
                },
                Level::Warn,
                "IP interface repair detected on e1000g0 of group production0",
            ),
            (Notice::LinkUp { member: m.clone() }, Level::Warn, "The link has come up on e1000g0"),
            (
                Notice::Inactive {
                    member: m.clone(),
                    group: g.clone(),
                    why: LeftBecause::Standby,
                },
                Level::Info,
                "e1000g0 is no longer active in group production0 (standby)",
            ),
            (
                Notice::DuplicateHwAddr {
                    member: m.clone(),
                    holder: s("e1000g1"),
                    group: g.clone(),
                },
                Level::Error,
                "e1000g0 has the same hardware address as e1000g1 in group production0; e1000g0 is offline until its hardware address changes",
            ),
            (
                Notice::NoFreeSlot {
                    member: m.clone(),
                    group: g.clone(),
                },
                Level::Error,
                "reload: group production0 has no free slot for e1000g0; not added",
            ),
        ];
        for (n, level, text) in cases {
            assert_eq!((n.level(), n.to_string()), (level, text.to_string()));
        }
    }
}
