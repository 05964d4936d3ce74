//! ipmpd: Solaris-style IP multipathing for Linux, in userspace.

pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod datapath;
pub mod detect;
#[doc(hidden)]
pub mod fuzzing;
pub mod group;
pub mod logging;
pub mod netlink;
pub mod sys;
pub mod wire;
