//! The states the status reports, as ipmpstat prints them and `--json`
//! spells them: each enum's names are defined once, here, for serde, the
//! tables and the metrics alike. The cores' own state enums
//! ([`crate::group::GroupState`], [`crate::group::MemberState`],
//! [`crate::detect::probe::ProbeState`]) convert with `From`.
//!
//! Every enum has a catch-all, `Unrecognised` (shown and sent as `?`): a
//! name this build does not know, from a newer daemon, deserializes into it,
//! so an older ipmpstat still prints the table. A new state value therefore
//! needs no protocol version bump (see [`super::protocol`]).

use crate::{detect, group};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How a state this build does not know is shown and sent.
pub const UNRECOGNISED: &str = "?";

/// An enum of states, each with the one name it is shown and sent as.
macro_rules! states {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant,)+
            /// A name this build does not know (from a newer daemon);
            /// never sent by this one.
            #[serde(rename = "?", other)]
            Unrecognised,
        }

        impl $name {
            /// Every state this daemon reports (not `Unrecognised`), in the
            /// order the metrics list them.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Unrecognised => UNRECOGNISED,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Compares with the name, as scripts and tests see it.
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

states! {
    /// The group's state (`ipmpstat -g` STATE).
    GroupState {
        /// Every member usable.
        Ok = "ok",
        /// Some members usable.
        Degraded = "degraded",
        /// None usable.
        Failed = "failed",
    }
}

states! {
    /// A member's state (`ipmpstat -i` STATE).
    MemberState {
        Ok = "ok",
        Failed = "failed",
        /// Offline by the administrator, or for a duplicate hardware address.
        Offline = "offline",
        /// Probes have not decided yet.
        Unknown = "unknown",
    }
}

states! {
    /// A member's carrier (`ipmpstat -i` LINK).
    LinkState {
        Up = "up",
        Down = "down",
        /// The interface is not there (not taken over).
        Unknown = "unknown",
    }
}

states! {
    /// The prober's verdict on a member (`ipmpstat -i` PROBE).
    ProbeState {
        Ok = "ok",
        Failed = "failed",
        Unknown = "unknown",
        /// The member is not probed.
        Disabled = "disabled",
    }
}

states! {
    /// How a member's targets are found (`ipmpstat -t` MODE); not to be
    /// confused with [`crate::config::ProbeMode`], how a member is probed.
    TargetMode {
        /// From the routing table (or configured).
        Routes = "routes",
        /// Still discovering them by multicast.
        Multicast = "multicast",
        /// The member is not probed.
        Disabled = "disabled",
    }
}

states! {
    /// A data address (`ipmpstat -a` STATE).
    AddressState {
        /// Bound to a member.
        Up = "up",
        /// No member can carry it.
        Down = "down",
    }
}

impl From<group::GroupState> for GroupState {
    fn from(s: group::GroupState) -> GroupState {
        match s {
            group::GroupState::Ok => GroupState::Ok,
            group::GroupState::Degraded => GroupState::Degraded,
            group::GroupState::Failed => GroupState::Failed,
        }
    }
}

impl From<group::MemberState> for MemberState {
    fn from(s: group::MemberState) -> MemberState {
        match s {
            group::MemberState::Ok => MemberState::Ok,
            group::MemberState::Failed => MemberState::Failed,
            group::MemberState::Offline => MemberState::Offline,
            group::MemberState::Unknown => MemberState::Unknown,
        }
    }
}

impl From<detect::probe::ProbeState> for ProbeState {
    fn from(s: detect::probe::ProbeState) -> ProbeState {
        match s {
            detect::probe::ProbeState::Ok => ProbeState::Ok,
            detect::probe::ProbeState::Failed => ProbeState::Failed,
            detect::probe::ProbeState::Unknown => ProbeState::Unknown,
            detect::probe::ProbeState::Disabled => ProbeState::Disabled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The name shown is the name sent, for every state of every enum.
    fn same_names<T: Serialize + for<'a> Deserialize<'a> + fmt::Display + PartialEq + fmt::Debug>(all: &[T]) {
        for s in all {
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(&serde_json::from_str::<T>(&json).unwrap(), s);
        }
    }

    #[test]
    fn states_serialize_as_they_print() {
        same_names(GroupState::ALL);
        same_names(MemberState::ALL);
        same_names(LinkState::ALL);
        same_names(ProbeState::ALL);
        same_names(TargetMode::ALL);
        same_names(AddressState::ALL);
        same_names(&[MemberState::Unrecognised]);
        assert_eq!(GroupState::Degraded, "degraded");
    }

    /// A state a newer daemon may send is not an error: it is shown as `?`.
    #[test]
    fn unknown_names_deserialize_to_the_catch_all() {
        let from = |json: &str| serde_json::from_str::<MemberState>(json);
        assert_eq!(from("\"sideways\"").unwrap(), MemberState::Unrecognised);
        assert_eq!(from("\"sideways\"").unwrap().to_string(), "?");
        assert_eq!(from("\"unknown\"").unwrap(), MemberState::Unknown);
        assert_eq!(
            serde_json::from_str::<TargetMode>("\"neighbours\"").unwrap(),
            TargetMode::Unrecognised
        );
        // Still a string: another JSON type is malformed.
        assert!(from("3").is_err());
        assert!(!MemberState::ALL.contains(&MemberState::Unrecognised));
    }

    /// Each core state converts to the state of the same name.
    #[test]
    fn core_states_convert_by_name() {
        use detect::probe::ProbeState as P;
        use group::GroupState as G;
        use group::MemberState as M;
        for s in [G::Ok, G::Degraded, G::Failed] {
            assert_eq!(format!("{s:?}"), format!("{:?}", GroupState::from(s)));
        }
        for s in [M::Ok, M::Failed, M::Offline, M::Unknown] {
            assert_eq!(format!("{s:?}"), format!("{:?}", MemberState::from(s)));
        }
        for s in [P::Ok, P::Failed, P::Unknown, P::Disabled] {
            assert_eq!(s.as_str(), ProbeState::from(s).as_str());
        }
    }
}
