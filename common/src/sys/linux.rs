//! Linux: /proc, /sys, cgroups (v1 and v2), prctl.

use std::fs;
use std::path::{Path, PathBuf};

use super::{CgroupVersion, CpuTicks};

fn read_trim(p: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

fn read_u64(p: impl AsRef<Path>) -> Option<u64> {
    read_trim(p)?.parse().ok()
}

/// The cgroup directory of this process for `controller` ("memory", "pids", "cpu"), found
/// through /proc/self/mountinfo and /proc/self/cgroup, so it also works inside containers
/// (cgroup namespaces) and when the hierarchy is mounted somewhere unusual.
pub fn cgroup_dir(controller: &str) -> Option<(PathBuf, CgroupVersion)> {
    let cgroups = fs::read_to_string("/proc/self/cgroup").ok()?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut v2: Option<(PathBuf, CgroupVersion)> = None;
    for line in mountinfo.lines() {
        let (pre, post) = line.split_once(" - ")?;
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let (root, mnt, fstype, opts) = (pre[3], pre[4], post[0], post[2]);
        if fstype == "cgroup" && opts.split(',').any(|o| o == controller) {
            let own = cgroups.lines().find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
                ctrls.split(',').any(|c| c == controller).then_some(path)
            })?;
            return Some((join_cgroup(mnt, root, own), CgroupVersion::V1));
        }
        if fstype == "cgroup2" && v2.is_none() {
            let own = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
            let dir = join_cgroup(mnt, root, own);
            let enabled = read_trim(Path::new(mnt).join("cgroup.controllers"))
                .unwrap_or_default()
                .split(' ')
                .any(|c| c == controller);
            if enabled || dir.join(format!("{controller}.max")).exists() {
                v2 = Some((dir, CgroupVersion::V2));
            }
        }
    }
    v2
}

fn join_cgroup(mnt: &str, root: &str, own: &str) -> PathBuf {
    let rel = own.strip_prefix(root).unwrap_or(own);
    let dir = Path::new(mnt).join(rel.trim_start_matches('/'));
    // Without a cgroup namespace the path may name a directory this mount does not show.
    if dir.exists() {
        dir
    } else {
        PathBuf::from(mnt)
    }
}

/// Makes the cgroup `name` under this process's own cgroup for `controller` (on v2, with
/// the controller enabled for children first). Returns its directory and the version.
pub fn create_cgroup(controller: &str, name: &str) -> Result<(PathBuf, CgroupVersion), String> {
    let (own, ver) = cgroup_dir(controller).ok_or(format!("no {controller} cgroup hierarchy"))?;
    if ver == CgroupVersion::V2 {
        let _ = fs::write(own.join("cgroup.subtree_control"), format!("+{controller}"));
    }
    let dir = own.join(name);
    fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok((dir, ver))
}

/// The tightest of `file` from this process's cgroup up to the hierarchy's root, and the
/// directory that sets it.
fn cgroup_limit_at(controller: &str, v1_file: &str, v2_file: &str) -> Option<(u64, PathBuf)> {
    let (dir, ver) = cgroup_dir(controller)?;
    let file = if ver == CgroupVersion::V1 {
        v1_file
    } else {
        v2_file
    };
    let mut best: Option<(u64, PathBuf)> = None;
    let mut d = Some(dir.as_path());
    while let Some(p) = d {
        match read_trim(p.join(file)) {
            Some(v) => {
                if let Ok(n) = v.parse::<u64>() {
                    if best.as_ref().is_none_or(|b| n < b.0) {
                        best = Some((n, p.to_path_buf()));
                    }
                }
            }
            None if p != dir => break, // left the hierarchy
            None => {}
        }
        d = p.parent();
    }
    // cgroup v1 says "no limit" with a huge number.
    best.filter(|b| b.0 < (1 << 62))
}

/// The tightest of `file` from this process's cgroup up to the hierarchy's root.
fn cgroup_limit(controller: &str, v1_file: &str, v2_file: &str) -> Option<u64> {
    cgroup_limit_at(controller, v1_file, v2_file).map(|b| b.0)
}

/// The memory limit of this process's cgroup (the tightest on the way up), if any.
pub fn cgroup_memory_limit() -> Option<u64> {
    cgroup_limit("memory", "memory.limit_in_bytes", "memory.max")
}

/// The pids limit of this process's cgroup (the tightest on the way up), if any, and the
/// processes already counted against it there (`pids.current`, this one included).
pub fn cgroup_pids_limit() -> Option<(u64, Option<u64>)> {
    let (max, dir) = cgroup_limit_at("pids", "pids.max", "pids.max")?;
    Some((max, read_u64(dir.join("pids.current"))))
}

/// CPUs' worth of quota from the cgroup cpu controller (cfs quota / period), if limited.
pub fn cgroup_cpu_quota() -> Option<f64> {
    let (dir, ver) = cgroup_dir("cpu")?;
    let (q, p) = match ver {
        CgroupVersion::V1 => (
            read_trim(dir.join("cpu.cfs_quota_us"))?
                .parse::<i64>()
                .ok()?,
            read_u64(dir.join("cpu.cfs_period_us"))? as i64,
        ),
        CgroupVersion::V2 => {
            let s = read_trim(dir.join("cpu.max"))?;
            let mut it = s.split(' ');
            let q = it.next()?.parse::<i64>().ok()?; // "max" fails here: no quota
            (q, it.next()?.parse().ok()?)
        }
    };
    (q > 0 && p > 0).then(|| q as f64 / p as f64)
}

/// CPUs this process may run on (its affinity mask).
pub fn affinity_cpus() -> usize {
    use nix::sched::{sched_getaffinity, CpuSet};
    match sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&i| set.is_set(i).unwrap_or(false))
            .count()
            .max(1),
        Err(_) => super::online_cpus(),
    }
}

/// (total, available) memory of the machine or guest, from /proc/meminfo.
pub fn memory() -> (u64, u64) {
    let info = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    let total = field("MemTotal:").unwrap_or(0);
    let avail = field("MemAvailable:")
        .or_else(|| field("MemFree:"))
        .unwrap_or(total);
    (total, avail)
}

/// /proc/sys/kernel/pid_max and threads-max.
pub fn kernel_process_limits() -> (Option<u64>, Option<u64>) {
    (
        read_u64("/proc/sys/kernel/pid_max"),
        read_u64("/proc/sys/kernel/threads-max"),
    )
}

/// Threads that exist in the whole system, kernel threads and this process included: what
/// counts against threads-max (and, near enough, pid_max). The kernel's own count, from
/// /proc/loadavg's "running/total" field.
pub fn threads_in_use() -> Option<u64> {
    let s = read_trim("/proc/loadavg")?;
    s.split(' ').nth(3)?.split('/').nth(1)?.parse().ok()
}

/// RLIMIT_NPROC (soft), if limited. It does not bind root.
pub fn rlimit_nproc() -> Option<u64> {
    use nix::sys::resource::{getrlimit, Resource};
    let (soft, _) = getrlimit(Resource::RLIMIT_NPROC).ok()?;
    (soft != nix::sys::resource::RLIM_INFINITY).then_some(soft)
}

/// Aggregate CPU ticks since boot from /proc/stat (the `cpu` line), for steal time.
pub fn cpu_ticks() -> Option<CpuTicks> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guest is in user.
    Some(CpuTicks {
        total: v.iter().take(8).sum(),
        steal: *v.get(7)?,
    })
}

/// The kernel's count of OOM kills since boot (/proc/vmstat oom_kill), to tell an OOM kill
/// from any other SIGKILL.
pub fn oom_kills() -> Option<u64> {
    let s = fs::read_to_string("/proc/vmstat").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
}

/// Asks the kernel to kill this process when its parent dies. Returns false if the parent
/// is already gone.
pub fn die_with_parent(parent: nix::unistd::Pid) -> bool {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number; no pointers.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    nix::unistd::getppid() == parent
}

/// Makes this process the reaper of its orphaned descendants, so that a worker's own
/// children come back to the supervisor to be killed and reaped. Best effort.
pub fn become_subreaper() {
    // SAFETY: plain integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
}

/// How many live processes are in process group `pgid` (zombies are not counted: they are
/// dead and hold nothing but their entry), from /proc/*/stat. None if /proc cannot be read.
pub fn group_alive(pgid: i32) -> Option<u64> {
    let mut n = 0;
    for e in fs::read_dir("/proc").ok()?.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // A process that ends between the listing and the read is simply not counted.
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if stat_in_group(&stat, pgid) {
            n += 1;
        }
    }
    Some(n)
}

/// Whether a /proc/PID/stat line is of a live process of group `pgid`. The command name
/// may hold spaces and parentheses, so the fields are those after its last ')': state,
/// ppid, pgrp.
fn stat_in_group(stat: &str, pgid: i32) -> bool {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let mut f = rest.split_ascii_whitespace();
    let state = f.next().unwrap_or("?");
    let pgrp = f.nth(1).and_then(|g| g.parse::<i32>().ok());
    pgrp == Some(pgid) && !matches!(state, "Z" | "X")
}

/// Sets this process's OOM score adjustment (-1000..=1000). Lowering needs privilege, so it
/// is best effort and reports whether it took.
pub fn set_oom_score_adj(v: i32) -> bool {
    fs::write("/proc/self/oom_score_adj", v.to_string()).is_ok()
}

/// Kernel name and release: ("linux", "6.1.0-...").
pub fn kernel() -> (&'static str, String) {
    let rel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    ("linux", rel)
}

/// Evidence of running inside a VM: (hypervisor name, evidence lines).
pub fn vm_evidence() -> (Option<String>, Vec<String>) {
    let mut ev = Vec::new();
    let mut name = None;
    if let Some(id) = super::cpuid_hypervisor() {
        ev.push(format!("cpuid hypervisor bit set, vendor \"{id}\""));
        name = Some(hypervisor_name(&id));
    }
    if let Some(t) = read_trim("/sys/hypervisor/type") {
        ev.push(format!("/sys/hypervisor/type is \"{t}\""));
        name.get_or_insert(t);
    }
    for f in ["sys_vendor", "product_name", "bios_vendor"] {
        if let Some(v) = read_trim(format!("/sys/class/dmi/id/{f}")) {
            if let Some(n) = dmi_vm_name(&v) {
                ev.push(format!("DMI {f} is \"{v}\""));
                name.get_or_insert(n.to_string());
            }
        }
    }
    if Path::new("/proc/device-tree/hypervisor").exists() {
        ev.push("device tree has a hypervisor node".into());
        name.get_or_insert("hypervisor".into());
    }
    if let Ok(c) = fs::read("/proc/device-tree/compatible") {
        let c = String::from_utf8_lossy(&c).replace('\0', " ");
        if c.contains("linux,dummy-virt") || c.contains("qemu") {
            ev.push(format!("device tree compatible is \"{}\"", c.trim()));
            name.get_or_insert("qemu".into());
        }
    }
    (name, ev)
}

fn hypervisor_name(cpuid_vendor: &str) -> String {
    match cpuid_vendor {
        "KVMKVMKVM" => "kvm",
        "TCGTCGTCGTCG" => "qemu",
        "VMwareVMware" => "vmware",
        "XenVMMXenVMM" => "xen",
        "Microsoft Hv" => "hyper-v",
        "VBoxVBoxVBox" => "virtualbox",
        "bhyve bhyve" => "bhyve",
        "ACRNACRNACRN" => "acrn",
        _ => return cpuid_vendor.to_lowercase(),
    }
    .into()
}

fn dmi_vm_name(v: &str) -> Option<&'static str> {
    let l = v.to_lowercase();
    [
        ("qemu", "qemu"),
        ("kvm", "kvm"),
        ("vmware", "vmware"),
        ("virtualbox", "virtualbox"),
        ("innotek", "virtualbox"),
        ("xen", "xen"),
        ("amazon ec2", "amazon"),
        ("google compute engine", "google"),
        ("bochs", "bochs"),
        ("parallels", "parallels"),
        ("bhyve", "bhyve"),
        ("openstack", "openstack"),
        ("virtual machine", "hyper-v"),
    ]
    .iter()
    .find(|(k, _)| l.contains(k))
    .map(|(_, n)| *n)
}

/// Evidence of running inside a container: (technology, evidence lines).
pub fn container_evidence() -> (Option<String>, Vec<String>) {
    let mut ev = Vec::new();
    let mut name = None;
    if Path::new("/.dockerenv").exists() {
        ev.push("/.dockerenv exists".into());
        name = Some("docker".to_string());
    }
    if Path::new("/run/.containerenv").exists() {
        ev.push("/run/.containerenv exists".into());
        name.get_or_insert("podman".into());
    }
    if let Ok(env) = fs::read("/proc/1/environ") {
        for var in env.split(|&b| b == 0) {
            if let Some(v) = var.strip_prefix(b"container=") {
                let v = String::from_utf8_lossy(v).into_owned();
                ev.push(format!("PID 1 has container={v}"));
                name.get_or_insert(v);
            }
        }
    }
    if let Some(cg) = read_trim("/proc/1/cgroup") {
        for key in [
            "docker",
            "kubepods",
            "lxc",
            "containerd",
            "libpod",
            "garden",
        ] {
            if cg.contains(key) {
                ev.push(format!("PID 1's cgroup names {key}"));
                name.get_or_insert(key.into());
                break;
            }
        }
    }
    if let Some(comm) = read_trim("/proc/1/comm") {
        const INITS: [&str; 7] = [
            "init",
            "systemd",
            "openrc-init",
            "runit",
            "s6-svscan",
            "launchd",
            "busybox",
        ];
        if std::process::id() == 1 {
            // We are PID 1 ourselves: a container entry point.
            ev.push("this process is PID 1".into());
            name.get_or_insert("unknown".into());
        } else if !INITS.contains(&comm.as_str()) {
            ev.push(format!("PID 1 is \"{comm}\", not an init system"));
            name.get_or_insert("unknown".into());
        }
    }
    (name, ev)
}

/// Kills every process in the cgroup `dir` at once, so none can fork while the others are
/// being killed: `cgroup.kill` where the kernel has it (v2, Linux 5.14+); else, in a v1
/// `freezer` cgroup, freeze, SIGKILL each process, thaw (the kills land as they thaw).
/// Returns the method used, or None where `dir` offers neither.
pub fn cgroup_kill_all(dir: &Path) -> Option<&'static str> {
    if fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return Some("cgroup.kill");
    }
    let state = dir.join("freezer.state");
    fs::write(&state, "FROZEN").ok()?;
    for _ in 0..100 {
        if read_trim(&state).as_deref() == Some("FROZEN") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    for pid in read_trim(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
    {
        if let Ok(p) = pid.parse::<i32>() {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::SIGKILL);
        }
    }
    let _ = fs::write(&state, "THAWED");
    Some("freezer")
}

/// Linux has no zones.
pub fn zone_name() -> Option<String> {
    None
}

/// Threads of this process (the `Threads:` line of /proc/self/status), read into a stack
/// buffer: no allocation, so it also works while workers exhaust memory.
pub fn thread_count() -> Option<usize> {
    use std::io::Read;
    let mut buf = [0u8; 4096];
    let mut f = fs::File::open("/proc/self/status").ok()?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Opens a file for reading and writing in `dir` that has no name, so nothing is left behind
/// whatever kills the process: O_TMPFILE where the filesystem supports it, else a unique
/// name created and unlinked at once. Returns the file and how it was made.
pub fn open_tmpfile(dir: &Path) -> std::io::Result<(fs::File, &'static str)> {
    use std::os::unix::fs::OpenOptionsExt;
    match fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(dir)
    {
        Ok(f) => return Ok((f, "O_TMPFILE (no name: nothing can be left behind)")),
        Err(e)
            if !matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
            ) =>
        {
            return Err(e)
        }
        Err(_) => {}
    }
    super::create_unlinked(dir)
}

/// Drops `[off, off+len)` of `file` from the page cache (clean pages only), so the next
/// read of it goes to the disk.
pub fn drop_cache(file: &fs::File, off: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: integer arguments on a descriptor we own.
    unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            off as i64,
            len as i64,
            libc::POSIX_FADV_DONTNEED,
        )
    };
}

/// Microseconds that some (and, where the kernel counts it, all) non-idle tasks were stalled
/// on `resource` (`cpu`, `memory` or `io`) since boot: /proc/pressure/<resource> (Linux
/// 4.20+ with PSI on). `full` is None where the file has no `full` line (cpu before 5.13).
pub fn pressure_us(resource: &str) -> Option<(u64, Option<u64>)> {
    let text = fs::read_to_string(format!("/proc/pressure/{resource}")).ok()?;
    let total = |kind: &str| {
        text.lines()
            .find(|l| l.starts_with(kind))?
            .split_whitespace()
            .find_map(|w| w.strip_prefix("total="))?
            .parse::<u64>()
            .ok()
    };
    Some((total("some")?, total("full")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_after_the_last_parenthesis() {
        let line = "42 (a) b (c)) S 1 77 77 0 -1 4194560 0 0";
        assert!(stat_in_group(line, 77));
        assert!(!stat_in_group(line, 1));
        assert!(!stat_in_group("42 (z) Z 1 77 77 0", 77));
        assert!(!stat_in_group("garbage", 77));
    }

    #[test]
    fn this_process_is_alive_in_its_own_group() {
        let me = nix::unistd::getpgrp().as_raw();
        assert!(group_alive(me).unwrap() >= 1);
    }
}
