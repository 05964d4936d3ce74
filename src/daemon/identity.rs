//! The group interface's MAC: stable across restarts and unique per machine
//! and group, so neighbours' caches and switch tables stay valid.

use crate::datapath::frame::{fmix64, Mac};

const MACHINE_ID_FILES: [&str; 2] = ["/etc/machine-id", "/var/lib/dbus/machine-id"];

pub fn machine_id() -> String {
    for f in MACHINE_ID_FILES {
        if let Ok(s) = std::fs::read_to_string(f) {
            let s = s.trim();
            if !s.is_empty() {
                return s.to_string();
            }
        }
    }
    // No machine id (minimal containers): the host name still keeps the MAC
    // stable across restarts on this host.
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A locally administered unicast MAC derived from machine id and group name.
pub fn derive_mac(machine_id: &str, group: &str) -> Mac {
    // FNV-1a over "machine-id \0 group", then a full-avalanche mix.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in machine_id.bytes().chain([0]).chain(group.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let b = fmix64(h).to_be_bytes();
    // Locally administered (bit 1 set), unicast (bit 0 clear).
    [(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_is_stable_local_unicast_and_per_group() {
        let a = derive_mac("0123456789abcdef", "production0");
        assert_eq!(a, derive_mac("0123456789abcdef", "production0"));
        assert_eq!(a[0] & 0x03, 0x02);
        assert_ne!(a, derive_mac("0123456789abcdef", "production1"));
        assert_ne!(a, derive_mac("fedcba9876543210", "production0"));
    }
}
