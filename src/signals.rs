//! SIGINT and SIGTERM end a run cleanly: what was read is committed, the
//! process exits 0, and the next start resumes at the committed position.
//!
//! A signal handler can only set a flag, so this is the one piece of global
//! state in the program; readers and writers poll it between lines.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Installs the handlers, then unblocks the signals: a process started by the
/// hand-over inherits them blocked (see [`block`]), and one that arrived
/// during the `exec()` is delivered now, to the new handler.
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
    mask(libc::SIG_UNBLOCK);
}

/// Holds SIGINT and SIGTERM pending across an `exec()`: between the last
/// check of the flag and the new image's handlers, a signal would otherwise be
/// forgotten (the flag dies with the old image) or kill the new process.
pub fn block() {
    mask(libc::SIG_BLOCK);
}

pub fn unblock() {
    mask(libc::SIG_UNBLOCK);
}

fn mask(how: libc::c_int) {
    // SAFETY: the set is initialised by sigemptyset before use.
    unsafe {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGINT);
        libc::sigaddset(set.as_mut_ptr(), libc::SIGTERM);
        libc::pthread_sigmask(how, set.as_ptr(), std::ptr::null_mut());
    }
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}
