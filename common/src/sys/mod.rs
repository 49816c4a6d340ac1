//! What differs between Linux and illumos and serves two or more binaries (the run loop
//! and the host probe serve all of them), one function each. What serves one stressor
//! only lives in that stressor's own `sys` module, behind the same `cfg`.
//!
//! Where illumos lacks a feature the function falls back (and says so where it matters) or
//! returns `None`. Both modules export the same names; `cargo check --target
//! x86_64-unknown-illumos` in `scripts/dist` keeps them in step.

use nix::errno::Errno;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(not(target_os = "linux"))]
mod illumos;
#[cfg(not(target_os = "linux"))]
pub use illumos::*;

/// Which cgroup hierarchy a controller lives in (there are none on illumos).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// Counts of CPU time since boot, in clock ticks, for the steal-time measure.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTicks {
    pub total: u64,
    pub steal: u64,
}

/// A sysconf value, if the system knows it (libc, since nix lacks several on illumos).
pub fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf takes an integer and returns one.
    let v = unsafe { libc::sysconf(name) };
    (v > 0).then_some(v as u64)
}

/// Clock ticks per second (USER_HZ), for [`CpuTicks`].
pub fn ticks_per_second() -> u64 {
    sysconf(libc::_SC_CLK_TCK).unwrap_or(100)
}

/// CPUs online on the machine (not what this process may use: see `usable_cpus`).
pub fn online_cpus() -> usize {
    sysconf(libc::_SC_NPROCESSORS_ONLN).unwrap_or(1) as usize
}

/// Memory page size in bytes.
pub fn page_size() -> usize {
    sysconf(libc::_SC_PAGESIZE).unwrap_or(4096) as usize
}

/// User + system CPU seconds of every child (and their reaped descendants) this process
/// has waited for.
pub fn children_cpu_s() -> f64 {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into `u`.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// This process's nice value.
pub fn nice() -> i32 {
    Errno::clear();
    // SAFETY: getpriority takes integers; -1 is a valid answer, told apart by errno.
    let n = unsafe { libc::getpriority(libc::PRIO_PROCESS as _, 0) };
    if n == -1 && Errno::last_raw() != 0 {
        0
    } else {
        n
    }
}

/// Sets this process's nice value; lowering it needs privilege, so this is best effort and
/// says whether it took.
pub fn set_nice(n: i32) -> bool {
    // SAFETY: setpriority takes integers.
    unsafe { libc::setpriority(libc::PRIO_PROCESS as _, 0, n) == 0 }
}

/// Free bytes for an unprivileged writer on the filesystem that holds `path` (statvfs).
pub fn disk_free(path: &std::path::Path) -> crate::error::Result<u64> {
    let s = nix::sys::statvfs::statvfs(path)?;
    Ok(s.blocks_available() as u64 * s.fragment_size() as u64)
}

/// The x86 CPUID hypervisor bit and vendor leaf: the same on Linux and illumos.
#[cfg(target_arch = "x86_64")]
pub fn cpuid_hypervisor() -> Option<String> {
    let leaf1 = core::arch::x86_64::__cpuid(1);
    if leaf1.ecx & (1 << 31) == 0 {
        return None;
    }
    // Leaf 0x4000_0000 is the hypervisor's vendor leaf when the bit is set.
    let v = core::arch::x86_64::__cpuid(0x4000_0000);
    let mut id = Vec::with_capacity(12);
    for r in [v.ebx, v.ecx, v.edx] {
        id.extend_from_slice(&r.to_le_bytes());
    }
    let id = String::from_utf8_lossy(&id)
        .trim_matches(char::from(0))
        .trim()
        .to_string();
    Some(if id.is_empty() { "unknown".into() } else { id })
}

#[cfg(not(target_arch = "x86_64"))]
pub fn cpuid_hypervisor() -> Option<String> {
    None
}

/// A file with a unique name in `dir`, unlinked at once (where O_TMPFILE is missing): a
/// kill between the two calls is the only way it can be left behind.
pub fn create_unlinked(dir: &std::path::Path) -> std::io::Result<(std::fs::File, &'static str)> {
    use std::os::unix::fs::OpenOptionsExt;
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    loop {
        let name = dir.join(format!(
            ".misbehave-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&name)
        {
            Ok(f) => {
                std::fs::remove_file(&name)?;
                return Ok((f, "created and unlinked at once"));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}
