//! Everything that differs between Linux and illumos, one function each.
//!
//! Stressors never hold a `cfg(target_os)`: they call these. Where illumos lacks a feature
//! the function falls back (and says so where it matters) or returns `None`.
//! Both modules export the same names; `cargo check --target x86_64-unknown-illumos` in
//! `scripts/dist` keeps them in step.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(not(target_os = "linux"))]
mod illumos;
#[cfg(not(target_os = "linux"))]
pub use illumos::*;

/// Counts of CPU time since boot, in clock ticks, for the steal-time measure.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTicks {
    pub total: u64,
    pub steal: u64,
}

/// Clock ticks per second (USER_HZ), for [`CpuTicks`].
pub fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&t| t > 0)
        .map(|t| t as u64)
        .unwrap_or(100)
}

/// CPUs online on the machine (not what this process may use: see `usable_cpus`).
pub fn online_cpus() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
        .ok()
        .flatten()
        .filter(|&n| n > 0)
        .map(|n| n as usize)
        .unwrap_or(1)
}

/// Memory page size in bytes.
pub fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .filter(|&n| n > 0)
        .map(|n| n as usize)
        .unwrap_or(4096)
}

/// Free bytes for an unprivileged writer on the filesystem that holds `path` (statvfs).
pub fn disk_free(path: &std::path::Path) -> crate::Result<u64> {
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
