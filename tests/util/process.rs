//! A running `ingestor` that a test watches and steers while it works (live mode, signals,
//! injected faults), as opposed to [`TestCommand`](super::TestCommand), which runs one to
//! completion.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{DB, Dir, INGESTOR, INPUT};

/// Default deadline for anything the binary should do "soon" (a commit, an exec, an exit).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How to start a [`Proc`]: arguments, stdin, environment, and a deadline for its waits.
pub struct ProcBuilder {
    cmd: Command,
    what: String,
    pipe_stdin: bool,
    patience: Duration,
}

impl ProcBuilder {
    /// `ingestor ARGS` in `dir`, stdin from `/dev/null`.
    pub fn new(dir: &Dir, args: &[&str]) -> ProcBuilder {
        let mut cmd = Command::new(INGESTOR);
        // Keep runs independent of the caller's terminal, locale and signal dispositions.
        cmd.current_dir(dir.root())
            .args(args)
            .env_remove("RUST_BACKTRACE")
            .env("NO_COLOR", "1");
        super::default_signals(&mut cmd);
        ProcBuilder {
            cmd,
            what: format!("ingestor {}", args.join(" ")),
            pipe_stdin: false,
            patience: PATIENCE,
        }
    }

    /// `ingestor --input INPUT --db DB ARGS` in `dir`.
    pub fn follow(dir: &Dir, args: &[&str]) -> ProcBuilder {
        let input = dir.path(INPUT);
        let db = dir.path(DB);
        let mut all = vec![
            "--input",
            input.to_str().expect("utf-8 temp path"),
            "--db",
            db.to_str().expect("utf-8 temp path"),
        ];
        all.extend_from_slice(args);
        ProcBuilder::new(dir, &all)
    }

    /// Stdin is a pipe the test keeps open ([`Proc::stdin`]) instead of `/dev/null`.
    pub fn pipe_stdin(mut self, pipe: bool) -> ProcBuilder {
        self.pipe_stdin = pipe;
        self
    }

    /// Deadline of [`Proc::wait_for`] and [`Proc::wait_exit`] (default [`PATIENCE`]).
    pub fn patience(mut self, patience: Duration) -> ProcBuilder {
        self.patience = patience;
        self
    }

    /// Sets an environment variable; failure messages show it before the command.
    pub fn env(mut self, key: &str, value: &str) -> ProcBuilder {
        self.cmd.env(key, value);
        self.what = format!("{key}={value} {}", self.what);
        self
    }

    /// Removes a variable the caller's environment might set (e.g. a failpoint spec).
    pub fn env_remove(mut self, key: &str) -> ProcBuilder {
        self.cmd.env_remove(key);
        self
    }

    /// Sets the soft `RLIMIT_FSIZE` to `bytes` (the hard limit is left as it is) and ignores
    /// SIGXFSZ, so that a write over the limit fails with EFBIG, as on a full disk, instead of
    /// killing the process; and no root is needed.
    pub fn file_size_limit(mut self, bytes: u64) -> ProcBuilder {
        self.what = format!("(RLIMIT_FSIZE {bytes}) {}", self.what);
        // SAFETY: getrlimit, setrlimit and signal are async-signal-safe; the closure allocates
        // nothing.
        unsafe {
            self.cmd.pre_exec(move || {
                let mut rl = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::getrlimit(libc::RLIMIT_FSIZE, &mut rl) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                rl.rlim_cur = (bytes as libc::rlim_t).min(rl.rlim_max);
                if libc::setrlimit(libc::RLIMIT_FSIZE, &rl) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Over the limit, a write then fails with EFBIG instead of killing us.
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
        self
    }

    /// Runs it as `nobody` when the tests run as root (see [`super::drop_privileges`]).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub fn unprivileged(mut self) -> ProcBuilder {
        super::drop_privileges(&mut self.cmd);
        self
    }

    /// Starts the process; stdout and stderr are collected by background threads.
    pub fn spawn(mut self) -> Proc {
        self.cmd
            .stdin(if self.pipe_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let what = self.what;
        let mut child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn `{what}`: {e}"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stderr.take().expect("stderr"), stderr.clone()),
            collect(child.stdout.take().expect("stdout"), stdout.clone()),
        ];
        let stdin = child.stdin.take();
        Proc {
            pid: child.id() as i32,
            child,
            what,
            stderr,
            stdout,
            readers,
            stdin,
            status: None,
            patience: self.patience,
        }
    }
}

/// A running `ingestor` whose stderr and stdout are collected by background threads. Dropping it
/// kills the process, so a failing test leaves nothing behind.
pub struct Proc {
    child: Child,
    pub pid: i32,
    /// The command as failure messages show it.
    pub what: String,
    stderr: Arc<Mutex<Vec<u8>>>,
    stdout: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    /// The write end of a piped stdin ([`ProcBuilder::pipe_stdin`]); dropping it closes the pipe.
    pub stdin: Option<ChildStdin>,
    /// The exit status, once [`Proc::alive`] has seen the exit.
    pub status: Option<ExitStatus>,
    patience: Duration,
}

/// Copies everything `pipe` yields into `sink` until it closes.
fn collect(mut pipe: impl Read + Send + 'static, sink: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    })
}

impl Proc {
    /// Starts `ingestor ARGS` in `dir`; stdin is a pipe kept open by the test when `pipe_stdin`,
    /// else `/dev/null`.
    pub fn spawn(dir: &Dir, args: &[&str], pipe_stdin: bool) -> Proc {
        ProcBuilder::new(dir, args).pipe_stdin(pipe_stdin).spawn()
    }

    /// `ingestor --input INPUT --db DB ARGS` in `dir`.
    pub fn follow(dir: &Dir, args: &[&str]) -> Proc {
        ProcBuilder::follow(dir, args).spawn()
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Everything written to stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    /// Whether the process is still running (records its status when it has ended).
    pub fn alive(&mut self) -> bool {
        if self.status.is_some() {
            return false;
        }
        match self.child.try_wait().expect("try_wait") {
            Some(s) => {
                self.status = Some(s);
                false
            }
            None => true,
        }
    }

    /// Polls `cond` until it returns `Some`, failing after the patience or as soon as the
    /// process has ended without it.
    pub fn wait_for<T>(&mut self, what: &str, mut cond: impl FnMut(&mut Proc) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = cond(self) {
                return v;
            }
            if !self.alive() {
                // One last look: the condition may have become true just before the exit.
                if let Some(v) = cond(self) {
                    return v;
                }
                panic!(
                    "`{}` ended ({:?}) while waiting for {what}; stderr:\n{}",
                    self.what,
                    self.status,
                    self.stderr()
                );
            }
            if start.elapsed() > self.patience {
                panic!(
                    "timed out after {:?} waiting for {what} from `{}`; stderr:\n{}",
                    self.patience,
                    self.what,
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until stderr contains `needle`; returns the whole stderr.
    pub fn wait_stderr(&mut self, needle: &str) -> String {
        self.wait_for(&format!("{needle:?} on stderr"), |p| {
            let s = p.stderr();
            s.contains(needle).then_some(s)
        })
    }

    /// The process's command line as `/proc` shows it.
    #[cfg(target_os = "linux")]
    pub fn cmdline(&self) -> Option<String> {
        std::fs::read(format!("/proc/{}/cmdline", self.pid))
            .ok()
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
    }

    /// Waits until the process has `path` open (`/proc/PID/fd`), e.g. before changing the file
    /// under it; `what` names the moment in a failure.
    #[cfg(target_os = "linux")]
    pub fn wait_open(&mut self, what: &str, path: &std::path::Path) {
        let path = std::fs::canonicalize(path).expect("canonical path");
        self.wait_for(what, |p| {
            std::fs::read_dir(format!("/proc/{}/fd", p.pid))
                .ok()?
                .flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == path))
                .then_some(())
        });
    }

    /// Whether `/proc` shows the re-executed live command line (same pid).
    #[cfg(target_os = "linux")]
    pub fn execed(&self) -> bool {
        self.cmdline().is_some_and(|c| c.contains("--no-exec-live"))
    }

    /// Waits until the backfill has re-executed this same process into live mode; returns the
    /// offset the live process starts from (from the `live from offset N` line).
    pub fn wait_exec(&mut self) -> u64 {
        #[cfg(target_os = "linux")]
        self.wait_for(
            "the exec into live mode (--no-exec-live in /proc/PID/cmdline)",
            |p| p.execed().then_some(()),
        );
        let err = self.wait_stderr("live from offset ");
        let tail = &err[err.find("live from offset ").unwrap() + "live from offset ".len()..];
        let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("no offset after `live from offset` in:\n{err}"))
    }

    /// Sends `sig` to the process.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: plain kill(2) on the pid of a child we have not reaped yet.
        let rc = unsafe { libc::kill(self.pid, sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.pid);
    }

    /// Closes a piped stdin, waits for the exit (within the patience) and joins the output
    /// readers.
    pub fn wait_exit(&mut self) -> ExitStatus {
        drop(self.stdin.take());
        let start = Instant::now();
        while self.alive() {
            if start.elapsed() > self.patience {
                panic!(
                    "`{}` did not exit within {:?}; stderr:\n{}",
                    self.what,
                    self.patience,
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
        for r in self.readers.drain(..) {
            r.join().expect("output reader");
        }
        self.status.expect("status")
    }

    /// Waits for the exit and asserts a clean one: status 0, no panic, nothing on stdout.
    /// Returns stderr.
    pub fn assert_clean_exit(&mut self) -> String {
        let status = self.wait_exit();
        let err = self.stderr();
        assert!(
            status.success(),
            "`{}` exited with {status}; stderr:\n{err}",
            self.what
        );
        assert_no_panic(&self.what, &err);
        let out = self.stdout();
        assert!(out.is_empty(), "`{}` wrote to stdout:\n{out}", self.what);
        err
    }

    /// A one-shot run that must succeed with one summary line on stderr.
    pub fn assert_ok(&mut self) -> String {
        let err = self.assert_clean_exit();
        assert_eq!(
            err.lines().count(),
            1,
            "`{}`: expected one summary line on stderr:\n{err}",
            self.what
        );
        err
    }

    /// SIGTERM, then a clean exit. Returns stderr. Unlike [`Proc::stop_with`], it does not
    /// require the live stats line last, for a run that may end otherwise.
    pub fn stop(&mut self) -> String {
        self.signal(libc::SIGTERM);
        self.assert_clean_exit()
    }

    /// `sig` (SIGTERM or SIGINT), then a clean exit that ends with the live stats line. Returns
    /// stderr.
    pub fn stop_with(&mut self, sig: libc::c_int) -> String {
        self.signal(sig);
        let err = self.assert_clean_exit();
        assert_live_stats_line(&err);
        err
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Fails if `stderr` shows a panic (its message, or the backtrace hint that follows one).
pub fn assert_no_panic(what: &str, stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "`{what}` panicked:\n{stderr}"
    );
}

/// The last stderr line is the live summary: `... INFO live: ... RSS now X MiB ...`.
pub fn assert_live_stats_line(stderr: &str) {
    let last = stderr.lines().last().unwrap_or("");
    let rss_now = last.find("RSS now ").map(|i| &last[i + "RSS now ".len()..]);
    let rss_value = rss_now.and_then(|rest| {
        let (num, unit) = rest.split_once(' ')?;
        (unit.starts_with("MiB") && num.parse::<f64>().is_ok()).then_some(num)
    });
    assert!(
        super::log_message(last).is_some_and(|(_, msg)| msg.starts_with("live: "))
            && rss_value.is_some(),
        "the last stderr line is not the live stats line: {last:?}\nstderr:\n{stderr}"
    );
}

/// Resident memory of `pid` in bytes (Linux).
#[cfg(target_os = "linux")]
pub fn vm_rss(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS value");
    kb * 1024
}
