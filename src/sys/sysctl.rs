//! Per-interface sysctls under /proc/sys/net: read and written as files so
//! the original value can be restored exactly.

use std::io;
use std::path::PathBuf;

fn path(family: &str, ifname: &str, key: &str) -> PathBuf {
    // Dots in interface names (VLANs) become slashes in sysctl(8) notation
    // but stay dots in the /proc path.
    PathBuf::from(format!("/proc/sys/net/{family}/conf/{ifname}/{key}"))
}

pub fn read(family: &str, ifname: &str, key: &str) -> io::Result<String> {
    let p = path(family, ifname, key);
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", p.display())))
}

pub fn write(family: &str, ifname: &str, key: &str, value: &str) -> io::Result<()> {
    let p = path(family, ifname, key);
    std::fs::write(&p, value)
        .map_err(|e| io::Error::new(e.kind(), format!("writing {} to {}: {e}", value, p.display())))
}

/// A sysctl changed by the daemon, restored to its original value on drop.
pub struct Saved {
    family: &'static str,
    ifname: String,
    key: &'static str,
    original: String,
    /// Cleared when the interface is gone: nothing to restore.
    armed: bool,
}

impl Saved {
    /// Sets `key` to `value` and remembers the old value.
    pub fn set(family: &'static str, ifname: &str, key: &'static str, value: &str) -> io::Result<Saved> {
        let original = read(family, ifname, key)?;
        if original != value {
            write(family, ifname, key, value)?;
        }
        Ok(Saved {
            family,
            ifname: ifname.to_string(),
            key,
            original,
            armed: true,
        })
    }

    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Saved {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Err(e) = write(self.family, &self.ifname, self.key, &self.original) {
            // The interface may have been deleted meanwhile; nothing to restore then.
            if e.kind() != io::ErrorKind::NotFound {
                log::warn!("restoring {} on {}: {e}", self.key, self.ifname);
            }
        }
    }
}
