//! A group's configuration: one model, given by the command line and the
//! group file.
//!
//! - [`model`]: the validated [`GroupConfig`], its parts and enums (each
//!   defined once: the flags, the file and the data plane share them), and
//!   the parsers of single values.
//! - [`file`]: the TOML schema of `/etc/ipmpd/<group>.toml` and its errors,
//!   with positions from toml's spans.
//! - [`merge`]: flags over the file over the defaults ([`resolve`]), and
//!   [`Source`], which the start and every reload load the same way.

pub mod file;
pub mod merge;
pub mod model;

pub use file::{FileConfig, FileError, GroupFile, Position, CONFIG_DIR_ENV, DEFAULT_CONFIG_DIR};
pub use merge::{resolve, ConfigError, Flags, Loaded, Source};
pub use model::{
    check_garp_count, check_ifname, duration_from_ms, parse_data_addr, parse_duration, parse_if_addr,
    parse_test_address, parse_yes_no, DataAddr, DetectConfig, GroupConfig, IfAddr, Invalid, Item,
    MemberConfig, Outbound, ProbeMode, DEFAULT_INTERFACE, DEFAULT_RUN_DIR, DURATION_MAX, IFNAME_MAX,
    LINK_POLL_MIN, RUN_DIR_ENV,
};
