//! SIGINT, SIGTERM and SIGHUP end a run cleanly: what was read is committed,
//! the process exits 0, and the next start resumes at the committed position.
//! SIGHUP (the terminal closed, or a service manager) counts as a stop like
//! the others, unless the process was started with it ignored (`nohup`).
//!
//! A signal handler can only set a flag, so this is the one piece of global
//! state in the program; readers and writers poll it between lines, and the
//! handlers are installed without `SA_RESTART` so that a wait in a system
//! call (a read or poll on standard input) ends with EINTR and looks at it.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// The signals that ask for a clean stop.
const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Installs the handlers, then unblocks the signals: a process started by the
/// hand-over inherits them blocked (see [`block`]), and one that arrived
/// during the `exec()` is delivered now, to the new handler. On a failure the
/// caller says so and goes on: the signals then end the process as they would
/// by default, losing only what was not committed yet.
pub fn install() -> io::Result<()> {
    for sig in STOP_SIGNALS {
        handle(sig)?;
    }
    mask(libc::SIG_UNBLOCK)
}

fn handle(sig: libc::c_int) -> io::Result<()> {
    // SAFETY: sigaction is plain data; all-zero is an empty mask, no flags
    // and the default disposition, and every field used is set below.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    if sig == libc::SIGHUP {
        // SAFETY: a null new action only reads the current one into `act`.
        check(unsafe { libc::sigaction(sig, std::ptr::null(), &mut act) })?;
        if act.sa_sigaction == libc::SIG_IGN {
            // Started under `nohup` (or re-executed from such a process):
            // the user asked to outlive the terminal.
            return Ok(());
        }
    }
    act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // Not SA_RESTART: a blocking read or wait must return (EINTR) so that
    // the stop is seen at once. Not SA_SIGINFO: the handler takes one int.
    act.sa_flags = 0;
    // SAFETY: `act.sa_mask` is a valid sigset_t to initialise.
    check(unsafe { libc::sigemptyset(&mut act.sa_mask) })?;
    // SAFETY: `act` is fully initialised; the handler only stores to an
    // atomic, which is async-signal-safe; the old action is not wanted.
    check(unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) })
}

/// Holds the stop signals pending across an `exec()`: between the last check
/// of the flag and the new image's handlers, a signal would otherwise be
/// forgotten (the flag dies with the old image) or kill the new process.
pub fn block() -> io::Result<()> {
    mask(libc::SIG_BLOCK)
}

pub fn unblock() -> io::Result<()> {
    mask(libc::SIG_UNBLOCK)
}

fn mask(how: libc::c_int) -> io::Result<()> {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set it is given.
    check(unsafe { libc::sigemptyset(set.as_mut_ptr()) })?;
    for sig in STOP_SIGNALS {
        // SAFETY: the set was initialised by sigemptyset above.
        check(unsafe { libc::sigaddset(set.as_mut_ptr(), sig) })?;
    }
    // SAFETY: the set is initialised; the old mask is not wanted (null).
    match unsafe { libc::pthread_sigmask(how, set.as_ptr(), std::ptr::null_mut()) } {
        0 => Ok(()),
        // pthread functions return the error number instead of setting errno.
        err => Err(io::Error::from_raw_os_error(err)),
    }
}

/// A C call's `0 or -1 with errno` result.
fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}
