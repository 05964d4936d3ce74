//! The states the status reports, as ipmpstat prints them and `--json`
//! spells them: each enum's names are defined once, here, for serde, the
//! tables and the metrics alike.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An enum of states, each with the one name it is shown and sent as.
macro_rules! states {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every state, in the order the metrics list them.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
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
    /// How a member's targets are found (`ipmpstat -t` MODE).
    ProbeMode {
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
        same_names(ProbeMode::ALL);
        same_names(AddressState::ALL);
        assert_eq!(GroupState::Degraded, "degraded");
        assert!(serde_json::from_str::<MemberState>("\"sideways\"").is_err());
    }
}
