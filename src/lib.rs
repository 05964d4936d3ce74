//! ipmpd: Solaris-style IP multipathing for Linux, in userspace.

pub mod datapath;
pub mod group;
