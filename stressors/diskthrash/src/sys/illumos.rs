//! illumos (and any other Unix without the Linux interfaces): directio(3C) instead of
//! O_DIRECT, fdatasync instead of sync_file_range, no block device counters read yet.

use super::DiskStats;

extern "C" {
    /// directio(3C): advice that I/O on this file bypass the page cache.
    fn directio(fildes: libc::c_int, advice: libc::c_int) -> libc::c_int;
}
const DIRECTIO_ON: libc::c_int = 1;

/// Bypasses the page cache for `file` (directio(3C)); Err says why not.
pub fn set_direct(file: &std::fs::File) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    // SAFETY: directio takes a descriptor we own and an integer.
    nix::errno::Errno::result(unsafe { directio(file.as_raw_fd(), DIRECTIO_ON) })
        .map(drop)
        .map_err(|e| format!("directio refused ({})", common::error::errno_text(e)))
}

/// No madvise(MADV_HUGEPAGE) here: the buffers keep the pages the system gives.
pub fn huge_pages(_map: &memmap2::MmapMut) {}

/// No sync_file_range on illumos: with `wait`, fdatasync (a stronger wait); otherwise nothing.
pub fn writeback(file: &std::fs::File, _off: u64, _len: u64, wait: bool) {
    if wait {
        let _ = file.sync_data();
    }
}

/// Block device statistics are kstats on illumos: not read yet.
pub fn block_device(_path: &std::path::Path) -> Option<String> {
    None
}

/// Not read on illumos yet (kstat).
pub fn disk_stats(_name: &str) -> Option<DiskStats> {
    None
}
