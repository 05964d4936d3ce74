//! Per-interface sysctls under /proc/sys/net: read and written as files so
//! the original value can be restored exactly. No syscall wrapper here: plain
//! file I/O, with a [`SysctlError`] naming the file and the value.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// A sysctl that could not be read or written; the OS error is the source.
#[derive(Debug, Error)]
pub enum SysctlError {
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing {value} to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
}

impl SysctlError {
    fn source_io(&self) -> &io::Error {
        match self {
            SysctlError::Read { source, .. } | SysctlError::Write { source, .. } => source,
        }
    }

    pub fn kind(&self) -> io::ErrorKind {
        self.source_io().kind()
    }

    /// The file is not there: the interface is gone (or has no such key).
    pub fn is_not_found(&self) -> bool {
        self.kind() == io::ErrorKind::NotFound
    }
}

/// For callers that work in `io::Result`: same text and kind.
impl From<SysctlError> for io::Error {
    fn from(e: SysctlError) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

fn path(family: &str, ifname: &str, key: &str) -> PathBuf {
    // Dots in interface names (VLANs) become slashes in sysctl(8) notation
    // but stay dots in the /proc path.
    PathBuf::from(format!("/proc/sys/net/{family}/conf/{ifname}/{key}"))
}

pub fn read(family: &str, ifname: &str, key: &str) -> Result<String, SysctlError> {
    let path = path(family, ifname, key);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(s.trim().to_string()),
        Err(source) => Err(SysctlError::Read { path, source }),
    }
}

pub fn write(family: &str, ifname: &str, key: &str, value: &str) -> Result<(), SysctlError> {
    let path = path(family, ifname, key);
    std::fs::write(&path, value).map_err(|source| SysctlError::Write {
        path,
        value: value.to_string(),
        source,
    })
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
    pub fn set(
        family: &'static str,
        ifname: &str,
        key: &'static str,
        value: &str,
    ) -> Result<Saved, SysctlError> {
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
            if !e.is_not_found() {
                log::warn!("restoring {} on {}: {e}", self.key, self.ifname);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_and_keep_the_cause() {
        let e = read("ipv4", "nosuch-if0", "arp_ignore").unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert!(
            e.to_string()
                .starts_with("reading /proc/sys/net/ipv4/conf/nosuch-if0/arp_ignore: "),
            "{e}"
        );
        let e = write("ipv4", "nosuch-if0", "arp_ignore", "1").unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert!(
            e.to_string()
                .starts_with("writing 1 to /proc/sys/net/ipv4/conf/nosuch-if0/arp_ignore: "),
            "{e}"
        );
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
    }
}
