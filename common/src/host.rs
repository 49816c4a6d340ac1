//! What the guest has and what it may use: CPUs, memory, process limits, and where we run.
//!
//! Percentages resolve against the tighter of the guest and its cgroup (or zone): inside a
//! container with a 2 GiB limit on a 64 GiB host, `80%` means 1.6 GiB. (stress-ng resolves
//! against the host's RAM; its users trip over that.)

use crate::sys;

pub use misbehave_report::host::{
    Cpus, Host, Limits, Memory, ProcessLimit, VirtKind, Virtualization,
};

/// Where this binary runs, and why it thinks so.
pub fn detect_virtualization() -> Virtualization {
    let (hypervisor, mut evidence) = sys::vm_evidence();
    let (container, cev) = sys::container_evidence();
    evidence.extend(cev);
    let zone = sys::zone_name();
    if let Some(z) = &zone {
        evidence.push(format!("running in a non-global zone ({z})"));
    }
    let kind = if zone.is_some() {
        VirtKind::Zone
    } else if container.is_some() {
        VirtKind::Container
    } else if hypervisor.is_some() {
        VirtKind::Vm
    } else {
        VirtKind::None
    };
    Virtualization {
        kind,
        hypervisor,
        container,
        zone,
        evidence,
    }
}

/// Gathers the facts about the machine this binary runs on, once at start.
pub fn probe() -> Host {
    let (os, kernel) = sys::kernel();
    let online = sys::online_cpus();
    let quota = sys::cgroup_cpu_quota();
    let mut usable = sys::affinity_cpus();
    if let Some(q) = quota {
        usable = usable.min((q.ceil() as usize).max(1));
    }
    let (total, avail) = sys::memory();
    let cg = sys::cgroup_memory_limit();
    let base = cg.map_or(avail, |l| l.min(avail));
    let (pid_max, threads_max) = sys::kernel_process_limits();
    let (pids_cg, pids_used) = sys::cgroup_pids_limit().map_or((None, None), |(m, u)| (Some(m), u));
    let nproc = sys::rlimit_nproc();
    let root = nix::unistd::geteuid().is_root();
    let processes_max = [
        pids_cg,
        pid_max,
        threads_max,
        if root { None } else { nproc },
    ]
    .into_iter()
    .flatten()
    .min();
    let mut limits = Limits {
        pids_cgroup_max: pids_cg,
        pids_cgroup_in_use: pids_used,
        pid_max,
        threads_max,
        threads_in_use: sys::threads_in_use(),
        rlimit_nproc: nproc,
        processes_max,
        processes_room: None,
        own_threads: sys::thread_count().map_or(1, |n| n as u64),
    };
    limits.processes_room = limits.tightest().map(|l| l.room());
    Host {
        os: os.to_string(),
        kernel,
        arch: std::env::consts::ARCH.to_string(),
        cpus: Cpus {
            online,
            usable,
            quota,
        },
        memory: Memory {
            total_bytes: total,
            available_bytes: avail,
            cgroup_limit_bytes: cg,
            base_bytes: base,
        },
        limits,
        virtualization: detect_virtualization(),
    }
}
