//! The administrator's changes (`ipmpadm offline|online|standby`): which
//! ones the group refuses, as pure checks on its state. Each check returns
//! the [`Event`] that makes the change, for [`Group::handle`], or the
//! [`Refusal`] the administrator is told. Who may ask (root only) is the
//! control socket's business, not the group's.

use super::{Event, Group};
use std::fmt;

/// Why the group refuses an administrator's change; the text (Display) is
/// what `ipmpadm` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No configured member has that name.
    NotMember { member: String, group: String },
    /// Offline asked for a member already offline.
    AlreadyOffline { member: String },
    /// Online asked for a member that is not offline.
    NotOffline { member: String },
    /// Offline would leave the group without a functioning member.
    LastFunctioning { member: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotMember { member, group } => {
                write!(f, "{member} is not in IPMP group {group}")
            }
            Refusal::AlreadyOffline { member } => write!(f, "{member} is already offline"),
            Refusal::NotOffline { member } => write!(f, "{member} is not offline"),
            Refusal::LastFunctioning { member } => write!(
                f,
                "cannot offline {member}: no other functioning interfaces are in its IPMP group"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

impl Group {
    /// The member's slot, or the refusal naming it.
    fn admin_slot(&self, member: &str) -> Result<super::Slot, Refusal> {
        self.slot_of(member).ok_or_else(|| Refusal::NotMember {
            member: member.to_string(),
            group: self.name.clone(),
        })
    }

    /// Offline (if_mpadm -d): refused for a member already offline, and for
    /// the last functioning one (as in.mpathd refuses it: its traffic would
    /// have nowhere to go).
    pub fn offline_check(&self, member: &str) -> Result<Event, Refusal> {
        let slot = self.admin_slot(member)?;
        let m = &self.members[usize::from(slot)];
        if m.offline {
            return Err(Refusal::AlreadyOffline {
                member: member.to_string(),
            });
        }
        let others = self
            .members
            .iter()
            .enumerate()
            .any(|(i, o)| i != usize::from(slot) && o.usable());
        if !others {
            return Err(Refusal::LastFunctioning {
                member: member.to_string(),
            });
        }
        Ok(Event::Offline { slot, offline: true })
    }

    /// Online (if_mpadm -r): refused for a member that is not offline.
    pub fn online_check(&self, member: &str) -> Result<Event, Refusal> {
        let slot = self.admin_slot(member)?;
        if !self.members[usize::from(slot)].offline {
            return Err(Refusal::NotOffline {
                member: member.to_string(),
            });
        }
        Ok(Event::Offline { slot, offline: false })
    }

    /// Standby on or off: always allowed for a member of the group.
    pub fn standby_check(&self, member: &str, standby: bool) -> Result<Event, Refusal> {
        let slot = self.admin_slot(member)?;
        Ok(Event::Standby { slot, standby })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probe::ProbeState;
    use crate::group::{Member, Policy};
    use std::time::Instant;

    /// production0 with e1000g0, e1000g1 and rge0, every one joined with
    /// its link up.
    fn group() -> (Group, Instant) {
        let members = ["e1000g0", "e1000g1", "rge0"].map(Member::new).to_vec();
        let mut g = Group::new("production0", Policy::default(), members);
        let t = Instant::now();
        for slot in 0..3 {
            g.handle(
                Event::Joined {
                    slot,
                    link_up: true,
                    probe: ProbeState::Disabled,
                    mac: None,
                },
                t,
            );
        }
        (g, t)
    }

    /// Applies an allowed change.
    fn apply(g: &mut Group, t: Instant, check: impl FnOnce(&Group) -> Result<Event, Refusal>) {
        let ev = check(g).expect("allowed");
        g.handle(ev, t);
    }

    #[test]
    fn offline_is_refused_for_the_last_functioning_member() {
        let (mut g, t) = group();
        apply(&mut g, t, |g| g.offline_check("e1000g0"));
        apply(&mut g, t, |g| g.offline_check("e1000g1"));
        let e = g.offline_check("rge0").unwrap_err();
        assert_eq!(
            e,
            Refusal::LastFunctioning {
                member: "rge0".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "cannot offline rge0: no other functioning interfaces are in its IPMP group"
        );
        // Back online, e1000g1 functions again: rge0 may go.
        apply(&mut g, t, |g| g.online_check("e1000g1"));
        assert_eq!(
            g.offline_check("rge0"),
            Ok(Event::Offline {
                slot: 2,
                offline: true
            })
        );
    }

    #[test]
    fn a_failed_member_does_not_count_as_functioning() {
        let (mut g, t) = group();
        apply(&mut g, t, |g| g.offline_check("e1000g0"));
        g.handle(Event::Link { slot: 1, up: false }, t);
        assert!(matches!(
            g.offline_check("rge0"),
            Err(Refusal::LastFunctioning { .. })
        ));
        // A failed member itself may still be taken offline.
        assert!(g.offline_check("e1000g1").is_ok());
    }

    #[test]
    fn offline_twice_and_online_of_an_online_member_are_refused() {
        let (mut g, t) = group();
        assert_eq!(
            g.online_check("e1000g0").unwrap_err().to_string(),
            "e1000g0 is not offline"
        );
        apply(&mut g, t, |g| g.offline_check("e1000g0"));
        assert_eq!(
            g.offline_check("e1000g0").unwrap_err().to_string(),
            "e1000g0 is already offline"
        );
        assert_eq!(
            g.online_check("e1000g0"),
            Ok(Event::Offline {
                slot: 0,
                offline: false
            })
        );
    }

    #[test]
    fn unknown_and_removed_members_are_refused_by_name() {
        let (mut g, t) = group();
        let not = |m: &str| Refusal::NotMember {
            member: m.into(),
            group: "production0".into(),
        };
        assert_eq!(g.offline_check("nosuch0"), Err(not("nosuch0")));
        assert_eq!(g.online_check("nosuch0"), Err(not("nosuch0")));
        assert_eq!(g.standby_check("nosuch0", true), Err(not("nosuch0")));
        assert_eq!(
            not("nosuch0").to_string(),
            "nosuch0 is not in IPMP group production0"
        );
        g.handle(Event::Removed { slot: 2 }, t);
        assert_eq!(g.standby_check("rge0", false), Err(not("rge0")));
        assert_eq!(
            g.standby_check("e1000g1", true),
            Ok(Event::Standby {
                slot: 1,
                standby: true
            })
        );
    }
}
