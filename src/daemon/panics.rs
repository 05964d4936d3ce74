//! What a panic does. ipmpd keeps Rust's default unwinding (no
//! `panic = "abort"`): a panic on the control thread unwinds out of
//! `run`, and `Daemon`'s Drop runs the full teardown (addresses off, data
//! plane stopped, members restored, group interface removed), the same as a
//! clean stop. A data thread that panics is noticed by the control loop
//! (`DataPlane::failed`), which then shuts down the same way. What unwinding
//! cannot cover (a panic inside the teardown itself, which aborts; SIGKILL;
//! an abort) is covered by the state file: the next start restores every
//! member it names first (see `state`).

use std::backtrace::{Backtrace, BacktraceStatus};

/// Sends panics to the log (stderr, the journal under systemd) instead of
/// a bare stderr line, with a backtrace when RUST_BACKTRACE asks for one.
pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let bt = Backtrace::capture();
        let bt = if bt.status() == BacktraceStatus::Captured {
            format!("\n{bt}")
        } else {
            String::new()
        };
        log::error!(
            "thread {name} {info}; tearing the group down (members not restored by then are restored by the next start, from the state file){bt}"
        );
    }));
}
