//! Linux: /proc, /sys, cgroups (v1 and v2), prctl.

use std::fs;
use std::path::{Path, PathBuf};

use super::{CgroupVersion, CpuTicks};
use nix::errno::Errno;

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

/// Asks for transparent huge pages on `mem` (madvise MADV_HUGEPAGE), before it is touched.
/// `mem` must start on a page boundary (a fresh mapping does). Err says why not, in words.
pub fn advise_hugepages(mem: &mut [u8]) -> Result<(), String> {
    if mem.is_empty() {
        return Ok(());
    }
    // SAFETY: advice only; the range is memory this slice owns.
    let r = unsafe { libc::madvise(mem.as_mut_ptr().cast(), mem.len(), libc::MADV_HUGEPAGE) };
    if r == 0 {
        Ok(())
    } else {
        Err(format!(
            "madvise(MADV_HUGEPAGE): {}",
            std::io::Error::last_os_error()
        ))
    }
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

/// Bypasses the page cache for `file` (O_DIRECT, set with fcntl). Err says why not in words
/// (tmpfs and some others refuse it).
pub fn set_direct(file: &fs::File) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, integer arguments.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if fl < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_DIRECT) } < 0 {
        return Err(format!(
            "O_DIRECT refused ({})",
            crate::error::errno_text(nix::errno::Errno::last())
        ));
    }
    Ok(())
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

/// The block device that holds `path`, as /proc/diskstats names it ("vda1", "dm-0"); None
/// for filesystems without one (tmpfs, overlay's upper layer may still have one).
pub fn block_device(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dev = fs::metadata(path).ok()?.dev();
    let (maj, min) = (libc::major(dev), libc::minor(dev));
    if maj == 0 {
        return None;
    }
    let uevent = read_trim(format!("/sys/dev/block/{maj}:{min}/uevent"))?;
    uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .map(str::to_string)
}

/// The kernel's counters of one block device (/proc/diskstats).
pub fn disk_stats(name: &str) -> Option<super::DiskStats> {
    let text = fs::read_to_string("/proc/diskstats").ok()?;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 14 && f[2] == name {
            let n = |i: usize| f[i].parse::<u64>().unwrap_or(0);
            return Some(super::DiskStats {
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

/// Microseconds that some and all non-idle tasks were stalled on I/O since boot
/// (/proc/pressure/io, Linux 4.20+ with PSI on).
pub fn io_pressure_us() -> Option<(u64, u64)> {
    pressure_us("io").map(|(some, full)| (some, full.unwrap_or(0)))
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

/// Nanoseconds this thread has spent runnable but waiting for a CPU (on a run queue) since
/// it started: the second field of /proc/thread-self/schedstat (kernels with schedstats).
pub fn run_queue_wait_ns() -> Option<u64> {
    let s = fs::read_to_string("/proc/thread-self/schedstat")
        .or_else(|_| fs::read_to_string("/proc/self/schedstat"))
        .ok()?;
    s.split_whitespace().nth(1)?.parse().ok()
}

// ------------------------------------------------------------ UDP batches --

/// Linux ABI numbers (stable) that the libc crate lacks on some targets.
const UDP_SEGMENT: libc::c_int = 103;
const UDP_GRO: libc::c_int = 104;
const SO_RXQ_OVFL: libc::c_int = 40;

fn setsockopt_int(
    fd: i32,
    level: libc::c_int,
    opt: libc::c_int,
    v: libc::c_int,
) -> Result<(), String> {
    // SAFETY: a c_int option value and its size; the kernel copies it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(crate::error::errno_text(nix::errno::Errno::last()))
    }
}

/// Sends datagrams on a connected UDP socket: `msgs` messages, message j holding `per_msg`
/// datagrams of `seg` bytes back to back at `buf[j * per_msg * seg..]`. With `per_msg` > 1
/// each message carries UDP_SEGMENT (GSO: the kernel cuts it into datagrams), and all go in
/// one sendmmsg. Returns the datagrams the kernel took.
pub fn udp_send(
    fd: i32,
    buf: &[u8],
    seg: usize,
    per_msg: usize,
    msgs: usize,
) -> Result<usize, nix::errno::Errno> {
    const MAX: usize = 64;
    const CTL: usize = 32;
    let msgs = msgs.min(MAX);
    assert!(buf.len() >= seg * per_msg * msgs);
    // SAFETY: zeroed iovec, mmsghdr and control bytes are valid initial values.
    let mut iov: [libc::iovec; MAX] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut hdr: [libc::mmsghdr; MAX] = unsafe { std::mem::zeroed() };
    let mut ctl = [[0u8; CTL]; MAX];
    for j in 0..msgs {
        let len = seg * per_msg;
        iov[j].iov_base = buf[j * len..].as_ptr() as *mut libc::c_void;
        iov[j].iov_len = len;
        hdr[j].msg_hdr.msg_iov = &mut iov[j];
        hdr[j].msg_hdr.msg_iovlen = 1;
        if per_msg > 1 {
            let c = ctl[j].as_mut_ptr();
            hdr[j].msg_hdr.msg_control = c.cast();
            // SAFETY: CMSG_SPACE of a u16 fits in CTL bytes; the header and data are written
            // inside `ctl[j]`, which lives until sendmmsg returns.
            unsafe {
                hdr[j].msg_hdr.msg_controllen = libc::CMSG_SPACE(2) as _;
                let cm = libc::CMSG_FIRSTHDR(&hdr[j].msg_hdr);
                (*cm).cmsg_level = libc::SOL_UDP;
                (*cm).cmsg_type = UDP_SEGMENT;
                (*cm).cmsg_len = libc::CMSG_LEN(2) as _;
                (libc::CMSG_DATA(cm) as *mut u16).write_unaligned(seg as u16);
            }
        }
    }
    // The system call itself, not libc's: musl's sendmmsg on 64-bit targets is a loop of
    // sendmsg calls (to fix up struct padding that is zero here, as every header above was
    // zeroed), which would throw the batching away.
    // SAFETY: `hdr[..msgs]` point at iovecs and control buffers that outlive the call; the
    // zeroed padding makes musl's msghdr the kernel's on little-endian 64-bit targets.
    let n = unsafe {
        libc::syscall(
            libc::SYS_sendmmsg,
            fd,
            hdr.as_mut_ptr(),
            msgs as libc::c_uint,
            0,
        )
    };
    if n < 0 {
        return Err(nix::errno::Errno::last());
    }
    Ok(n as usize * per_msg)
}

/// Turns on GSO for datagrams of `seg` bytes on a UDP socket (UDP_SEGMENT, Linux 4.18+).
pub fn udp_gso(fd: i32, seg: usize) -> Result<(), String> {
    setsockopt_int(fd, libc::SOL_UDP, UDP_SEGMENT, seg as libc::c_int)
}

/// Receive batches: recvmmsg into preallocated buffers, with UDP_GRO (coalesced datagrams
/// of one flow arrive as one buffer with their segment size) and SO_RXQ_OVFL (the socket's
/// own drop count) where the kernel has them.
pub struct UdpRx {
    cap: usize,
    bufs: Vec<u8>,
    iov: Vec<libc::iovec>,
    hdr: Vec<libc::mmsghdr>,
    addrs: Vec<libc::sockaddr_storage>,
    ctl: Vec<[u8; 64]>,
    got: usize,
}

/// One received buffer.
pub struct Received<'a> {
    /// The bytes: one datagram, or several of `seg` bytes (the last may be shorter).
    pub data: &'a [u8],
    pub seg: usize,
    /// The socket's drop count (SO_RXQ_OVFL), if the kernel said.
    pub drops: Option<u32>,
    pub from: &'a libc::sockaddr_storage,
    pub from_len: libc::socklen_t,
}

impl UdpRx {
    /// `n` buffers of `cap` bytes (64 KiB holds any datagram, and a GRO batch).
    pub fn new(n: usize, cap: usize) -> Self {
        Self {
            cap,
            bufs: vec![0; n * cap],
            // SAFETY: zeroed iovec, mmsghdr and sockaddr_storage are valid initial values.
            iov: (0..n).map(|_| unsafe { std::mem::zeroed() }).collect(),
            // SAFETY: as above.
            hdr: (0..n).map(|_| unsafe { std::mem::zeroed() }).collect(),
            // SAFETY: as above.
            addrs: (0..n).map(|_| unsafe { std::mem::zeroed() }).collect(),
            ctl: vec![[0u8; 64]; n],
            got: 0,
        }
    }

    /// Asks for GRO and drop counts on `fd`; says which were refused.
    pub fn enable(fd: i32) -> (Result<(), String>, Result<(), String>) {
        (
            setsockopt_int(fd, libc::SOL_UDP, UDP_GRO, 1),
            setsockopt_int(fd, libc::SOL_SOCKET, SO_RXQ_OVFL, 1),
        )
    }

    /// Receives up to `n` buffers; with `wait`, waits for the first (the socket's own
    /// timeout applies), else returns EAGAIN at once when nothing is there.
    pub fn recv(&mut self, fd: i32, wait: bool) -> Result<usize, nix::errno::Errno> {
        let n = self.hdr.len();
        for j in 0..n {
            self.iov[j].iov_base = self.bufs[j * self.cap..].as_mut_ptr().cast();
            self.iov[j].iov_len = self.cap;
            let h = &mut self.hdr[j].msg_hdr;
            h.msg_iov = &mut self.iov[j];
            h.msg_iovlen = 1;
            h.msg_name = (&mut self.addrs[j] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
            h.msg_control = self.ctl[j].as_mut_ptr().cast();
            h.msg_controllen = 64;
            h.msg_flags = 0;
        }
        // SAFETY: every header points at buffers owned by self, alive across the call.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                self.hdr.as_mut_ptr(),
                n as _,
                if wait {
                    libc::MSG_WAITFORONE as _
                } else {
                    libc::MSG_DONTWAIT as _
                },
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            self.got = 0;
            return Err(nix::errno::Errno::last());
        }
        self.got = r as usize;
        Ok(self.got)
    }

    /// Buffer `j` of the last `recv`.
    pub fn get(&self, j: usize) -> Received<'_> {
        assert!(j < self.got);
        let h = &self.hdr[j];
        let len = h.msg_len as usize;
        let mut seg = len;
        let mut drops = None;
        // SAFETY: walking the control messages the kernel wrote into our buffer, within
        // msg_controllen.
        unsafe {
            let mut cm = libc::CMSG_FIRSTHDR(&h.msg_hdr);
            while !cm.is_null() {
                let data = libc::CMSG_DATA(cm);
                if (*cm).cmsg_level == libc::SOL_UDP && (*cm).cmsg_type == UDP_GRO {
                    seg = (data as *const u16).read_unaligned() as usize;
                } else if (*cm).cmsg_level == libc::SOL_SOCKET && (*cm).cmsg_type == SO_RXQ_OVFL {
                    drops = Some((data as *const u32).read_unaligned());
                }
                cm = libc::CMSG_NXTHDR(&h.msg_hdr, cm);
            }
        }
        Received {
            data: &self.bufs[j * self.cap..j * self.cap + len],
            seg: seg.max(1),
            drops,
            from: &self.addrs[j],
            from_len: h.msg_hdr.msg_namelen,
        }
    }

    /// Sends buffer `j` of the last `recv` back to where it came from (an echo), as the same
    /// datagrams (GSO with the segment size it arrived with).
    pub fn reply(&self, fd: i32, j: usize) -> Result<(), nix::errno::Errno> {
        let r = self.get(j);
        let mut iov = libc::iovec {
            iov_base: r.data.as_ptr() as *mut libc::c_void,
            iov_len: r.data.len(),
        };
        let mut ctl = [0u8; 32];
        // SAFETY: a zeroed msghdr is a valid initial value.
        let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
        h.msg_name = (r.from as *const libc::sockaddr_storage) as *mut libc::c_void;
        h.msg_namelen = r.from_len;
        h.msg_iov = &mut iov;
        h.msg_iovlen = 1;
        if r.seg < r.data.len() {
            h.msg_control = ctl.as_mut_ptr().cast();
            // SAFETY: the control message fits in `ctl`, alive across sendmsg.
            unsafe {
                h.msg_controllen = libc::CMSG_SPACE(2) as _;
                let cm = libc::CMSG_FIRSTHDR(&h);
                (*cm).cmsg_level = libc::SOL_UDP;
                (*cm).cmsg_type = UDP_SEGMENT;
                (*cm).cmsg_len = libc::CMSG_LEN(2) as _;
                (libc::CMSG_DATA(cm) as *mut u16).write_unaligned(r.seg as u16);
            }
        }
        // SAFETY: the header points at live buffers.
        if unsafe { libc::sendmsg(fd, &h, 0) } < 0 {
            return Err(nix::errno::Errno::last());
        }
        Ok(())
    }
}

/// Several sockets may bind one port and share its traffic (SO_REUSEPORT, Linux 3.9+).
pub fn reuse_port(fd: i32) -> Result<(), String> {
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)
}

/// sendmmsg/recvmmsg batches exist here.
pub const UDP_BATCHES: bool = true;

// ------------------------------------------------------- AF_PACKET TX ring --

/// Linux ABI numbers (stable: linux/if_packet.h, linux/rtnetlink.h, linux/neighbour.h).
const SOL_PACKET: libc::c_int = 263;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_TX_RING: libc::c_int = 13;
const PACKET_QDISC_BYPASS: libc::c_int = 20;
const PACKET_VNET_HDR: libc::c_int = 15;
/// struct virtio_net_hdr in front of each frame with PACKET_VNET_HDR.
const VNET: usize = 10;
const TPACKET_V2: libc::c_int = 1;
const TP_STATUS_AVAILABLE: u32 = 0;
const TP_STATUS_SEND_REQUEST: u32 = 1;
const TP_STATUS_WRONG_FORMAT: u32 = 4;
/// Where a TPACKET_V2 frame's data starts: TPACKET2_HDRLEN less a sockaddr_ll.
const TP2_DATA: usize = 32;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
/// REACHABLE, STALE, DELAY, PROBE, NOARP, PERMANENT: a usable link-layer address.
const NUD_VALID: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80;
const RTN_LOCAL: u8 = 2;

fn ip_bytes(ip: std::net::IpAddr) -> Vec<u8> {
    match ip {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn ip_from(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => Some(<[u8; 4]>::try_from(b).ok()?.into()),
        16 => Some(<[u8; 16]>::try_from(b).ok()?.into()),
        _ => None,
    }
}

/// One rtnetlink request (`body` after the netlink header); the payloads of the messages
/// of type `want` that come back (a dump: until NLMSG_DONE).
fn netlink(ty: u16, dump: bool, body: &[u8], want: u16) -> Result<Vec<Vec<u8>>, String> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: socket takes integers; the fd is owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(format!("netlink: {}", Errno::last()));
    }
    // SAFETY: a fresh fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let tv = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    // SAFETY: a timeval option and its size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as _,
        )
    };
    let flags = libc::NLM_F_REQUEST as u16 | if dump { libc::NLM_F_DUMP as u16 } else { 0 };
    let mut msg = Vec::with_capacity(16 + body.len());
    msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&ty.to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(body);
    // SAFETY: a zeroed sockaddr_nl (the kernel as peer) with its family set.
    let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    to.nl_family = libc::AF_NETLINK as _;
    // SAFETY: the message and address outlive the call.
    let r = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&to as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as _,
        )
    };
    if r < 0 {
        return Err(format!("netlink: {}", Errno::last()));
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        // SAFETY: reading into our buffer, within its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(format!("netlink: {}", Errno::last()));
        }
        let mut b = &buf[..n as usize];
        while b.len() >= 16 {
            let len = (u32::from_ne_bytes(b[0..4].try_into().expect("4")) as usize).min(b.len());
            let t = u16::from_ne_bytes(b[4..6].try_into().expect("2"));
            if len < 16 {
                return Err("netlink: a short message".into());
            }
            let payload = &b[16..len];
            match t {
                3 => return Ok(out), // NLMSG_DONE
                2 => {
                    // NLMSG_ERROR: a negative errno (0 is an acknowledgement).
                    let e = i32::from_ne_bytes(payload[0..4].try_into().expect("4"));
                    if e != 0 {
                        return Err(crate::error::errno_text(Errno::from_raw(-e)));
                    }
                    return Ok(out);
                }
                t if t == want => out.push(payload.to_vec()),
                _ => {}
            }
            b = &b[(len + 3) & !3..];
            if !dump && !out.is_empty() {
                return Ok(out);
            }
        }
        if n == 0 {
            return Ok(out);
        }
    }
}

/// The attributes (type, data) after a fixed header of `skip` bytes.
fn rtattrs(p: &[u8], skip: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut b = p.get(skip..).unwrap_or(&[]);
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((ty, &b[4..len]));
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    out
}

/// The next hop's link-layer address on `ifindex`, if the neighbour table has a usable one.
fn neighbour(ifindex: u32, hop: std::net::IpAddr) -> Result<Option<[u8; 6]>, String> {
    let family = if hop.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let mut nd = [0u8; 12];
    nd[0] = family as u8;
    let want = ip_bytes(hop);
    for m in netlink(libc::RTM_GETNEIGH, true, &nd, libc::RTM_NEWNEIGH)? {
        if m.len() < 12 || i32::from_ne_bytes(m[4..8].try_into().expect("4")) != ifindex as i32 {
            continue;
        }
        let state = u16::from_ne_bytes([m[8], m[9]]);
        let a = rtattrs(&m, 12);
        let dst = a.iter().find(|(t, _)| *t == NDA_DST).map(|x| x.1);
        let ll = a.iter().find(|(t, _)| *t == NDA_LLADDR).map(|x| x.1);
        if dst == Some(&want[..]) && state & NUD_VALID != 0 {
            if let Some(Ok(mac)) = ll.map(<[u8; 6]>::try_from) {
                return Ok(Some(mac));
            }
        }
    }
    Ok(None)
}

/// An interface's hardware type and address, MTU and flags (SIOCGIF*).
fn interface(name: &str) -> Result<(u16, [u8; 6], usize, i32), String> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0")
        .or_else(|_| std::net::UdpSocket::bind("[::]:0"))
        .map_err(|e| e.to_string())?;
    use std::os::fd::AsRawFd;
    // SAFETY: a zeroed ifreq is valid; the name fits (IFNAMSIZ, checked below).
    let mut rq: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= rq.ifr_name.len() {
        return Err(format!("interface name {name} too long"));
    }
    for (d, s) in rq.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    let get = |req: libc::c_ulong| -> Result<libc::ifreq, String> {
        let mut r = rq;
        // SAFETY: the request fills the ifreq we pass.
        if unsafe { libc::ioctl(s.as_raw_fd(), req as _, &mut r) } < 0 {
            return Err(format!("{name}: {}", Errno::last()));
        }
        Ok(r)
    };
    let hw = get(libc::SIOCGIFHWADDR)?;
    let mtu = get(libc::SIOCGIFMTU)?;
    let fl = get(libc::SIOCGIFFLAGS)?;
    // SAFETY: the union members the three requests wrote.
    unsafe {
        let sa = hw.ifr_ifru.ifru_hwaddr;
        let mut mac = [0u8; 6];
        for (m, b) in mac.iter_mut().zip(sa.sa_data.iter()) {
            *m = *b as u8;
        }
        Ok((
            sa.sa_family,
            mac,
            mtu.ifr_ifru.ifru_mtu as usize,
            i32::from(fl.ifr_ifru.ifru_flags),
        ))
    }
}

/// Where frames to `dst` leave: the route's interface and gateway (RTM_GETROUTE), the
/// interface's MAC and MTU, the next hop's MAC from the neighbour table (RTM_GETNEIGH). An
/// unresolved neighbour is resolved by one empty datagram to `dst` (which a netflood sink
/// counts as nothing), then waited for up to 1.5 s. Loopback takes frames with zero MACs.
pub fn link_path(dst: std::net::SocketAddr) -> Result<super::LinkPath, String> {
    let ip = dst.ip();
    // The kernel's own source address for this target, and a socket to ask for resolution.
    let udp = std::net::UdpSocket::bind(if ip.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })
        .and_then(|u| u.connect(dst).map(|()| u))
        .map_err(|e| format!("no route to {ip}: {e}"))?;
    let src_ip = udp.local_addr().map_err(|e| e.to_string())?.ip();
    let bytes = ip_bytes(ip);
    let mut rt = vec![0u8; 12];
    rt[0] = if ip.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    } as u8;
    rt[1] = (bytes.len() * 8) as u8;
    rt.extend_from_slice(&((4 + bytes.len()) as u16).to_ne_bytes());
    rt.extend_from_slice(&RTA_DST.to_ne_bytes());
    rt.extend_from_slice(&bytes);
    let routes = netlink(libc::RTM_GETROUTE, false, &rt, libc::RTM_NEWROUTE)
        .map_err(|e| format!("no route to {ip}: {e}"))?;
    let r = routes.first().ok_or(format!("no route to {ip}"))?;
    let a = rtattrs(r, 12);
    let oif = a
        .iter()
        .find(|(t, _)| *t == RTA_OIF)
        .and_then(|(_, d)| Some(u32::from_ne_bytes((*d).try_into().ok()?)))
        .ok_or(format!("the route to {ip} names no interface"))?;
    let next_hop = a
        .iter()
        .find(|(t, _)| *t == RTA_GATEWAY)
        .and_then(|(_, d)| ip_from(d))
        .unwrap_or(ip);
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: the buffer is IF_NAMESIZE bytes, as if_indextoname needs.
    if unsafe { libc::if_indextoname(oif, name.as_mut_ptr()) }.is_null() {
        return Err(format!("interface {oif}: {}", Errno::last()));
    }
    // SAFETY: if_indextoname wrote a NUL-terminated name.
    let ifname = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    let (hwtype, src_mac, mtu, flags) = interface(&ifname)?;
    let local = r.get(11) == Some(&RTN_LOCAL);
    if let std::net::IpAddr::V4(v4) = ip {
        // An IPv4 frame to 127/8 that comes in on a device is a martian (dropped) unless
        // route_localnet is on.
        if v4.is_loopback()
            && read_trim(format!("/proc/sys/net/ipv4/conf/{ifname}/route_localnet")).as_deref()
                != Some("1")
        {
            return Err(format!(
                "{ip} is on {ifname}, where the kernel drops frames to 127.0.0.0/8 that it did not route itself (net.ipv4.conf.{ifname}.route_localnet=0): aim at ::1 or an address of an interface"
            ));
        }
    }
    let dst_mac = if hwtype == libc::ARPHRD_LOOPBACK || flags & libc::IFF_LOOPBACK != 0 {
        // Loopback's frames carry an Ethernet header with zero addresses.
        [0; 6]
    } else if hwtype != libc::ARPHRD_ETHER {
        return Err(format!(
            "{ifname} (the way to {ip}) is not Ethernet (ARPHRD type {hwtype}): the packet engine sends Ethernet frames"
        ));
    } else if local {
        src_mac
    } else if flags & libc::IFF_NOARP != 0 {
        return Err(format!(
            "{ifname} (the way to {ip}) has no neighbour table (NOARP): no next-hop MAC"
        ));
    } else {
        let mut mac = neighbour(oif, next_hop)?;
        if mac.is_none() {
            // Resolution happens when something is sent that way: one empty datagram.
            let _ = udp.send(&[]);
            for _ in 0..30 {
                std::thread::sleep(std::time::Duration::from_millis(50));
                mac = neighbour(oif, next_hop)?;
                if mac.is_some() {
                    break;
                }
            }
        }
        mac.ok_or(format!(
            "the next hop {next_hop} on {ifname} does not resolve to a MAC (neighbour table): is it up?"
        ))?
    };
    Ok(super::LinkPath {
        ifindex: oif,
        ifname,
        src_mac,
        dst_mac,
        mtu,
        next_hop,
        src_ip,
    })
}

/// An AF_PACKET socket with a TPACKET_V2 TX ring mapped into this process (what trafgen
/// does): frames are written in place, marked, and one `sendto` hands every marked frame to
/// the device (past the qdisc where PACKET_QDISC_BYPASS takes).
pub struct PacketTx {
    fd: std::os::fd::OwnedFd,
    ring: *mut u8,
    ring_len: usize,
    frame_size: usize,
    block: usize,
    per_block: usize,
    frames: usize,
    next: usize,
    /// Bytes before the frame in each slot (a virtio_net_hdr, or none).
    pre: usize,
    /// Whether the queueing discipline is bypassed.
    pub qdisc_bypass: bool,
}

// SAFETY: the ring is owned by this value alone (one worker thread).
unsafe impl Send for PacketTx {}

impl PacketTx {
    /// A ring for frames of up to `frame_len` bytes on interface `ifindex`. Needs
    /// CAP_NET_RAW.
    pub fn new(ifindex: u32, frame_len: usize) -> Result<Self, String> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        // Protocol 0: this socket receives nothing.
        // SAFETY: socket takes integers; the fd is owned at once.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            let e = Errno::last();
            return Err(if e == Errno::EPERM || e == Errno::EACCES {
                "--engine packet needs CAP_NET_RAW (run as root, or setcap cap_net_raw+ep on the binary)".into()
            } else {
                format!("AF_PACKET socket: {}", crate::error::errno_text(e))
            });
        }
        // SAFETY: a fresh fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let raw = fd.as_raw_fd();
        setsockopt_int(raw, SOL_PACKET, PACKET_VERSION, TPACKET_V2)
            .map_err(|e| format!("TPACKET_V2: {e}"))?;
        let qdisc_bypass = setsockopt_int(raw, SOL_PACKET, PACKET_QDISC_BYPASS, 1).is_ok();
        // A virtio_net_hdr whose hdr_len is the whole frame makes the kernel copy each frame
        // into one linear buffer: without it the frame past the Ethernet header is attached
        // as page fragments of the ring, which a veth crossing into another namespace copies
        // into freshly allocated pages (skb_copy_ubufs), and which the receive path pulls.
        let pre = if setsockopt_int(raw, SOL_PACKET, PACKET_VNET_HDR, 1).is_ok() {
            VNET
        } else {
            0
        };
        let frame_len = frame_len + pre;
        let _ = setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_SNDBUF, 8 << 20);
        let frame_size = (TP2_DATA + frame_len + 15) & !15;
        let page = super::page_size();
        // Blocks of one page where a frame fits (order-0 pages: the ring is made in
        // microseconds, where 64 KiB blocks took 10 ms and more on a fragmented machine, time
        // a rate-capped run lost), 512 KiB in all, 64 frames at least.
        let block = frame_size.div_ceil(page) * page;
        let per_block = block / frame_size;
        let blocks = ((512 << 10) / block).max(64usize.div_ceil(per_block));
        // struct tpacket_req: block size, block count, frame size, frame count.
        let req: [u32; 4] = [
            block as u32,
            blocks as u32,
            frame_size as u32,
            (blocks * per_block) as u32,
        ];
        // SAFETY: a tpacket_req and its size.
        if unsafe {
            libc::setsockopt(
                raw,
                SOL_PACKET,
                PACKET_TX_RING,
                req.as_ptr().cast(),
                std::mem::size_of_val(&req) as _,
            )
        } < 0
        {
            return Err(format!("PACKET_TX_RING: {}", Errno::last()));
        }
        let ring_len = block * blocks;
        // SAFETY: mapping the ring the kernel just made for this socket.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                raw,
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(format!("mapping the TX ring: {}", Errno::last()));
        }
        let tx = PacketTx {
            fd,
            ring: ring.cast(),
            ring_len,
            frame_size,
            block,
            per_block,
            frames: blocks * per_block,
            next: 0,
            pre,
            qdisc_bypass,
        };
        // SAFETY: a zeroed sockaddr_ll with family and interface set.
        let mut ll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        ll.sll_family = libc::AF_PACKET as _;
        ll.sll_ifindex = ifindex as i32;
        // SAFETY: the address outlives the call.
        if unsafe {
            libc::bind(
                raw,
                (&ll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as _,
            )
        } < 0
        {
            return Err(format!("binding to interface {ifindex}: {}", Errno::last()));
        }
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        // SAFETY: a timeval option and its size (a flush that waits sees the deadline).
        unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_SNDTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as _,
            )
        };
        Ok(tx)
    }

    /// Frames in the ring.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Where frame `i` starts in the mapping (frames do not cross blocks).
    fn at(&self, i: usize) -> usize {
        i / self.per_block * self.block + i % self.per_block * self.frame_size
    }

    /// Frame `i`'s status word, shared with the kernel.
    fn status(&self, i: usize) -> &std::sync::atomic::AtomicU32 {
        // SAFETY: frame i starts inside the mapping, 16-byte aligned; its first word is the
        // status the kernel reads and writes.
        unsafe { &*(self.ring.add(self.at(i)) as *const std::sync::atomic::AtomicU32) }
    }

    /// The data area of frame `i` (to prefill every frame with a template).
    pub fn slot(&mut self, i: usize) -> &mut [u8] {
        assert!(i < self.frames);
        // SAFETY: inside the mapping; only this value writes frame data.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.ring.add(self.at(i) + TP2_DATA + self.pre),
                self.frame_size - TP2_DATA - self.pre,
            )
        }
    }

    /// The next frame's data area if the kernel is done with it (what was written there last
    /// is still there), else None.
    pub fn next_free(&mut self) -> Option<&mut [u8]> {
        let s = self
            .status(self.next)
            .load(std::sync::atomic::Ordering::Acquire);
        if s != TP_STATUS_AVAILABLE && s & TP_STATUS_WRONG_FORMAT == 0 {
            return None;
        }
        Some(self.slot(self.next))
    }

    /// Marks the frame `next_free` gave as `len` bytes to send, and moves on.
    pub fn queue(&mut self, len: usize) {
        let at = self.at(self.next);
        // SAFETY: tp_len is the second word of the frame header; the virtio_net_hdr (flags
        // and GSO type 0, then hdr_len, little-endian) starts the frame's data.
        unsafe {
            (self.ring.add(at + 4) as *mut u32).write_volatile((len + self.pre) as u32);
            if self.pre > 0 {
                let v = self.ring.add(at + TP2_DATA);
                std::ptr::write_bytes(v, 0, VNET);
                v.add(2).cast::<[u8; 2]>().write((len as u16).to_le_bytes());
            }
        }
        self.status(self.next)
            .store(TP_STATUS_SEND_REQUEST, std::sync::atomic::Ordering::Release);
        self.next = (self.next + 1) % self.frames;
    }

    /// Hands the marked frames to the kernel; with `wait`, blocks (up to 100 ms) until
    /// frames in flight are done.
    pub fn flush(&mut self, wait: bool) -> Result<(), Errno> {
        use std::os::fd::AsRawFd;
        // SAFETY: sendto with no data and no address: the ring is the data.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                if wait { 0 } else { libc::MSG_DONTWAIT },
                std::ptr::null(),
                0,
            )
        };
        if r < 0 {
            return Err(Errno::last());
        }
        Ok(())
    }
}

impl Drop for PacketTx {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in `new`, used by nothing after this.
        unsafe { libc::munmap(self.ring.cast(), self.ring_len) };
    }
}
