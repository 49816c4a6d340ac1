//! Cgroups of a run's own: made one step below the caller's cgroup of a controller, so the
//! machine's (or the container's) own accounting stays intact and the same code works where
//! the root is not writable; v1 and v2 alike.
//!
//! One type for every user: forkbomb's pids and freezer cgroups, the test kit's caps around
//! a bomb under test, the disk stressor's io limits. A [`RunCgroup`] is named
//! `<prefix><pid>[-<tag>]` after the process that made it; making one first sweeps the empty
//! cgroups of that prefix whose maker is dead (a run SIGKILLed before it could remove its
//! own). Dropping it kills whatever is still inside and removes it, also on failure.
//!
//! Every cgroup a process makes is listed while it exists, so the supervisor can count what
//! is still inside when teardown gives up ([`procs_alive`]) without asking the stressor.
//!
//! illumos has no cgroups (zones have resource controls): [`RunCgroup::create`] says so.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::sys::{self, CgroupVersion};

/// The cgroups of this process that exist now (made, not yet removed).
static MADE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The most processes in any one cgroup this process made and still holds, the caller
/// excluded: a run's cgroups each hold its processes (forkbomb's pids, freezer and cpuacct
/// cgroups hold the same ones), so the largest count is the run's. None if there is none.
pub fn procs_alive() -> Option<u64> {
    let me = std::process::id().to_string();
    let made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    made.iter()
        .map(|dir| {
            std::fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.is_empty() && *l != me)
                .count() as u64
        })
        .max()
}

fn forget(dir: &Path) {
    MADE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|d| d != dir);
}

/// A cgroup of the run's own. Removed on drop.
#[derive(Debug)]
pub struct RunCgroup {
    dir: PathBuf,
    version: CgroupVersion,
}

impl RunCgroup {
    /// Makes `<this process's cgroup of controller>/<prefix><pid>` (v2: with the controller
    /// enabled for children first), after sweeping stale ones of the same prefix.
    pub fn create(controller: &str, prefix: &str) -> Result<Self, String> {
        Self::create_tagged(controller, prefix, None)
    }

    /// As [`RunCgroup::create`], named `<prefix><pid>-<tag>`: several of one process.
    pub fn create_tagged(
        controller: &str,
        prefix: &str,
        tag: Option<&str>,
    ) -> Result<Self, String> {
        if let Some((own, _)) = sys::cgroup_dir(controller) {
            sweep_stale(&own, prefix);
        }
        let mut name = format!("{prefix}{}", std::process::id());
        if let Some(t) = tag {
            name = format!("{name}-{t}");
        }
        let (dir, version) = sys::create_cgroup(controller, &name)?;
        MADE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(dir.clone());
        Ok(Self { dir, version })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// Writes `value` to one of the cgroup's files.
    pub fn set(&self, file: &str, value: &str) -> Result<(), String> {
        std::fs::write(self.dir.join(file), value)
            .map_err(|e| format!("setting {}/{file} to {value}: {e}", self.dir.display()))
    }

    /// One of the cgroup's files, trimmed; None if it cannot be read.
    pub fn get(&self, file: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(file))
            .ok()
            .map(|s| s.trim().to_string())
    }

    pub fn get_u64(&self, file: &str) -> Option<u64> {
        self.get(file)?.parse().ok()
    }

    /// At most `n` processes (and threads) inside.
    pub fn limit_pids(&self, n: u64) -> Result<(), String> {
        self.set("pids.max", &n.to_string())
    }

    /// At most `bytes` of memory inside (the kernel OOM-kills inside past it).
    pub fn limit_memory(&self, bytes: u64) -> Result<(), String> {
        match self.version {
            CgroupVersion::V1 => self.set("memory.limit_in_bytes", &bytes.to_string()),
            CgroupVersion::V2 => self.set("memory.max", &bytes.to_string()),
        }
    }

    /// At most `read_bps` / `write_bps` bytes per second to the block device `major:minor`
    /// (blkio throttling on v1, io.max on v2).
    pub fn limit_io(&self, dev: (u64, u64), read_bps: u64, write_bps: u64) -> Result<(), String> {
        let (maj, min) = dev;
        match self.version {
            CgroupVersion::V1 => {
                self.set(
                    "blkio.throttle.read_bps_device",
                    &format!("{maj}:{min} {read_bps}"),
                )?;
                self.set(
                    "blkio.throttle.write_bps_device",
                    &format!("{maj}:{min} {write_bps}"),
                )
            }
            CgroupVersion::V2 => self.set(
                "io.max",
                &format!("{maj}:{min} rbps={read_bps} wbps={write_bps}"),
            ),
        }
    }

    /// The highest memory use seen inside (v1 max_usage_in_bytes, v2 memory.peak).
    pub fn memory_peak(&self) -> Option<u64> {
        match self.version {
            CgroupVersion::V1 => self.get_u64("memory.max_usage_in_bytes"),
            CgroupVersion::V2 => self.get_u64("memory.peak"),
        }
    }

    /// CPU seconds (user and system) of every process that was ever inside, the dead
    /// included: v2 `cpu.stat` (there whether or not the cpu controller is enabled), v1
    /// `cpuacct.usage` (a cgroup of the `cpuacct` hierarchy).
    pub fn cpu_s(&self) -> Option<f64> {
        match self.version {
            CgroupVersion::V1 => self.get_u64("cpuacct.usage").map(|ns| ns as f64 / 1e9),
            CgroupVersion::V2 => self
                .event("cpu.stat", "usage_usec")
                .map(|us| us as f64 / 1e6),
        }
    }

    /// A count from one of the cgroup's `key value` files: `event("pids.events", "max")`,
    /// `event("memory.events", "oom_kill")`.
    pub fn event(&self, file: &str, key: &str) -> Option<u64> {
        self.get(file)?.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
    }

    /// Moves process `pid` (0: the caller) into the cgroup.
    pub fn enter(&self, pid: i32) -> Result<(), String> {
        self.set("cgroup.procs", &pid.to_string())
    }

    /// The file a child writes "0" to between fork and exec to enter.
    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// Processes inside now.
    pub fn procs(&self) -> Vec<i32> {
        self.get("cgroup.procs")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    }

    /// Kills everything inside at once, so nothing forks while the rest is killed
    /// (`cgroup.kill` on v2; freeze, kill, thaw in a v1 freezer cgroup). The method used,
    /// or None where this cgroup offers neither.
    pub fn kill_all(&self) -> Option<&'static str> {
        sys::cgroup_kill_all(&self.dir)
    }

    /// Kills what is left inside and removes the cgroup; waits up to a second for the
    /// kernel to let go of the last processes.
    pub fn remove(self) -> Result<(), String> {
        forget(&self.dir);
        let r = remove_dir(&self.dir, true, 200);
        std::mem::forget(self);
        r
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        forget(&self.dir);
        if let Err(e) = remove_dir(&self.dir, true, 200) {
            crate::error::say(&format!("warning: {e}"));
        }
    }
}

/// Removes a cgroup directory and any nested in it (a run's own cgroup under a test's, left
/// by a supervisor killed with SIGKILL), deepest first: `tries` attempts 5 ms apart,
/// killing what is inside first when asked.
fn remove_dir(dir: &Path, kill_inside: bool, tries: u32) -> Result<(), String> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for sub in entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
            remove_dir(&sub, kill_inside, tries)?;
        }
    }
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    for _ in 0..tries {
        if kill_inside {
            for p in std::fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.parse::<i32>().ok())
            {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    Err(format!("could not remove cgroup {}", dir.display()))
}

/// Removes the cgroups `<prefix><pid>[-...]` under `own` whose maker is dead. Nothing
/// inside is killed: one with a process still in it stays.
fn sweep_stale(own: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(own) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(pid) = digits.parse::<i32>() else {
            continue;
        };
        if kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH) {
            // A run killed while its bomb was frozen left it frozen: thawed, its processes
            // act on the SIGKILL their parents' deaths already sent them.
            let _ = remove_dir(&e.path(), false, 1);
        }
    }
}
