//! Helpers for the integration tests that drive the real binaries (feature `testkit`, used
//! only as a dev-dependency).
//!
//! - The binary under test is the one cargo built (`CARGO_BIN_EXE_<name>`), or the one in
//!   `$MISBEHAVE_BIN_DIR` (say, the aarch64 musl build), run through `$MISBEHAVE_RUNNER`
//!   (say, `qemu-aarch64-static`) when that is set.
//! - Every process a test starts carries `MISBEHAVE_TEST_TAG=<unique>` in its environment,
//!   and so does everything it forks: [`live_tagged`] finds the run's processes from outside,
//!   whatever their names or parents, and [`Running`]'s drop kills whatever is left, also
//!   when the test fails.
//! - [`Cgroup`] makes a cgroup of the test's own under this process's cgroup (v1 or v2),
//!   puts the binary in it before it starts, and removes it afterwards.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Declares the test file's `fn bin() -> Bin`, the binary under test:
/// `common::test_binary!("cpubomb");` is `Bin::new("cpubomb", env!("CARGO_BIN_EXE_cpubomb"))`
/// (cargo's path is known only where the test is compiled, hence a macro).
#[macro_export]
macro_rules! test_binary {
    ($name:literal) => {
        fn bin() -> $crate::testkit::Bin {
            $crate::testkit::Bin::new($name, env!(concat!("CARGO_BIN_EXE_", $name)))
        }
    };
}

/// The binary under test.
#[derive(Debug, Clone)]
pub struct Bin {
    pub exe: PathBuf,
    pub runner: Option<String>,
    pub env: Vec<(String, String)>,
    /// Arguments before the test's own (`ip netns exec NS BINARY`: see [`Bin::with_prefix`]).
    pub prefix: Vec<String>,
}

impl Bin {
    /// `Bin::new("cpubomb", env!("CARGO_BIN_EXE_cpubomb"))`
    pub fn new(name: &str, cargo_exe: &str) -> Self {
        let exe = match std::env::var_os("MISBEHAVE_BIN_DIR") {
            Some(d) => Path::new(&d).join(name),
            None => PathBuf::from(cargo_exe),
        };
        let runner = std::env::var("MISBEHAVE_RUNNER")
            .ok()
            .filter(|r| !r.is_empty());
        Bin {
            exe,
            runner,
            env: Vec::new(),
            prefix: Vec::new(),
        }
    }

    /// Any program (`ip`), to be given a prefix of arguments.
    pub fn program(exe: &str) -> Self {
        Bin {
            exe: PathBuf::from(exe),
            runner: None,
            env: Vec::new(),
            prefix: Vec::new(),
        }
    }

    /// The same program with `args` before every run's own arguments: a binary run inside
    /// a network namespace is `Bin::program("ip").with_prefix(&["netns", "exec", NS, BIN])`.
    pub fn with_prefix(&self, args: &[&str]) -> Self {
        let mut b = self.clone();
        b.prefix = args.iter().map(|a| a.to_string()).collect();
        b
    }

    /// A test-only binary of this workspace (never shipped, so never in a dist directory):
    /// always cargo's native build, without a runner.
    pub fn test_only(_name: &str, cargo_exe: &str) -> Self {
        Bin {
            exe: PathBuf::from(cargo_exe),
            runner: None,
            env: Vec::new(),
            prefix: Vec::new(),
        }
    }

    /// The same binary with one more environment variable set.
    pub fn with_env(&self, k: &str, v: &str) -> Self {
        let mut b = self.clone();
        b.env.push((k.into(), v.into()));
        b
    }

    /// True when the binary runs under emulation (slower: be lenient with timings).
    pub fn emulated(&self) -> bool {
        self.runner.is_some()
    }

    /// Extra seconds to allow in a timing assertion: 1 under emulation, else 0.
    pub fn slack(&self) -> f64 {
        if self.emulated() {
            1.0
        } else {
            0.0
        }
    }

    fn command(&self, args: &[&str], tag: &str) -> Command {
        let mut c = match &self.runner {
            Some(r) => {
                let mut c = Command::new(r);
                c.arg(&self.exe);
                c
            }
            None => Command::new(&self.exe),
        };
        c.args(&self.prefix)
            .args(args)
            .env("MISBEHAVE_TEST_TAG", tag)
            .env_remove("NO_COLOR")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Starts the binary; the returned handle kills all it left when dropped.
    pub fn spawn(&self, args: &[&str]) -> Running {
        self.spawn_in(args, None)
    }

    /// Starts the binary inside `cgroup` (it is moved there before it runs).
    pub fn spawn_in(&self, args: &[&str], cgroup: Option<&Cgroup>) -> Running {
        self.spawn_in_all(args, cgroup.as_slice())
    }

    /// As [`Bin::spawn_in`], in every one of `cgroups` (of different hierarchies: pids and
    /// a v1 cpuacct cgroup that counts the run's CPU time from outside).
    pub fn spawn_in_all(&self, args: &[&str], cgroups: &[&Cgroup]) -> Running {
        static N: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let mut cmd = self.command(args, &tag);
        if !cgroups.is_empty() {
            let files: Vec<std::ffi::CString> = cgroups
                .iter()
                .map(|cg| {
                    std::ffi::CString::new(cg.procs_file().to_string_lossy().as_bytes()).unwrap()
                })
                .collect();
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec only async-signal-safe calls (open, write, close).
            unsafe {
                cmd.pre_exec(move || {
                    for procs in &files {
                        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                        if fd < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                        libc::close(fd);
                        if !ok {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.exe.display()));
        Running {
            child: Some(child),
            tag,
            started: Instant::now(),
        }
    }

    /// Runs the binary with its stderr on a pseudo-terminal, as a person at a terminal
    /// would; returns the exit code and every byte written to the terminal.
    pub fn run_on_terminal(&self, args: &[&str], timeout: Duration) -> (Option<i32>, String) {
        use std::os::fd::{FromRawFd, OwnedFd};
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two descriptors; the name, termios and winsize are optional.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned here.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut cmd = self.command(args, "terminal");
        cmd.stderr(Stdio::from(slave)).stdout(Stdio::null());
        let mut child = cmd.spawn().expect("spawn on a terminal");
        drop(cmd); // closes our copy of the slave, so the master sees the end
        let reader = std::thread::spawn(move || {
            let mut f = std::fs::File::from(master);
            let mut buf = Vec::new();
            let _ = f.read_to_end(&mut buf); // ends with EIO once the slave is closed
            String::from_utf8_lossy(&buf).into_owned()
        });
        let status = wait_or_kill(&mut child, timeout);
        (status.code(), reader.join().unwrap())
    }

    /// Runs the binary to the end (killed after `timeout`).
    pub fn run(&self, args: &[&str], timeout: Duration) -> Output {
        self.spawn(args).wait(timeout)
    }
}

/// What a finished run left.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub tag: String,
}

impl Output {
    /// The JSON report (or plan) on stdout, checked against the published schema: every
    /// report and plan a test reads this way is validated.
    pub fn json(&self) -> Value {
        let v: Value = serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not a JSON report ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        });
        if let Err(problems) = validate(&v) {
            panic!(
                "the report does not follow its schema:\n  {}\n{}",
                problems.join("\n  "),
                self.stdout
            );
        }
        read_back(&self.stdout);
        v
    }
}

/// Reads a report or a plan back into the report types, as the host tools do: what the
/// binaries write, the types read.
pub fn read_back(text: &str) {
    let v: Value = serde_json::from_str(text).expect("JSON");
    let read = if v["schema"] == misbehave_report::PLAN_SCHEMA {
        serde_json::from_str::<misbehave_report::Plan>(text).map(drop)
    } else {
        serde_json::from_str::<misbehave_report::Report>(text).map(drop)
    };
    read.unwrap_or_else(|e| panic!("the report types do not read it back: {e}\n{text}"));
}

/// The published schemas (`common/schema/`).
pub const REPORT_SCHEMA: &str = include_str!("../schema/report.schema.json");
pub const PLAN_SCHEMA: &str = include_str!("../schema/plan.schema.json");

/// Checks a report or a plan (by its `schema` field) against the published JSON Schema;
/// the problems, one line each, if it does not follow it.
pub fn validate(doc: &Value) -> Result<(), Vec<String>> {
    let report: Value = serde_json::from_str(REPORT_SCHEMA).expect("report schema is JSON");
    let plan: Value = serde_json::from_str(PLAN_SCHEMA).expect("plan schema is JSON");
    let schema = match doc["schema"].as_str() {
        Some("misbehave.report/1") => &report,
        Some("misbehave.plan/1") => &plan,
        other => return Err(vec![format!("unknown schema {other:?}")]),
    };
    let registry = jsonschema::Registry::new()
        .add("urn:misbehave:report:1", report.clone())
        .expect("a valid URI")
        .prepare()
        .expect("the registry prepares");
    let validator = jsonschema::options()
        .with_registry(&registry)
        .build(schema)
        .unwrap_or_else(|e| panic!("the schema itself is invalid: {e}"));
    let problems: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// A running binary. Dropping it SIGKILLs every process that carries its tag.
pub struct Running {
    child: Option<Child>,
    pub tag: String,
    pub started: Instant,
}

impl Running {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// The supervisor's live children, oldest first: the run's process-group leader, then
    /// the workers in the order they started (worker 0 first).
    pub fn children(&self) -> Vec<i32> {
        let mut children: Vec<(u64, i32)> = live_tagged(&self.tag)
            .into_iter()
            .filter_map(|p| ProcStat::read(p).map(|st| (st, p)))
            .filter(|(st, _)| st.ppid() == self.pid())
            .map(|(st, p)| (st.start_ticks(), p))
            .collect();
        children.sort();
        children.into_iter().map(|(_, p)| p).collect()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Takes its stdout and stderr, to be read apart from waiting for its end
    /// ([`Running::wait_exit`]): a test of whether they end when the process does.
    pub fn take_pipes(&mut self) -> (std::process::ChildStdout, std::process::ChildStderr) {
        let c = self.child.as_mut().expect("not waited yet");
        (c.stdout.take().unwrap(), c.stderr.take().unwrap())
    }

    /// Waits for the process itself to end (SIGKILL after `timeout`), not for its pipes;
    /// whatever it left is still killed on drop.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        wait_or_kill(self.child.as_mut().expect("not waited yet"), timeout)
    }

    /// Waits for the end (SIGKILL after `timeout`) and collects its output.
    pub fn wait(mut self, timeout: Duration) -> Output {
        let mut child = self.child.take().expect("not waited yet");
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let t_out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let t_err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let status = wait_or_kill(&mut child, timeout);
        let elapsed = self.started.elapsed();
        use std::os::unix::process::ExitStatusExt;
        Output {
            code: status.code(),
            signal: status.signal(),
            stdout: t_out.join().unwrap(),
            stderr: t_err.join().unwrap(),
            elapsed,
            tag: self.tag.clone(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        kill_tagged(&self.tag);
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits for `child` to end; SIGKILLs it after `timeout`.
fn wait_or_kill(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Says that a test (or a part of one) did not run here, and why: on stderr, and as a line
/// appended to the file `MISBEHAVE_SKIP_LOG` names, which `scripts/test` lists before its
/// count (cargo shows a passing test's stderr to nobody).
pub fn skip(why: &str) {
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let runner = match std::env::var("MISBEHAVE_RUNNER") {
        Ok(r) if !r.is_empty() => format!(" (under {r})"),
        _ => String::new(),
    };
    let line = format!("SKIP {test}{runner}: {why}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("MISBEHAVE_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// Tests that burn CPU, memory or processes take turns (hold the guard for the test's
/// length): on two cores, two bombs at once would measure each other, not the binary.
pub fn take_turn() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A process's /proc/PID/stat, read once: the fields after the command name (which may
/// hold spaces and parentheses, hence the split at the last ") ").
pub struct ProcStat(Vec<String>);

impl ProcStat {
    /// None once the process is gone.
    pub fn read(pid: i32) -> Option<Self> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (_, rest) = s.rsplit_once(") ")?;
        Some(Self(rest.split(' ').map(String::from).collect()))
    }

    /// proc(5)'s field `n` (1-based, as the man page counts: 3 is the state).
    fn num(&self, n: usize) -> u64 {
        self.0.get(n - 3).and_then(|x| x.parse().ok()).unwrap_or(0)
    }

    /// R, S, D, Z, X...
    pub fn state(&self) -> char {
        self.0.first().and_then(|s| s.chars().next()).unwrap_or('?')
    }

    pub fn ppid(&self) -> i32 {
        self.num(4) as i32
    }

    /// The process group.
    pub fn pgrp(&self) -> i32 {
        self.num(5) as i32
    }

    /// When the process started, in clock ticks after boot.
    pub fn start_ticks(&self) -> u64 {
        self.num(22)
    }

    /// The mask of ignored signals (bit `sig - 1`).
    pub fn ignored_signals(&self) -> u64 {
        self.num(33)
    }
}

/// Processes (not zombies) whose environment carries `MISBEHAVE_TEST_TAG=tag`.
pub fn live_tagged(tag: &str) -> Vec<i32> {
    let needle = format!("MISBEHAVE_TEST_TAG={tag}");
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if !env.split(|&b| b == 0).any(|v| v == needle.as_bytes()) {
            continue;
        }
        if ProcStat::read(pid).is_some_and(|st| !matches!(st.state(), 'Z' | 'X')) {
            found.push(pid);
        }
    }
    found
}

/// Polls until at least `n` tagged processes are alive; false if that takes over `within`.
pub fn wait_for_live(tag: &str, n: usize, within: Duration) -> bool {
    let t0 = Instant::now();
    while live_tagged(tag).len() < n {
        if t0.elapsed() > within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Polls until no tagged process is left; the time it took, or those still there.
pub fn wait_until_gone(tag: &str, within: Duration) -> Result<Duration, Vec<i32>> {
    let t0 = Instant::now();
    loop {
        let left = live_tagged(tag);
        if left.is_empty() {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > within {
            return Err(left);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGKILLs every tagged process, a few rounds (a fork bomb keeps forking).
pub fn kill_tagged(tag: &str) {
    for _ in 0..50 {
        let left = live_tagged(tag);
        if left.is_empty() {
            return;
        }
        for p in left {
            // SAFETY: sending a signal; the pid carries our tag.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A cgroup of the test's own, under this process's cgroup for `controller` (v1 or v2): a
/// [`crate::cgroup::RunCgroup`] named `misbehave-test-<pid>-<name>`. Removed on drop,
/// after killing anything still inside.
pub struct Cgroup {
    pub dir: PathBuf,
    pub v2: bool,
    inner: crate::cgroup::RunCgroup,
}

impl Cgroup {
    /// None where no writable hierarchy for `controller` exists (the test should say it
    /// skipped, and why).
    pub fn new(controller: &str, name: &str) -> Option<Self> {
        let inner =
            crate::cgroup::RunCgroup::create_tagged(controller, "misbehave-test-", Some(name))
                .ok()?;
        Some(Cgroup {
            dir: inner.dir().to_path_buf(),
            v2: inner.version() == crate::sys::CgroupVersion::V2,
            inner,
        })
    }

    /// A pids cgroup that holds at most `max` processes; None (and a skip line) where no
    /// writable one exists.
    pub fn pids(name: &str, max: u64) -> Option<Self> {
        let cg = Self::or_skip("pids", name)?;
        cg.inner.limit_pids(max).unwrap_or_else(|e| panic!("{e}"));
        Some(cg)
    }

    /// A memory cgroup that holds at most `bytes`; None (and a skip line) where no writable
    /// one exists.
    pub fn memory(name: &str, bytes: u64) -> Option<Self> {
        let cg = Self::or_skip("memory", name)?;
        cg.inner
            .limit_memory(bytes)
            .unwrap_or_else(|e| panic!("{e}"));
        Some(cg)
    }

    /// A v1 freezer cgroup, frozen before anything moves in (a process that enters it freezes
    /// at once, and even a SIGKILL waits for the thaw, which its drop does); None (and a skip
    /// line) where no writable one exists.
    pub fn frozen(name: &str) -> Option<Self> {
        let Some(cg) = Self::new("freezer", name).filter(|c| !c.v2) else {
            skip("no writable v1 freezer cgroup here");
            return None;
        };
        cg.set("freezer.state", "FROZEN");
        Some(cg)
    }

    fn or_skip(controller: &str, name: &str) -> Option<Self> {
        let cg = Self::new(controller, name);
        if cg.is_none() {
            skip(&format!(
                "no writable {controller} cgroup here to run the test in"
            ));
        }
        cg
    }

    /// The most memory it ever held (v1 max_usage_in_bytes, v2 memory.peak).
    pub fn memory_peak(&self) -> u64 {
        self.inner.memory_peak().unwrap_or(0)
    }

    pub fn set(&self, file: &str, value: &str) {
        self.inner
            .set(file, value)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn get(&self, file: &str) -> String {
        self.inner.get(file).unwrap_or_default()
    }

    /// CPU seconds of every process ever inside ([`crate::cgroup::RunCgroup::cpu_s`]).
    pub fn cpu_s(&self) -> Option<f64> {
        self.inner.cpu_s()
    }

    pub fn get_u64(&self, file: &str) -> u64 {
        self.inner.get_u64(file).unwrap_or(0)
    }

    pub fn procs_file(&self) -> PathBuf {
        self.inner.procs_file()
    }

    /// Pids in the cgroup now.
    pub fn procs(&self) -> Vec<i32> {
        self.inner.procs()
    }

    /// The run cgroup itself (limits, events, memory peak).
    pub fn run_cgroup(&self) -> &crate::cgroup::RunCgroup {
        &self.inner
    }
}

/// A TCP or UDP port on loopback of this test process's own: a block of 40 per process id,
/// so the test binaries that run at once (two targets, two crates) do not meet.
pub fn port() -> u16 {
    static N: AtomicU32 = AtomicU32::new(0);
    let block = std::process::id() % 1000;
    20000 + (block * 40 + N.fetch_add(1, Ordering::SeqCst) % 40) as u16
}

/// A directory of the test's own under the system's temporary directory, removed (with
/// whatever is in it) on drop, also when the test fails.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "misbehave-test-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }

    /// The names in it, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A small tmpfs of the test's own (root only), mounted on a temporary directory and
/// unmounted on drop: a filesystem a disk test can fill without harming anything.
pub struct Tmpfs {
    pub dir: TempDir,
}

impl Tmpfs {
    /// None where mounting is not permitted (the test should say it skipped).
    pub fn new(name: &str, size: &str, read_only: bool) -> Option<Self> {
        Self::new_fs(name, "tmpfs", size, read_only)
    }

    /// The same with another memory filesystem (`ramfs`: no size limit, no O_DIRECT).
    pub fn new_fs(name: &str, fstype: &str, size: &str, read_only: bool) -> Option<Self> {
        let dir = TempDir::new(name);
        let mut opts = "mode=0755".to_string();
        if !size.is_empty() {
            opts += &format!(",size={size}");
        }
        if read_only {
            opts += ",ro";
        }
        let ok = Command::new("mount")
            .args(["-t", fstype, "-o", &opts, "misbehave-test"])
            .arg(&dir.path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir.path
    }

    /// Free bytes (statvfs, as an unprivileged writer sees them).
    pub fn free(&self) -> u64 {
        crate::sys::disk_free(&self.dir.path).unwrap_or(0)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        for _ in 0..100 {
            let ok = Command::new("umount")
                .arg(&self.dir.path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("warning: could not unmount {}", self.dir.path.display());
    }
}

/// `runsc do` with `args` (a program and its arguments) as a [`Bin`]: the program runs in a
/// gVisor sandbox (ptrace platform, so no KVM needed; no network but the sandbox's own
/// loopback; the host's files seen through an overlay, so what it writes stays inside).
/// None, with a skip line, where runsc is not installed, this is not root, the binaries
/// run under an emulator, or a sandbox cannot start here.
pub fn gvisor(args: &[&str]) -> Option<Bin> {
    if std::env::var("MISBEHAVE_RUNNER").is_ok_and(|r| !r.is_empty()) {
        skip("gVisor runs native binaries only");
        return None;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip("gVisor's runsc do needs root");
        return None;
    }
    let runsc = ["/usr/bin/runsc", "/usr/local/bin/runsc"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(runsc) = runsc else {
        skip("runsc (gVisor) is not installed");
        return None;
    };
    let sandbox = ["--platform=ptrace", "--network=none", "do"];
    let probe = Bin::program(runsc).with_prefix(&[&sandbox[..], &["true"]].concat());
    let out = probe.run(&[], Duration::from_secs(60));
    if out.code != Some(0) {
        skip(&format!(
            "a gVisor sandbox does not start here: {}",
            out.stderr.lines().last().unwrap_or("no reason given")
        ));
        return None;
    }
    Some(Bin::program(runsc).with_prefix(&[&sandbox[..], args].concat()))
}
