//! diskthrash's own platform code: O_DIRECT, writeback and the block device's counters,
//! with their stand-ins elsewhere, and the io_uring engine (Linux only: elsewhere the plan
//! refuses `--engine io_uring` with "needs Linux" and `--engine auto` takes psync). What
//! other binaries share stays in `common::sys`.
//!
//! Both modules export the same names but `Ring` (Linux only); the illumos clippy run keeps
//! them in step.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(not(target_os = "linux"))]
mod illumos;
#[cfg(not(target_os = "linux"))]
pub use illumos::*;

/// A block device's counters (/proc/diskstats): I/Os completed, 512-byte sectors moved, and
/// milliseconds the device had I/O in flight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskStats {
    pub reads: u64,
    pub read_sectors: u64,
    pub writes: u64,
    pub write_sectors: u64,
    pub busy_ms: u64,
}

impl DiskStats {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &DiskStats) -> DiskStats {
        DiskStats {
            reads: self.reads.saturating_sub(earlier.reads),
            read_sectors: self.read_sectors.saturating_sub(earlier.read_sectors),
            writes: self.writes.saturating_sub(earlier.writes),
            write_sectors: self.write_sectors.saturating_sub(earlier.write_sectors),
            busy_ms: self.busy_ms.saturating_sub(earlier.busy_ms),
        }
    }
}

/// Size and free bytes (for an unprivileged writer) of the filesystem that holds `path`
/// (statvfs). A size of 0 means the filesystem does not say (ramfs).
pub fn disk_space(path: &std::path::Path) -> common::error::Result<(u64, u64)> {
    let s = nix::sys::statvfs::statvfs(path)?;
    let f = s.fragment_size() as u64;
    Ok((s.blocks() as u64 * f, s.blocks_available() as u64 * f))
}

/// Microseconds that some and all non-idle tasks were stalled on I/O since boot
/// (/proc/pressure/io, Linux 4.20+ with PSI on; None elsewhere).
pub fn io_pressure_us() -> Option<(u64, u64)> {
    common::sys::pressure_us("io").map(|(some, full)| (some, full.unwrap_or(0)))
}
