//! The run directory (`IPMPD_RUN_DIR`, default /run/ipmpd) and the pid
//! lock. Everything ipmpd keeps there (pid file, state file, control
//! socket) is root's: the directory is created 0755 and refused when it
//! is a symlink, owned by another uid, or writable by group or others; so
//! is any of its files that is a symlink or someone else's. Checks use
//! lstat and files are opened with O_NOFOLLOW. (Only the directory itself
//! is checked, not its parents: those are the administrator's choice.)

use crate::sys;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The run directory's mode: ipmpstat users need to reach the socket.
const RUN_DIR_MODE: u32 = 0o755;
/// Pid file mode: readable by everyone, as is customary.
const PID_MODE: u32 = 0o644;
/// Mode bits that would let someone other than the owner replace entries.
const WRITABLE_BY_OTHERS: u32 = 0o022;
/// Attempts to lock a pid file that a stopping daemon unlinks meanwhile.
const PID_LOCK_TRIES: usize = 5;
/// Most of a pid file read to name the holder.
const PID_FILE_MAX: u64 = 32;

/// What a run-directory entry is supposed to be.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Dir,
    File,
    Socket,
}

fn owner_problem(m: &std::fs::Metadata) -> Option<String> {
    let me = sys::euid();
    if m.uid() != me {
        return Some(format!("is owned by uid {}, not {me}", m.uid()));
    }
    None
}

/// Creates the run directory when missing (0755) and checks it.
pub fn prepare(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(RUN_DIR_MODE)
                .create(dir)
                .map_err(|e| format!("creating run directory {shown}: {e}"))?;
            // The umask may have taken bits away; the mode is not a matter of taste.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(RUN_DIR_MODE))
                .map_err(|e| format!("run directory {shown}: {e}"))?;
        }
        Err(e) => return Err(format!("run directory {shown}: {e}")),
        Ok(_) => {}
    }
    check_dir(dir)
}

/// The run directory as it must be: a real directory, ours, not writable
/// by group or others.
pub fn check_dir(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    let m = std::fs::symlink_metadata(dir).map_err(|e| format!("run directory {shown}: {e}"))?;
    match problem(&m, Kind::Dir) {
        Some(p) => Err(format!(
            "run directory {shown} {p}; ipmpd keeps root's pid, state and socket files there and refuses it"
        )),
        None => Ok(()),
    }
}

/// What is wrong with a run-directory path of `kind`, if anything: a
/// symlink, another type, another owner, or (but for the socket, which
/// connecting needs writable) writable by group or others.
fn problem(m: &std::fs::Metadata, kind: Kind) -> Option<String> {
    let t = m.file_type();
    if t.is_symlink() {
        Some("is a symbolic link".to_string())
    } else if kind == Kind::Dir && !t.is_dir() {
        Some("is not a directory".to_string())
    } else if kind == Kind::File && !t.is_file() {
        Some("is not a regular file".to_string())
    } else if kind == Kind::Socket && !t.is_socket() {
        Some("is not a socket".to_string())
    } else if let Some(p) = owner_problem(m) {
        Some(p)
    } else if kind != Kind::Socket && m.mode() & WRITABLE_BY_OTHERS != 0 {
        Some(format!(
            "is writable by group or others (mode {:o})",
            m.mode() & 0o7777
        ))
    } else {
        None
    }
}

/// An entry of the run directory, if it exists, must be of `kind` and ours,
/// never a symlink.
pub fn check_entry(path: &Path, kind: Kind) -> Result<(), String> {
    let m = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let problem = problem(&m, kind);
    match problem {
        Some(p) => Err(format!(
            "{} {p}; ipmpd refuses to use or remove it",
            path.display()
        )),
        None => Ok(()),
    }
}

/// The pid file, locked (flock, exclusive) for the daemon's life: one
/// daemon per group. The lock, not the pid written in it, is what counts:
/// a file left by a dead daemon is unlocked and simply taken over.
pub struct PidFile {
    path: PathBuf,
    /// Holds the lock; closing it releases the lock.
    _file: File,
}

impl PidFile {
    /// Locks `path` or says which pid holds it.
    pub fn lock(path: &Path, group: &str) -> Result<PidFile, String> {
        let shown = path.display();
        for _ in 0..PID_LOCK_TRIES {
            check_entry(path, Kind::File)?;
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(PID_MODE)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(path)
                .map_err(|e| format!("opening pid file {shown}: {e}"))?;
            let m = f.metadata().map_err(|e| format!("pid file {shown}: {e}"))?;
            if !m.is_file() {
                return Err(format!("pid file {shown} is not a regular file"));
            }
            if let Some(p) = owner_problem(&m) {
                return Err(format!("pid file {shown} {p}"));
            }
            if !sys::try_lock_exclusive(&f).map_err(|e| format!("locking {shown}: {e}"))? {
                let mut s = String::new();
                let _ = (&f).take(PID_FILE_MAX).read_to_string(&mut s);
                let holder = s
                    .trim()
                    .parse::<u32>()
                    .map_or("pid unknown".to_string(), |p| format!("pid {p}"));
                return Err(format!(
                    "group {group} is already managed by ipmpd ({holder} holds the lock on {shown})"
                ));
            }
            // A daemon stopping meanwhile unlinks the file it held: our lock
            // would then be on a file nobody else can find. Lock the file
            // the path names now.
            let now = std::fs::symlink_metadata(path);
            if !now.is_ok_and(|n| n.dev() == m.dev() && n.ino() == m.ino()) {
                continue;
            }
            f.set_len(0)
                .and_then(|()| f.write_all(format!("{}\n", std::process::id()).as_bytes()))
                .map_err(|e| format!("writing pid file {shown}: {e}"))?;
            return Ok(PidFile {
                path: path.to_path_buf(),
                _file: f,
            });
        }
        Err(format!(
            "pid file {shown} keeps being replaced; is another ipmpd starting and stopping?"
        ))
    }
}

impl Drop for PidFile {
    /// Unlinked while still locked, so no other daemon can lock this file
    /// between the unlink and the close.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ipmpd-rundir-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn run_dir_is_created_0755_and_bad_ones_are_refused_by_name() {
        let d = tmp("create");
        let run = d.join("run");
        prepare(&run).unwrap();
        assert_eq!(std::fs::metadata(&run).unwrap().mode() & 0o7777, 0o755);
        prepare(&run).unwrap();

        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o775)).unwrap();
        let e = prepare(&run).unwrap_err();
        assert!(
            e.contains(&run.display().to_string()) && e.contains("writable"),
            "{e}"
        );
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();

        let link = d.join("link");
        std::os::unix::fs::symlink(&run, &link).unwrap();
        let e = prepare(&link).unwrap_err();
        assert!(e.contains("link") && e.contains("symbolic link"), "{e}");

        let file = d.join("file");
        std::fs::write(&file, "").unwrap();
        assert!(prepare(&file).unwrap_err().contains("not a directory"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = check_entry(&file, Kind::File).unwrap_err();
        assert!(e.contains("file") && e.contains("writable"), "{e}");

        let sock = run.join("g.sock");
        std::os::unix::fs::symlink("/etc/passwd", &sock).unwrap();
        let e = check_entry(&sock, Kind::Socket).unwrap_err();
        assert!(e.contains("g.sock") && e.contains("symbolic link"), "{e}");
        std::fs::remove_file(&sock).unwrap();
        std::fs::write(&sock, "").unwrap();
        assert!(check_entry(&sock, Kind::Socket)
            .unwrap_err()
            .contains("not a socket"));
        assert!(check_entry(&run.join("none"), Kind::File).is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn pid_file_is_an_exclusive_lock() {
        let d = tmp("pid");
        prepare(&d).unwrap();
        let path = d.join("g.pid");
        // A stale file, naming a live process, does not block.
        std::fs::write(&path, "1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let held = PidFile::lock(&path, "g").unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert_eq!(written.trim(), std::process::id().to_string());
        // flock conflicts between open file descriptions, even in one process.
        let e = PidFile::lock(&path, "g").err().unwrap();
        assert!(
            e.contains("already managed") && e.contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        drop(held);
        assert!(!path.exists());
        let again = PidFile::lock(&path, "g").unwrap();
        drop(again);

        std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
        assert!(PidFile::lock(&path, "g").err().unwrap().contains("symbolic link"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
