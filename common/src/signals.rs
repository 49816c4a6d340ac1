//! Signals the supervisor waits for, through a self-pipe.
//!
//! The handler only records the signal and writes a byte to a non-blocking pipe; the
//! supervisor's loop sleeps in `poll` on that pipe, so SIGINT, SIGTERM, SIGHUP and SIGCHLD
//! wake it at once and nothing races between "check the flag" and "go to sleep". `poll` and
//! a pipe are the same on Linux and illumos (signalfd is Linux only).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::error::{Context, Result};

static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The signals that end a run.
pub const STOP_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

extern "C" fn on_signal(sig: libc::c_int) {
    let saved = Errno::last_raw();
    let fd = WAKE_FD.load(Ordering::Relaxed);
    if sig != libc::SIGCHLD {
        // The first stop signal decides the exit code.
        let first = STOP_SIGNAL.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
        if first.is_err() && fd < 0 {
            // A second stop signal before the run started (planning stuck on a slow
            // filesystem, say): the default action, so Ctrl-C twice always ends it.
            // SAFETY: signal(2) and raise(3) are async-signal-safe.
            unsafe {
                libc::signal(sig, libc::SIG_DFL);
                libc::raise(sig);
            }
        }
    }
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; a full pipe just drops the byte.
        unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) };
    }
    Errno::set_raw(saved);
}

/// Catches the stop signals from the program's start: one that arrives while the host is
/// probed and the plan made is kept for the run, which then stops at once and still writes
/// its report, instead of the default action killing the process with nothing said. A
/// second one before the run starts takes the default action.
pub fn catch_early() {
    let act = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for s in STOP_SIGNALS {
        // SAFETY: the handler is async-signal-safe (atomics, write, signal, raise).
        let _ = unsafe { sigaction(s, &act) };
    }
}

/// The stop signal caught so far, if any (before or during the run).
pub fn caught() -> Option<Signal> {
    Signal::try_from(STOP_SIGNAL.load(Ordering::SeqCst)).ok()
}

/// The installed handlers and their pipe.
pub struct Signals {
    read: OwnedFd,
    _write: OwnedFd,
}

impl Signals {
    /// Installs the handlers. Call once, in the supervisor, before the first fork.
    pub fn install() -> Result<Self> {
        let (read, write) = nix::unistd::pipe().context("creating the signal pipe")?;
        for fd in [&read, &write] {
            fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
            fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
        }
        WAKE_FD.store(write.as_raw_fd(), Ordering::SeqCst);
        // No SA_RESTART: a blocking call in the supervisor returns EINTR and the loop looks.
        let act = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::empty(),
            SigSet::empty(),
        );
        let chld = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_NOCLDSTOP,
            SigSet::empty(),
        );
        for s in STOP_SIGNALS {
            // SAFETY: the handler is async-signal-safe (atomics and write only).
            unsafe { sigaction(s, &act) }.context("installing signal handlers")?;
        }
        // SAFETY: as above.
        unsafe { sigaction(Signal::SIGCHLD, &chld) }.context("installing signal handlers")?;
        if STOP_SIGNAL.load(Ordering::SeqCst) != 0 {
            // Caught before the pipe existed: wake the supervisor's first wait at once.
            // SAFETY: a one-byte write to our own non-blocking pipe.
            unsafe { libc::write(write.as_raw_fd(), b"x".as_ptr().cast(), 1) };
        }
        Ok(Self {
            read,
            _write: write,
        })
    }

    /// Sleeps until a signal arrives or `timeout` passes, then empties the pipe.
    pub fn wait(&self, timeout: Duration) {
        let ms = timeout.as_millis().min(60_000) as u16;
        let mut fds = [PollFd::new(self.read.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(ms));
        let mut buf = [0u8; 64];
        while matches!(nix::unistd::read(self.read.as_raw_fd(), &mut buf), Ok(n) if n > 0) {}
    }

    /// The first stop signal received, if any.
    pub fn stop_signal(&self) -> Option<Signal> {
        caught()
    }

    /// In a freshly forked worker: default handlers, and the pipe closed.
    pub fn reset_in_child(&self) {
        WAKE_FD.store(-1, Ordering::SeqCst);
        let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        for s in STOP_SIGNALS.iter().chain([Signal::SIGCHLD].iter()) {
            // SAFETY: restoring the default disposition.
            let _ = unsafe { sigaction(*s, &dfl) };
        }
        // Workers live in their own process group, so a terminal's Ctrl-C reaches only the
        // supervisor, which then stops them in order.
        let _ = nix::unistd::close(self.read.as_raw_fd());
        let _ = nix::unistd::close(self._write.as_raw_fd());
    }
}
