//! One error type for the whole suite.
//!
//! Like ripgrep, an error carries a chain of context and is printed once, on one line, by
//! `main`: `cpubomb: error: starting worker 3: fork: EAGAIN: Resource temporarily unavailable`.
//! Its kind decides the exit code: a usage error (bad input, refused plan) exits 2 before
//! anything was started; a runtime error exits 1.

use std::fmt;

/// What went wrong, as far as the exit code is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad input or a refused plan: nothing was started (exit 2).
    Usage,
    /// Something failed while running (exit 1).
    Runtime,
}

/// An error with its chain of context, printed once on one line.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
    msg: String,
}

impl Error {
    /// A usage error: exit code 2, nothing started.
    pub fn usage(msg: impl Into<String>) -> Self {
        Self {
            kind: Kind::Usage,
            msg: msg.into(),
        }
    }

    /// A runtime error: exit code 1.
    pub fn runtime(msg: impl Into<String>) -> Self {
        Self {
            kind: Kind::Runtime,
            msg: msg.into(),
        }
    }

    /// Puts `what` in front of the message: `what: message`.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.msg = format!("{what}: {}", self.msg);
        self
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The exit code this error ends the process with.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            Kind::Usage => 2,
            Kind::Runtime => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Self {
        Self::runtime(errno_text(e))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(n) => Self::runtime(errno_text(nix::errno::Errno::from_raw(n))),
            None => Self::runtime(e.to_string()),
        }
    }
}

/// `EAGAIN: Resource temporarily unavailable`: the name scripts grep for, then the words.
pub fn errno_text(e: nix::errno::Errno) -> String {
    format!("{e:?}: {}", e.desc())
}

/// Adds context to any result whose error converts into [`Error`].
pub trait Context<T> {
    fn context(self, what: impl fmt::Display) -> Result<T, Error>;
}

impl<T, E: Into<Error>> Context<T> for Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T, Error> {
        self.map_err(|e| e.into().context(what))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Prints one line on stderr in a single write(2): lines from several worker processes
/// then never interleave mid-line (`eprintln!` with arguments writes piece by piece).
pub fn say(line: &str) {
    use std::io::Write;
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    let _ = std::io::stderr().lock().write_all(buf.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_chains_on_one_line() {
        let e: Result<()> = Err(nix::errno::Errno::EAGAIN).context("fork");
        let e = e.context("starting worker 3").unwrap_err();
        assert_eq!(
            e.to_string(),
            "starting worker 3: fork: EAGAIN: Try again"
                .replace("Try again", nix::errno::Errno::EAGAIN.desc())
        );
        assert_eq!(e.exit_code(), 1);
        assert_eq!(Error::usage("x").exit_code(), 2);
    }
}
