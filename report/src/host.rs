//! The host facts as the report gives them: CPUs, memory, process limits, and where the
//! binary ran. `common` gathers them (`common::host::probe`); these are the values.

use serde::{Deserialize, Serialize};

/// Facts about the machine this binary runs on, gathered once at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("additionalProperties" = false)))]
pub struct Host {
    /// `linux` or `illumos`.
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["linux", "illumos"])))]
    pub os: String,
    pub kernel: String,
    pub arch: String,
    pub cpus: Cpus,
    pub memory: Memory,
    pub limits: Limits,
    pub virtualization: Virtualization,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(extend("additionalProperties" = false, "required" = ["online", "usable", "quota"]))
)]
pub struct Cpus {
    /// CPUs online in the guest.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub online: usize,
    /// CPUs this process may use: its affinity mask, cut to the cgroup's CPU quota.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub usable: usize,
    /// The cgroup CPU quota in CPUs, if there is one.
    pub quota: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(extend("additionalProperties" = false, "required" = ["total_bytes", "available_bytes", "cgroup_limit_bytes", "base_bytes"]))
)]
pub struct Memory {
    pub total_bytes: u64,
    pub available_bytes: u64,
    /// The memory cgroup's limit (tightest on the way up), if any.
    pub cgroup_limit_bytes: Option<u64>,
    /// What a percentage of memory is taken of: the tighter of available memory and the
    /// cgroup limit.
    pub base_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(extend("additionalProperties" = false, "required" = ["pids_cgroup_max", "pids_cgroup_in_use", "pid_max", "threads_max", "threads_in_use", "rlimit_nproc", "processes_max", "processes_room"]))
)]
pub struct Limits {
    pub pids_cgroup_max: Option<u64>,
    /// Processes counted against `pids_cgroup_max` at start (its `pids.current`, this
    /// process included).
    pub pids_cgroup_in_use: Option<u64>,
    pub pid_max: Option<u64>,
    pub threads_max: Option<u64>,
    /// Threads in the whole system at start, kernel threads and this process included:
    /// what counts against threads-max and pid_max.
    pub threads_in_use: Option<u64>,
    pub rlimit_nproc: Option<u64>,
    /// The tightest of the above (RLIMIT_NPROC only when not root, since it does not bind
    /// root): how many processes the guest can hold at most.
    pub processes_max: Option<u64>,
    /// How many processes this process and its descendants can hold together, as things
    /// stand at start: the least, over the limits, of a limit minus what the rest of the
    /// system already counts against it. A guest with 60 threads (kernel threads count)
    /// and threads-max 3,584 has room for 3,525, not 3,584.
    pub processes_room: Option<u64>,
    /// This process's own threads (1, or more under an emulator such as qemu-user, which
    /// runs threads of its own in it): in the counts above, and not someone else's.
    #[serde(skip)]
    pub own_threads: u64,
}

/// One limit on processes, as [`Limits::tightest`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessLimit {
    pub name: &'static str,
    pub max: u64,
    /// Processes (threads) other than this one that count against it.
    pub others: u64,
}

impl ProcessLimit {
    /// What it leaves to this process and its descendants.
    pub fn room(&self) -> u64 {
        self.max.saturating_sub(self.others)
    }
}

impl Limits {
    /// Every known limit on this process's descendants, with what others use of it.
    pub fn each(&self) -> Vec<ProcessLimit> {
        let others = |used: Option<u64>| used.map_or(0, |u| u.saturating_sub(self.own_threads));
        let mut v = Vec::new();
        let mut add = |name, max: Option<u64>, others| {
            if let Some(max) = max {
                v.push(ProcessLimit { name, max, others });
            }
        };
        add(
            "pids cgroup",
            self.pids_cgroup_max,
            others(self.pids_cgroup_in_use),
        );
        add("pid_max", self.pid_max, others(self.threads_in_use));
        add("threads-max", self.threads_max, others(self.threads_in_use));
        if self.rlimit_nproc.is_some() && self.rlimit_nproc == self.processes_max {
            // Only where it binds (not root); the user's other processes are not counted.
            add("RLIMIT_NPROC", self.rlimit_nproc, 0);
        }
        v
    }

    /// The limit that leaves the least room (the first of equals, in the order of
    /// [`Limits::each`]).
    pub fn tightest(&self) -> Option<ProcessLimit> {
        self.each().into_iter().min_by_key(ProcessLimit::room)
    }
}

/// What kind of guest this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum VirtKind {
    Vm,
    Container,
    Zone,
    /// Bare metal, as far as we can tell.
    None,
}

/// Where the binary ran, and why it thinks so.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(extend("additionalProperties" = false, "required" = ["kind", "hypervisor", "container", "zone", "evidence"]))
)]
pub struct Virtualization {
    pub kind: VirtKind,
    pub hypervisor: Option<String>,
    pub container: Option<String>,
    pub zone: Option<String>,
    pub evidence: Vec<String>,
}

impl Virtualization {
    pub fn is_guest(&self) -> bool {
        self.kind != VirtKind::None
    }

    /// `container (docker) in a vm (kvm)`
    pub fn describe(&self) -> String {
        let mut s = match self.kind {
            VirtKind::Zone => format!("illumos zone ({})", self.zone.as_deref().unwrap_or("?")),
            VirtKind::Container => {
                format!("container ({})", self.container.as_deref().unwrap_or("?"))
            }
            VirtKind::Vm => format!("vm ({})", self.hypervisor.as_deref().unwrap_or("?")),
            VirtKind::None => "bare metal (no hypervisor, container or zone detected)".into(),
        };
        if matches!(self.kind, VirtKind::Zone | VirtKind::Container) {
            if let Some(h) = &self.hypervisor {
                s += &format!(" in a vm ({h})");
            }
        }
        s
    }
}
