//! Linux: io_uring.

/// io_uring (Linux 5.1+; reads and writes 5.6+), through the pure-Rust io-uring crate.
pub struct Ring {
    ring: io_uring::IoUring,
}

impl Ring {
    /// A ring for `depth` I/Os in flight; Err says in words why io_uring cannot be had.
    pub fn new(depth: u32) -> Result<Self, String> {
        match io_uring::IoUring::new(depth.next_power_of_two().max(2)) {
            Ok(ring) => Ok(Ring { ring }),
            Err(e) => Err(ring_refusal(e.raw_os_error().unwrap_or(0))),
        }
    }

    /// Queues one read or write of `len` bytes at `off`, from or into `buf`, tagged `tag`.
    /// False when the submission queue is full.
    ///
    /// # Safety
    /// `buf..buf+len` must stay valid and unused by anything else until the completion with
    /// `tag` has been taken.
    pub unsafe fn push(
        &mut self,
        write: bool,
        fd: i32,
        buf: *mut u8,
        len: u32,
        off: u64,
        tag: u64,
    ) -> bool {
        use io_uring::{opcode, types};
        let e = if write {
            opcode::Write::new(types::Fd(fd), buf, len)
                .offset(off)
                .build()
        } else {
            opcode::Read::new(types::Fd(fd), buf, len)
                .offset(off)
                .build()
        };
        // SAFETY: the caller keeps the buffer valid until completion (this fn's contract).
        unsafe { self.ring.submission().push(&e.user_data(tag)).is_ok() }
    }

    /// Submits what is queued and waits for at least `want` completions.
    pub fn submit_and_wait(&mut self, want: usize) -> std::io::Result<usize> {
        self.ring.submit_and_wait(want)
    }

    /// Takes every completion there is: (tag, result: bytes, or -errno).
    pub fn completions(&mut self, out: &mut Vec<(u64, i32)>) {
        for c in self.ring.completion() {
            out.push((c.user_data(), c.result()));
        }
    }
}

fn ring_refusal(errno: i32) -> String {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .map(|s| s.trim().to_string());
    match errno {
        libc::ENOSYS => "io_uring_setup: ENOSYS: this kernel has no io_uring (older than 5.1, or built without it), or a seccomp filter hides it".into(),
        libc::EPERM if disabled.as_deref().is_some_and(|d| d != "0") => format!(
            "io_uring_setup: EPERM: kernel.io_uring_disabled is {}",
            disabled.unwrap_or_default()
        ),
        libc::EPERM => "io_uring_setup: EPERM: refused by a seccomp filter (Docker's default profile blocks io_uring) or a security module".into(),
        libc::ENOMEM => "io_uring_setup: ENOMEM: the locked-memory limit (RLIMIT_MEMLOCK) is too low for the ring".into(),
        e => format!(
            "io_uring_setup: {}",
            common::error::errno_text(nix::errno::Errno::from_raw(e))
        ),
    }
}
