//! Linux: O_DIRECT, sync_file_range, /proc/diskstats, io_uring, huge page advice.

use std::fs;
use std::os::fd::FromRawFd;
use std::path::Path;

use super::DiskStats;

/// Asks for transparent huge pages under `map` (madvise MADV_HUGEPAGE, before it is
/// touched); where the kernel has none or refuses, small pages serve as before.
pub fn huge_pages(map: &memmap2::MmapMut) {
    let _ = map.advise(memmap2::Advice::HugePage);
}

/// Bypasses the page cache for `file` (O_DIRECT, set with fcntl). Err says why not in words
/// (tmpfs and some others refuse it).
pub fn set_direct(file: &fs::File) -> Result<(), String> {
    use nix::errno::Errno;
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, integer arguments.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_GETFL) })
        .and_then(|fl| {
            // SAFETY: as above.
            Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_DIRECT) })
        })
        .map(drop)
        .map_err(|e| format!("O_DIRECT refused ({})", common::error::errno_text(e)))
}

/// Starts writing back the dirty pages of `[off, off+len)` (len 0: to the end); with
/// `wait`, first waits for the writeback started by the previous call. Called every few MiB
/// by a buffered writer, this keeps at most two windows per file dirty or in flight, so a
/// deadline is not followed by seconds of writeback (an exiting process must wait for the
/// pages under writeback of its files).
pub fn writeback(file: &fs::File, off: u64, len: u64, wait: bool) {
    use std::os::fd::AsRawFd;
    let flags = if wait {
        libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE
    } else {
        libc::SYNC_FILE_RANGE_WRITE
    };
    // SAFETY: integer arguments on a descriptor we own.
    unsafe { libc::sync_file_range(file.as_raw_fd(), off as i64, len as i64, flags) };
}

/// The block device that holds `path`, as /proc/diskstats names it ("vda1", "dm-0"); None
/// for filesystems without one (tmpfs, overlay's upper layer may still have one).
pub fn block_device(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dev = fs::metadata(path).ok()?.dev();
    let (maj, min) = (libc::major(dev), libc::minor(dev));
    if maj == 0 {
        return None;
    }
    let uevent = fs::read_to_string(format!("/sys/dev/block/{maj}:{min}/uevent")).ok()?;
    uevent
        .trim()
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .map(str::to_string)
}

/// The kernel's counters of one block device (/proc/diskstats).
pub fn disk_stats(name: &str) -> Option<DiskStats> {
    let text = fs::read_to_string("/proc/diskstats").ok()?;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 14 && f[2] == name {
            let n = |i: usize| f[i].parse::<u64>().unwrap_or(0);
            return Some(DiskStats {
                reads: n(3),
                read_sectors: n(5),
                writes: n(7),
                write_sectors: n(9),
                busy_ms: n(12),
            });
        }
    }
    None
}

/// io_uring (Linux 5.1+; reads and writes 5.6+), through the pure-Rust io-uring crate.
pub struct Ring {
    ring: io_uring::IoUring,
    /// The file registered with the ring (with the buffer region of `register`), if any.
    fixed: Option<i32>,
}

impl Ring {
    /// A ring for `depth` I/Os in flight; Err says in words why io_uring cannot be had.
    ///
    /// Completions wait for the worker's next wait instead of interrupting it (what fio sets
    /// up too): a single issuer whose deferred task work runs when it asks for events
    /// (Linux 6.1), else cooperative task work (5.19), else a plain ring.
    pub fn new(depth: u32) -> Result<Self, String> {
        let entries = depth.next_power_of_two().max(2);
        let mut last = 0;
        for level in 0..3 {
            let mut b = io_uring::IoUring::builder();
            if level < 2 {
                b.setup_coop_taskrun().setup_taskrun_flag();
            }
            if level == 0 {
                b.setup_single_issuer().setup_defer_taskrun();
            }
            match b.build(entries) {
                Ok(ring) => return Ok(Ring { ring, fixed: None }),
                Err(e) => last = e.raw_os_error().unwrap_or(0),
            }
            if last != libc::EINVAL {
                break;
            }
        }
        Err(ring_refusal(last))
    }

    /// Registers `fd` and the buffer region `buf..buf+len` with the ring, so that the kernel
    /// neither looks the file up nor pins the buffer's pages for each I/O (fio's registerfiles
    /// and fixedbufs, off there by default). False where the kernel refuses (pinned pages
    /// count against RLIMIT_MEMLOCK, and sandboxes may lack it): the ring goes on unregistered.
    ///
    /// # Safety
    /// `buf..buf+len` must stay valid until the ring is dropped.
    pub unsafe fn register(&mut self, fd: i32, buf: *mut u8, len: usize) -> bool {
        let iov = libc::iovec {
            iov_base: buf.cast(),
            iov_len: len,
        };
        let submitter = self.ring.submitter();
        // SAFETY: the caller keeps the region valid for the ring's life (this fn's contract).
        if unsafe { submitter.register_buffers(&[iov]) }.is_err() {
            return false;
        }
        if submitter.register_files(&[fd]).is_err() {
            let _ = submitter.unregister_buffers();
            return false;
        }
        self.fixed = Some(fd);
        true
    }

    /// Queues one read or write of `len` bytes at `off`, from or into `buf`, tagged `tag`.
    /// False when the submission queue is full.
    ///
    /// # Safety
    /// `buf..buf+len` must stay valid and unused by anything else until the completion with
    /// `tag` has been taken; on a registered ring, inside the registered region.
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
        let e = if self.fixed == Some(fd) {
            if write {
                opcode::WriteFixed::new(types::Fixed(0), buf, len, 0)
                    .offset(off)
                    .build()
            } else {
                opcode::ReadFixed::new(types::Fixed(0), buf, len, 0)
                    .offset(off)
                    .build()
            }
        } else if write {
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

    /// One write and one read on a memory file, then the same through a registered file and
    /// buffer where the kernel takes them (the workers register theirs); Err says in words
    /// why they failed.
    fn check_rw(&mut self, buf: &mut [u8]) -> Result<(), String> {
        // SAFETY: a plain syscall with a NUL-terminated name; the fd is owned below.
        let fd = unsafe { libc::memfd_create(c"diskthrash-probe".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            // No memory file to try with (an old kernel, a seccomp filter): the ring is
            // taken on trust.
            return Ok(());
        }
        // SAFETY: fd was just created and is owned by nothing else.
        let _file = unsafe { fs::File::from_raw_fd(fd) };
        for fixed in [false, true] {
            // SAFETY: the caller's buf outlives the ring (made after it, dropped before it).
            if fixed && !unsafe { self.register(fd, buf.as_mut_ptr(), buf.len()) } {
                break;
            }
            for write in [true, false] {
                // SAFETY: buf outlives the wait below, which takes this I/O's completion.
                let pushed =
                    unsafe { self.push(write, fd, buf.as_mut_ptr(), buf.len() as u32, 0, 0) };
                if !pushed {
                    return Err("io_uring: the submission queue took no entry".into());
                }
                let mut done = Vec::new();
                while done.is_empty() {
                    match self.submit_and_wait(1) {
                        Ok(_) => self.completions(&mut done),
                        Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                        Err(e) => return Err(format!("io_uring_enter: {e}")),
                    }
                }
                let res = done[0].1;
                if res < 0 {
                    let op = match (fixed, write) {
                        (false, true) => "writes",
                        (false, false) => "reads",
                        (true, true) => "writes from a registered buffer",
                        (true, false) => "reads into a registered buffer",
                    };
                    return Err(format!(
                        "io_uring_enter: {op} refused ({}): a kernel or sandbox with part of io_uring",
                        common::error::errno_text(nix::errno::Errno::from_raw(-res))
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether a ring really reads and writes. A sandbox can set a ring up and still refuse its
/// operations (gVisor answers EINVAL to reads and writes), which would fail every I/O of
/// the run; Err says so in words. Tried in a child process: the kernel may start an io-wq
/// thread for the I/O, and the supervisor must have no thread when it forks the workers.
pub fn ring_rw_works() -> Result<(), String> {
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, pipe, ForkResult};
    use std::io::{Read, Write};
    let (rd, wr) = pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the caller (the plan) runs before any thread exists; the child only makes a
    // ring, does two I/Os, writes to a pipe and _exits.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(rd);
            let mut buf = vec![0x5au8; 4096];
            let why = Ring::new(2).and_then(|mut r| r.check_rw(&mut buf)).err();
            let mut out = fs::File::from(wr);
            let _ = out.write_all(why.unwrap_or_default().as_bytes());
            // SAFETY: ends the child at once, without the parent's exit handlers.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(wr);
            let mut why = String::new();
            let _ = fs::File::from(rd).read_to_string(&mut why);
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, 0)) if why.is_empty() => Ok(()),
                Ok(WaitStatus::Exited(_, 0)) => Err(why),
                other => Err(format!("io_uring probe process ended with {other:?}")),
            }
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
