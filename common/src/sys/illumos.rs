//! illumos (and any other Unix without the Linux interfaces): sysconf instead of
//! /proc/meminfo, zones instead of cgroups, no PDEATHSIG (workers notice a changed parent
//! instead), no OOM killer (swap is reserved when memory is mapped, so mmap fails first).

use super::{CgroupVersion, CpuTicks};

/// No cgroups on illumos: zones use resource controls instead.
pub fn cgroup_dir(_controller: &str) -> Option<(std::path::PathBuf, CgroupVersion)> {
    None
}

/// No cgroups on illumos.
pub fn create_cgroup(
    _controller: &str,
    _name: &str,
) -> Result<(std::path::PathBuf, CgroupVersion), String> {
    Err("no cgroups on illumos".into())
}

pub fn cgroup_memory_limit() -> Option<u64> {
    None
}

pub fn cgroup_pids_limit() -> Option<(u64, Option<u64>)> {
    None
}

pub fn cgroup_cpu_quota() -> Option<f64> {
    None
}

/// No cgroups: teardown relies on the process group (contracts are not used yet).
pub fn cgroup_kill_all(_dir: &std::path::Path) -> Option<&'static str> {
    None
}

/// No affinity masks to read here; processor sets are not consulted.
pub fn affinity_cpus() -> usize {
    super::online_cpus()
}

/// (total, available) physical memory from sysconf.
pub fn memory() -> (u64, u64) {
    let page = super::page_size() as u64;
    let total = super::sysconf(libc::_SC_PHYS_PAGES).unwrap_or(0) * page;
    let avail = super::sysconf(libc::_SC_AVPHYS_PAGES).map_or(total, |p| p * page);
    (total, avail)
}

pub fn kernel_process_limits() -> (Option<u64>, Option<u64>) {
    (super::sysconf(libc::_SC_CHILD_MAX), None)
}

/// Not counted on illumos (no /proc/loadavg; its process limit is per user): callers treat
/// the limit as all free, as before.
pub fn threads_in_use() -> Option<u64> {
    None
}

/// illumos has no RLIMIT_NPROC.
pub fn rlimit_nproc() -> Option<u64> {
    None
}

/// No /proc/stat: steal time is not reported.
pub fn cpu_ticks() -> Option<CpuTicks> {
    None
}

/// No OOM killer on illumos.
pub fn oom_kills() -> Option<u64> {
    None
}

/// No PDEATHSIG: the worker's `running()` notices a changed parent instead.
pub fn die_with_parent(parent: nix::unistd::Pid) -> bool {
    nix::unistd::getppid() == parent
}

/// No subreaper here: orphans go to init, the process group still reaches them.
pub fn become_subreaper() {}

/// How many live processes are in process group `pgid`, from /proc/*/psinfo (orphans that
/// went to init keep their group, so it still finds them). A zombie has no LWP left
/// (`pr_nlwp` 0) and is not counted. None if /proc cannot be read.
pub fn group_alive(pgid: i32) -> Option<u64> {
    use std::io::Read;
    let mut n = 0;
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let path = e.path().join("psinfo");
        // psinfo_t begins pr_flag, pr_nlwp, pr_pid, pr_ppid, pr_pgid: five 32-bit ints.
        let mut head = [0u8; 20];
        let read = std::fs::File::open(&path).and_then(|mut f| f.read_exact(&mut head));
        if read.is_err() {
            continue;
        }
        let int = |i: usize| i32::from_ne_bytes(head[i * 4..i * 4 + 4].try_into().unwrap());
        if int(4) == pgid && int(1) > 0 {
            n += 1;
        }
    }
    Some(n)
}

/// No OOM killer, so no score to set.
pub fn set_oom_score_adj(_v: i32) -> bool {
    false
}

pub fn kernel() -> (&'static str, String) {
    let rel = nix::sys::utsname::uname()
        .map(|u| u.version().to_string_lossy().into_owned())
        .unwrap_or_default();
    (std::env::consts::OS, rel)
}

pub fn vm_evidence() -> (Option<String>, Vec<String>) {
    match super::cpuid_hypervisor() {
        Some(id) => (
            Some(id.to_lowercase()),
            vec![format!("cpuid hypervisor bit set, vendor \"{id}\"")],
        ),
        None => (None, Vec::new()),
    }
}

pub fn container_evidence() -> (Option<String>, Vec<String>) {
    (None, Vec::new())
}

#[cfg(any(target_os = "illumos", target_os = "solaris"))]
extern "C" {
    fn getzoneid() -> libc::c_int;
}

/// The zone's id, if this is a non-global zone (getzoneid() != 0).
pub fn zone_name() -> Option<String> {
    #[cfg(any(target_os = "illumos", target_os = "solaris"))]
    {
        // SAFETY: getzoneid takes nothing and cannot fail.
        let id = unsafe { getzoneid() };
        if id != 0 {
            return Some(format!("zone id {id}"));
        }
    }
    None
}

/// Threads (LWPs) of this process: the entries of /proc/self/lwp.
pub fn thread_count() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/lwp").ok()?.count())
}

/// No O_TMPFILE on illumos: a unique name, unlinked at once.
pub fn open_tmpfile(dir: &std::path::Path) -> std::io::Result<(std::fs::File, &'static str)> {
    super::create_unlinked(dir)
}

/// No posix_fadvise on illumos: nothing to do.
pub fn drop_cache(_file: &std::fs::File, _off: u64, _len: u64) {}

/// No PSI on illumos.
pub fn pressure_us(_resource: &str) -> Option<(u64, Option<u64>)> {
    None
}
