//! `/init` (PID 1) of the throwaway Linux guests that `scripts/guest-test` boots.
//!
//! It mounts the pseudo file systems, loads the virtio modules it finds under
//! /lib/modules, brings up eth0 (10.0.2.15/24, default route via 10.0.2.2),
//! runs ONE command with its stdout captured through a pipe, reaps every zombie
//! while the command runs, kills whatever is left when it ends, prints the
//! captured report between markers on the serial console and powers off.
//!
//! # Command line
//!
//! The kernel hands everything after `--` on its command line to init as argv:
//!
//! ```text
//! ... -- scenario=cpubomb timeout=40 run=/bin/cpubomb,-t,10s,--json
//! ```
//!
//! * `scenario=NAME`   name echoed in the markers (default `unnamed`).
//! * `timeout=SECONDS` hard limit for the command (default 60, fractions allowed);
//!   past it the command's process group gets SIGKILL and the report says
//!   `exit=timeout`.
//! * `run=PATH,ARG,ARG...` the command: comma separated argv, each piece
//!   %-decoded (`%2C` is a comma, `%20` a space, `%25` a percent sign).
//! * `net=0`           skip the network set-up (default `net=1`).
//! * `ip=A.B.C.D/N`    eth0's address (default 10.0.2.15/24 with a default route via
//!   10.0.2.2, qemu's user network); with `ip=` no route is added (a guest on a bridge
//!   talks to its own subnet only, as scripts/isolation-experiment's guests do).
//! * `also=PATH,ARG...` a second command (same encoding as `run=`), started just before
//!   the main one in a session of its own, stdout into /tmp (a ramfs), e.g. the bomb beside
//!   the probe. When the main command ends, init waits up to `also_wait=SECONDS` (default
//!   10) for it to end on its own, then kills everything left as usual. Its captured stdout
//!   follows the main report:
//!   `===MISBEHAVE-ALSO-BEGIN <scenario>===` ... `===MISBEHAVE-ALSO-END <scenario>
//!   exit=<code|sigN|killed>===`.
//! * `mount=DEV:DIR:FSTYPE` mount a scratch disk (e.g. `mount=/dev/vda:/mnt:ext4`, the
//!   virtio-blk disk a cloud VM would have) after the modules are loaded; waits up to 5 s
//!   for DEV to appear, and unmounts it before the report.
//! * `floor=N|peak`  after the command, measure the teardown floor of this guest: a fresh
//!   process forks N children that sleep in one process group, then times one
//!   `killpg(SIGKILL)` and the reaping of all of them (what a bare program needs to remove
//!   N processes here). `peak` takes N from the report's `"live_procs"` peak. Prints
//!   `===MISBEHAVE-FLOOR n=<N> s=<seconds>===`, before the report: once after every round
//!   (`rounds=`), three times when there is one round.
//! * `rounds=N`      run the command N times (1..10, default 1), one after the other, so
//!   that a measurement can be paired with the floor taken right after it (a guest under
//!   software emulation on a busy host drifts). The report printed is the first round's;
//!   every later round prints, once it and all it left are gone,
//!   `===MISBEHAVE-ROUND i=<i> exit=<code|sigN|timeout> wall_s=<s> teardown_s=<s|?>
//!   live_procs=<n|?> procs_left=<n>===` (the numbers from its JSON report).
//! * `poweroff=reboot` end with reboot(RB_AUTOBOOT), not RB_POWER_OFF (for x86
//!   microvm with acpi=off, which cannot power off; qemu -no-reboot exits).
//! * `MODULE.PARAM=VALUE` (anywhere on the kernel command line) is passed to
//!   that module when init loads it, like modprobe does.
//! * `selftest=init-panic|init-exit|init-hang` make init itself misbehave
//!   (harness self-tests only).
//!
//! # Console output (serial console = init's stdout)
//!
//! ```text
//! ===MISBEHAVE-CHILD-START <scenario> pid=<pid>===
//!   ... the command's stderr, kernel messages ...
//! ===MISBEHAVE-CHILD-END <scenario>===
//!   ... FLOOR and ROUND markers ...
//! ===MISBEHAVE-REPORT-BEGIN <scenario>===
//! <the command's captured stdout>
//! ===MISBEHAVE-REPORT-END <scenario> exit=<code|sigN|timeout> wall_s=<seconds>===
//! ===MISBEHAVE-PROCS-LEFT <n>===
//! ===MISBEHAVE-POWEROFF===
//! ```
//!
//! The report is printed after the command and everything it left behind are
//! gone, with the kernel's console log level lowered, so nothing interleaves with
//! it. Any error of init's own prints `===MISBEHAVE-INIT-ERROR <msg>===` and
//! powers off.
//!
//! # Child mode
//!
//! Run as any PID other than 1, the binary offers stand-in commands for the
//! harness self-tests: `--selftest-ok`, `--selftest-hang`, `--selftest-orphans`.

use std::ffi::{CStr, CString};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Capacity of the captured-stdout buffer, allocated once.
const REPORT_CAP: usize = 4 << 20;
/// Modules loaded first, in this order (whichever exist; others follow sorted).
const MODULE_ORDER: &[&str] = &[
    "virtio_ring",
    "virtio",
    "virtio_mmio",
    "failover",
    "net_failover",
    "virtio_net",
    "virtio_blk",
];
/// Most modules/directory entries init will look at.
const MAX_MODULES: usize = 64;
const MAX_PROC_SCAN: usize = 100_000;

// ---------------------------------------------------------------- output --

/// Writes all of `bytes` to fd 1 (the console), retrying on EINTR.
fn out_bytes(mut bytes: &[u8]) {
    let mut tries = 0;
    while !bytes.is_empty() && tries < 10_000 {
        tries += 1;
        // SAFETY: the pointer and length describe a valid slice.
        let n = unsafe { libc::write(1, bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n < 0 && errno() == libc::EINTR {
            continue;
        } else {
            return;
        }
    }
}

fn out(s: &str) {
    out_bytes(s.as_bytes());
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// One line, no marker-breaking characters.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() || c == '=' { ' ' } else { c })
        .collect()
}

// --------------------------------------------------------------- poweroff --

/// `poweroff=reboot`: end with reboot(RB_AUTOBOOT) instead of RB_POWER_OFF, for
/// machines that cannot power off (x86 microvm without ACPI); with qemu's
/// -no-reboot a reboot ends the guest just the same.
static REBOOT_INSTEAD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn poweroff() -> ! {
    let how = if REBOOT_INSTEAD.load(std::sync::atomic::Ordering::Relaxed) {
        libc::RB_AUTOBOOT
    } else {
        libc::RB_POWER_OFF
    };
    // SAFETY: plain syscalls without pointers.
    unsafe {
        libc::sync();
        libc::reboot(how);
    }
    // Still here: exiting PID 1 panics the kernel, and with panic=-1 and qemu's
    // -no-reboot that ends the guest as well.
    out(&format!(
        "\n===MISBEHAVE-INIT-ERROR {}===\n",
        one_line(&os_err("reboot"))
    ));
    std::process::exit(1);
}

// ----------------------------------------------------------------- config --

#[derive(Debug)]
struct Config {
    scenario: String,
    timeout: Duration,
    run: Vec<CString>,
    net: bool,
    selftest: Option<String>,
    /// (device, directory, filesystem type) of a scratch disk to mount.
    mount: Option<(String, String, String)>,
    /// Measure the teardown floor after the command (see `floor=`).
    floor: Option<Floor>,
    /// How many times to run the command (see `rounds=`).
    rounds: usize,
    /// eth0's address and prefix length (`ip=`); None: qemu user networking's.
    ip: Option<([u8; 4], u8)>,
    /// The command run beside the main one (`also=`).
    also: Vec<CString>,
    /// How long to wait for `also` to end once the main command has.
    also_wait: Duration,
}

#[derive(Debug, Clone, Copy)]
enum Floor {
    Count(usize),
    /// As many processes as the report's `live_procs` peak.
    Peak,
}

fn percent_decode(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut v = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad %-escape in {s:?}"))?;
            v.push(hex);
            i += 3;
        } else {
            v.push(b[i]);
            i += 1;
        }
    }
    Ok(v)
}

/// `run=`/`also=`: comma separated argv, each piece %-decoded.
fn parse_argv(key: &str, v: &str) -> Result<Vec<CString>, String> {
    let mut argv = Vec::new();
    for piece in v.split(',') {
        let bytes = percent_decode(piece)?;
        argv.push(CString::new(bytes).map_err(|_| format!("NUL byte in {key}= {v:?}"))?);
    }
    if argv[0].as_bytes().is_empty() {
        return Err(format!("{key}= has an empty program path"));
    }
    Ok(argv)
}

/// `ip=A.B.C.D/N`.
fn parse_ip(v: &str) -> Result<([u8; 4], u8), String> {
    let bad = || format!("ip= wants A.B.C.D/N, got {v:?}");
    let (a, n) = v.split_once('/').ok_or_else(bad)?;
    let addr: std::net::Ipv4Addr = a.parse().map_err(|_| bad())?;
    let n: u8 = n.parse().map_err(|_| bad())?;
    if !(1..=30).contains(&n) {
        return Err(bad());
    }
    Ok((addr.octets(), n))
}

fn parse_args(args: &[String]) -> Result<Config, String> {
    let mut cfg = Config {
        scenario: "unnamed".into(),
        timeout: Duration::from_secs(60),
        run: Vec::new(),
        net: true,
        selftest: None,
        mount: None,
        floor: None,
        rounds: 1,
        ip: None,
        also: Vec::new(),
        also_wait: Duration::from_secs(10),
    };
    for a in args {
        let Some((k, v)) = a.split_once('=') else {
            out(&format!("guest-init: ignoring argument {a:?}\n"));
            continue;
        };
        match k {
            "scenario" => {
                if v.is_empty() || v.len() > 64 || v.contains(|c: char| !c.is_ascii_graphic()) {
                    return Err(format!("bad scenario name {v:?}"));
                }
                cfg.scenario = v.into();
            }
            "timeout" => {
                let t: f64 = v.parse().map_err(|_| format!("bad timeout {v:?}"))?;
                if !(t > 0.0 && t < 86_400.0) {
                    return Err(format!("timeout out of range: {v}"));
                }
                cfg.timeout = Duration::from_secs_f64(t);
            }
            "run" => cfg.run = parse_argv(k, v)?,
            "also" => cfg.also = parse_argv(k, v)?,
            "also_wait" => {
                let t: f64 = v.parse().map_err(|_| format!("bad also_wait {v:?}"))?;
                if !(0.0..3600.0).contains(&t) {
                    return Err(format!("also_wait out of range: {v}"));
                }
                cfg.also_wait = Duration::from_secs_f64(t);
            }
            "ip" => cfg.ip = Some(parse_ip(v)?),
            "net" => cfg.net = v != "0",
            "mount" => {
                let mut it = v.splitn(3, ':');
                match (it.next(), it.next(), it.next()) {
                    (Some(d), Some(m), Some(t))
                        if !d.is_empty() && !m.is_empty() && !t.is_empty() =>
                    {
                        cfg.mount = Some((d.into(), m.into(), t.into()))
                    }
                    _ => return Err(format!("mount= wants DEV:DIR:FSTYPE, got {v:?}")),
                }
            }
            "floor" => {
                cfg.floor = Some(match v {
                    "peak" => Floor::Peak,
                    _ => match v.parse::<usize>() {
                        Ok(n) if (1..=100_000).contains(&n) => Floor::Count(n),
                        _ => {
                            return Err(format!(
                                "floor= wants a count (1..100000) or peak, got {v:?}"
                            ))
                        }
                    },
                })
            }
            "rounds" => {
                cfg.rounds = match v.parse::<usize>() {
                    Ok(n) if (1..=10).contains(&n) => n,
                    _ => return Err(format!("rounds= wants 1..10, got {v:?}")),
                }
            }
            "poweroff" => REBOOT_INSTEAD.store(v == "reboot", std::sync::atomic::Ordering::Relaxed),
            // module.param=value: handed to that module by load_modules().
            _ if k.contains('.') => {}
            "selftest" => cfg.selftest = Some(v.into()),
            _ => out(&format!("guest-init: ignoring unknown key {k:?}\n")),
        }
    }
    if cfg.run.is_empty() && cfg.selftest.is_none() {
        return Err("no run= on the kernel command line (after --)".into());
    }
    Ok(cfg)
}

// ------------------------------------------------------------------ setup --

fn cstring(s: &str) -> CString {
    CString::new(s).expect("no NUL in internal strings")
}

fn mount_fs(fstype: &str, target: &str, flags: libc::c_ulong, data: &str) -> Result<(), String> {
    let (t, ty, d) = (cstring(target), cstring(fstype), cstring(data));
    // SAFETY: valid NUL-terminated strings.
    unsafe {
        if libc::mkdir(t.as_ptr(), 0o755) != 0 && errno() != libc::EEXIST {
            return Err(os_err(&format!("mkdir {target}")));
        }
        if libc::mount(
            ty.as_ptr(),
            t.as_ptr(),
            ty.as_ptr(),
            flags,
            d.as_ptr().cast(),
        ) != 0
            && errno() != libc::EBUSY
        {
            return Err(os_err(&format!("mount {fstype} on {target}")));
        }
    }
    Ok(())
}

fn mount_all() -> Result<(), String> {
    let nodev = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount_fs("proc", "/proc", nodev, "")?;
    mount_fs("sysfs", "/sys", nodev, "")?;
    mount_fs("devtmpfs", "/dev", libc::MS_NOSUID, "mode=0755")?;
    mount_fs(
        "tmpfs",
        "/tmp",
        libc::MS_NOSUID | libc::MS_NODEV,
        "mode=1777",
    )?;
    Ok(())
}

/// Mounts the scratch disk `dev` (waiting up to 5 s for the kernel to create it) on `dir`.
fn mount_disk(dev: &str, dir: &str, fstype: &str) -> Result<(), String> {
    let t0 = Instant::now();
    while !std::path::Path::new(dev).exists() {
        if t0.elapsed() > Duration::from_secs(5) {
            return Err(format!(
                "{dev} did not appear within 5 s (virtio_blk loaded?)"
            ));
        }
        sleep_ms(20);
    }
    let (d, t, ty) = (cstring(dev), cstring(dir), cstring(fstype));
    // SAFETY: valid NUL-terminated strings; no data argument.
    unsafe {
        if libc::mkdir(t.as_ptr(), 0o755) != 0 && errno() != libc::EEXIST {
            return Err(os_err(&format!("mkdir {dir}")));
        }
        if libc::mount(d.as_ptr(), t.as_ptr(), ty.as_ptr(), 0, std::ptr::null()) != 0 {
            return Err(os_err(&format!("mount {dev} ({fstype}) on {dir}")));
        }
    }
    out(&format!("guest-init: mounted {dev} ({fstype}) on {dir}\n"));
    Ok(())
}

fn write_file(path: &str, data: &str) -> Result<(), String> {
    std::fs::write(path, data).map_err(|e| format!("write {path}: {e}"))
}

/// Module file name (without .ko) -> path, for at most MAX_MODULES files under
/// /lib/modules (two levels deep is enough for the initramfs guest-test builds).
fn find_modules() -> Vec<(String, std::path::PathBuf)> {
    let mut found = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from("/lib/modules")];
    let mut visited = 0;
    while let Some(dir) = dirs.pop() {
        visited += 1;
        if visited > 32 {
            break;
        }
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten().take(1024) {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if let Some(stem) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".ko"))
            {
                if found.len() < MAX_MODULES {
                    found.push((stem.replace('-', "_"), p));
                }
            }
        }
    }
    found.sort();
    found
}

/// `param=value ...` for module `name` from the `name.param=value` words of
/// /proc/cmdline (what modprobe does; the kernel applies them only to built-ins).
/// qemu's microvm appends `virtio_mmio.device=...` this way.
fn module_params(cmdline: &str, name: &str) -> CString {
    let mut p = String::new();
    for w in cmdline.split_ascii_whitespace() {
        if let Some((m, rest)) = w.split_once('.') {
            if m.replace('-', "_") == name && rest.contains('=') {
                if !p.is_empty() {
                    p.push(' ');
                }
                p.push_str(rest);
            }
        }
    }
    CString::new(p).unwrap_or_default()
}

fn load_modules() {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let mods = find_modules();
    let mut order: Vec<&(String, std::path::PathBuf)> = Vec::with_capacity(mods.len());
    for name in MODULE_ORDER {
        order.extend(mods.iter().filter(|(n, _)| n == name));
    }
    order.extend(
        mods.iter()
            .filter(|(n, _)| !MODULE_ORDER.contains(&n.as_str())),
    );
    // A module whose dependency comes later fails with ENOENT (unknown symbol):
    // retry the failures until a pass loads nothing new.
    let mut pending = order;
    let mut last_err: Vec<(String, std::io::Error)> = Vec::new();
    for _pass in 0..MAX_MODULES {
        let mut failed = Vec::with_capacity(pending.len());
        last_err.clear();
        for m in &pending {
            let (name, path) = *m;
            let f = match std::fs::File::open(path) {
                Ok(f) => f,
                Err(e) => {
                    last_err.push((name.clone(), e));
                    failed.push(*m);
                    continue;
                }
            };
            let params = module_params(&cmdline, name);
            // SAFETY: valid fd and NUL-terminated parameter string.
            let r =
                unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), params.as_ptr(), 0) };
            if r != 0 && errno() != libc::EEXIST {
                last_err.push((name.clone(), std::io::Error::last_os_error()));
                failed.push(*m);
            }
        }
        let progress = failed.len() < pending.len();
        pending = failed;
        if pending.is_empty() || !progress {
            break;
        }
    }
    for (name, e) in last_err {
        out(&format!("guest-init: finit_module {name}: {e}\n"));
    }
}

fn ifreq(name: &CStr) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in r
        .ifr_name
        .iter_mut()
        .zip(name.to_bytes())
        .take(libc::IFNAMSIZ - 1)
    {
        *d = *s as libc::c_char;
    }
    r
}

fn sockaddr_in(a: [u8; 4]) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size on Linux.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

struct Sock(libc::c_int);
impl Drop for Sock {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe { libc::close(self.0) };
    }
}

fn ioctl(s: &Sock, req: libc::c_ulong, arg: *mut libc::c_void, what: &str) -> Result<(), String> {
    // SAFETY: arg points to the struct the request expects (caller's duty).
    if unsafe { libc::ioctl(s.0, req as _, arg) } != 0 {
        return Err(os_err(what));
    }
    Ok(())
}

fn if_up(s: &Sock, name: &CStr) -> Result<(), String> {
    let mut r = ifreq(name);
    ioctl(
        s,
        libc::SIOCGIFFLAGS,
        (&mut r as *mut libc::ifreq).cast(),
        "SIOCGIFFLAGS",
    )?;
    // SAFETY: union field written by the kernel just above.
    unsafe { r.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    ioctl(
        s,
        libc::SIOCSIFFLAGS,
        (&mut r as *mut libc::ifreq).cast(),
        "SIOCSIFFLAGS",
    )
}

fn setup_net(ip: Option<([u8; 4], u8)>) -> Result<(), String> {
    let (addr, prefix) = ip.unwrap_or(([10, 0, 2, 15], 24));
    let mask = (u32::MAX << (32 - u32::from(prefix))).to_be_bytes();
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(os_err("socket"));
    }
    let s = Sock(fd);
    let _ = if_up(&s, c"lo");
    let eth0 = c"eth0";
    let mut r = ifreq(eth0);
    if ioctl(
        &s,
        libc::SIOCGIFFLAGS,
        (&mut r as *mut libc::ifreq).cast(),
        "probe",
    )
    .is_err()
    {
        out("guest-init: no eth0, network not configured\n");
        return Ok(());
    }
    let mut r = ifreq(eth0);
    r.ifr_ifru.ifru_addr = sockaddr_in(addr);
    ioctl(
        &s,
        libc::SIOCSIFADDR,
        (&mut r as *mut libc::ifreq).cast(),
        "SIOCSIFADDR eth0",
    )?;
    let mut r = ifreq(eth0);
    r.ifr_ifru.ifru_netmask = sockaddr_in(mask);
    ioctl(
        &s,
        libc::SIOCSIFNETMASK,
        (&mut r as *mut libc::ifreq).cast(),
        "SIOCSIFNETMASK eth0",
    )?;
    if_up(&s, eth0)?;
    let t0 = Instant::now();
    let mut running = false;
    for _ in 0..200 {
        let mut r = ifreq(eth0);
        ioctl(
            &s,
            libc::SIOCGIFFLAGS,
            (&mut r as *mut libc::ifreq).cast(),
            "SIOCGIFFLAGS eth0",
        )?;
        // SAFETY: union field written by the kernel just above.
        if unsafe { r.ifr_ifru.ifru_flags } & libc::IFF_RUNNING as libc::c_short != 0 {
            running = true;
            break;
        }
        if t0.elapsed() > Duration::from_secs(2) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if !running {
        out("guest-init: eth0 not RUNNING after 2 s, going on anyway\n");
    }
    if ip.is_some() {
        out(&format!(
            "guest-init: eth0 {}/{prefix} ({}running after {} ms)\n",
            std::net::Ipv4Addr::from(addr),
            if running { "" } else { "NOT " },
            t0.elapsed().as_millis()
        ));
        return Ok(());
    }
    // SAFETY: rtentry is plain old data; all-zero is valid.
    let mut rt: libc::rtentry = unsafe { std::mem::zeroed() };
    rt.rt_dst = sockaddr_in([0, 0, 0, 0]);
    rt.rt_genmask = sockaddr_in([0, 0, 0, 0]);
    rt.rt_gateway = sockaddr_in([10, 0, 2, 2]);
    rt.rt_flags = libc::RTF_UP | libc::RTF_GATEWAY;
    rt.rt_dev = eth0.as_ptr().cast_mut();
    ioctl(
        &s,
        libc::SIOCADDRT,
        (&mut rt as *mut libc::rtentry).cast(),
        "SIOCADDRT default via 10.0.2.2",
    )?;
    out(&format!(
        "guest-init: eth0 10.0.2.15/24 via 10.0.2.2 ({}running after {} ms)\n",
        if running { "" } else { "NOT " },
        t0.elapsed().as_millis()
    ));
    Ok(())
}

// -------------------------------------------------------------- processes --

/// The `also=` command's pid while it runs (0: none or reaped), and its wait status once
/// reaped (-1 until then); set by `reap_all`, which reaps every child.
static ALSO_PID: AtomicI32 = AtomicI32::new(0);
static ALSO_STATUS: AtomicI32 = AtomicI32::new(-1);
const ALSO_OUT: &CStr = c"/tmp/misbehave-also.out";

/// Starts the `also=` command: own session, stdout into ALSO_OUT, stderr on the console.
fn start_also(argv: &[CString]) -> Result<libc::pid_t, String> {
    // SAFETY: a path and flags; the fd is ours.
    let fd = unsafe {
        libc::open(
            ALSO_OUT.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        return Err(os_err("open /tmp/misbehave-also.out"));
    }
    let pid = spawn(
        argv,
        fd,
        b"guest-init: execve of the also= command failed\n",
    );
    // SAFETY: our copy of the file's fd.
    unsafe { libc::close(fd) };
    let pid = pid?;
    ALSO_STATUS.store(-1, Relaxed);
    ALSO_PID.store(pid, Relaxed);
    Ok(pid)
}

/// Starts `argv` as a command of its own: a session of its own, stdout on `out_fd`,
/// stderr on the console, the default nice and OOM score, SIGPIPE and the signal mask as
/// a shell would leave them, a small fixed environment.
fn spawn(argv: &[CString], out_fd: libc::c_int, fail_msg: &[u8]) -> Result<libc::pid_t, String> {
    let mut argv: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let env = [c"PATH=/bin:/sbin", c"HOME=/", c"TERM=linux", c"TMPDIR=/tmp"];
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let oom_path = c"/proc/self/oom_score_adj";
    // SAFETY: init is single threaded; the child only makes async-signal-safe calls.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(os_err("fork"));
    }
    if pid == 0 {
        // SAFETY: child side of fork: only raw syscalls on prepared data.
        unsafe {
            libc::dup2(out_fd, 1);
            libc::setsid();
            libc::setpriority(libc::PRIO_PROCESS, 0, 0);
            let fd = libc::open(oom_path.as_ptr(), libc::O_WRONLY);
            if fd >= 0 {
                libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
            }
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            libc::execve(argv[0], argv.as_ptr(), envp.as_ptr());
            libc::write(2, fail_msg.as_ptr().cast(), fail_msg.len());
            libc::_exit(127);
        }
    }
    Ok(pid)
}

/// Waits up to `limit` for the `also=` command to end; its exit as the markers say it.
fn wait_also(limit: Duration) -> String {
    let t0 = Instant::now();
    for _ in 0..(limit.as_millis() / 20 + 1) {
        reap_all(0);
        if ALSO_PID.load(Relaxed) == 0 {
            break;
        }
        if t0.elapsed() >= limit {
            break;
        }
        sleep_ms(20);
    }
    if ALSO_PID.load(Relaxed) != 0 {
        return "killed".into();
    }
    match ALSO_STATUS.load(Relaxed) {
        st if libc::WIFEXITED(st) => libc::WEXITSTATUS(st).to_string(),
        st if libc::WIFSIGNALED(st) => format!("sig{}", libc::WTERMSIG(st)),
        st => format!("status{st}"),
    }
}

/// Reaps every zombie child without blocking. Returns the wait status of `pid`
/// if it was among them.
fn reap_all(pid: libc::pid_t) -> Option<libc::c_int> {
    let mut status_of_pid = None;
    for _ in 0..100_000 {
        let mut st = 0;
        // SAFETY: valid out pointer.
        let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if r <= 0 {
            break;
        }
        if r == pid {
            status_of_pid = Some(st);
        }
        if r > 0 && r == ALSO_PID.load(Relaxed) {
            ALSO_STATUS.store(st, Relaxed);
            ALSO_PID.store(0, Relaxed);
        }
    }
    status_of_pid
}

/// Number of live user-space processes other than init (kernel threads and
/// zombies excluded).
fn count_procs() -> usize {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut n = 0;
    let mut buf = [0u8; 512];
    for e in rd.flatten().take(MAX_PROC_SCAN) {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == 1 {
            continue;
        }
        let mut path = [0u8; 32];
        let mut cur = std::io::Cursor::new(&mut path[..]);
        let _ = write!(cur, "/proc/{pid}/stat\0");
        let Ok(p) = CStr::from_bytes_until_nul(&path) else {
            continue;
        };
        // SAFETY: valid path, buffer and length.
        let len = unsafe {
            let fd = libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                continue;
            }
            let len = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            libc::close(fd);
            len
        };
        if len <= 0 {
            continue;
        }
        let stat = &buf[..len as usize];
        // Fields after the last ')': state ppid pgrp session tty tpgid flags ...
        let Some(close) = stat.iter().rposition(|&c| c == b')') else {
            continue;
        };
        let Ok(rest) = std::str::from_utf8(&stat[close + 1..]) else {
            continue;
        };
        let mut f = rest.split_ascii_whitespace();
        let state = f.next().unwrap_or("");
        let flags: u64 = f.nth(5).and_then(|x| x.parse().ok()).unwrap_or(0);
        const PF_KTHREAD: u64 = 0x0020_0000;
        if flags & PF_KTHREAD != 0 || state == "Z" || state == "X" {
            continue;
        }
        n += 1;
    }
    n
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Kills everything but init and reaps it, for at most `limit`. Returns how
/// many processes still exist at the end.
fn kill_all_and_reap(limit: Duration) -> usize {
    let t0 = Instant::now();
    for _ in 0..1000 {
        // SAFETY: kill(-1) from PID 1 signals every process but init itself.
        unsafe { libc::kill(-1, libc::SIGKILL) };
        reap_all(0);
        let n = count_procs();
        if n == 0 || t0.elapsed() > limit {
            return n;
        }
        sleep_ms(20);
    }
    count_procs()
}

struct ChildResult {
    exit: String,
    wall: Duration,
    output_len: usize,
    dropped: usize,
}

/// Runs the command once (round `round`, 1-based), its stdout into `buf`.
fn run_child(cfg: &Config, round: usize, buf: &mut [u8]) -> Result<ChildResult, String> {
    let mut fds = [0; 2];
    // SAFETY: valid out array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(os_err("pipe2"));
    }
    let (rfd, wfd) = (fds[0], fds[1]);
    // The child's end must block.
    // SAFETY: fcntl on our own fd.
    unsafe { libc::fcntl(wfd, libc::F_SETFL, 0) };

    let start = Instant::now();
    let pid = spawn(
        &cfg.run,
        wfd,
        b"guest-init: execve of the run= command failed\n",
    );
    if pid.is_err() {
        // SAFETY: our fds.
        unsafe {
            libc::close(rfd);
            libc::close(wfd);
        }
    }
    let pid = pid?;
    // SAFETY: close our copy of the write end.
    unsafe { libc::close(wfd) };
    if round == 1 {
        out(&format!(
            "===MISBEHAVE-CHILD-START {} pid={pid}===\n",
            cfg.scenario
        ));
    } else {
        out(&format!(
            "===MISBEHAVE-ROUND-START {} i={round} pid={pid}===\n",
            cfg.scenario
        ));
    }

    let deadline = start + cfg.timeout;
    let mut len = 0usize;
    let mut dropped = 0usize;
    let mut scratch = [0u8; 4096];
    let mut pipe_open = true;
    let mut status: Option<libc::c_int> = None;
    let mut timed_out = false;
    // Read whatever the pipe holds right now; false on EOF.
    let mut drain = |len: &mut usize, dropped: &mut usize| -> bool {
        for _ in 0..100_000 {
            let dst: &mut [u8] = if *len < buf.len() {
                &mut buf[*len..]
            } else {
                &mut scratch[..]
            };
            // SAFETY: dst is a valid writable slice.
            let n = unsafe { libc::read(rfd, dst.as_mut_ptr().cast(), dst.len()) };
            if n > 0 {
                if *len < buf.len() {
                    *len += n as usize;
                } else {
                    *dropped += n as usize;
                }
            } else if n == 0 {
                return false;
            } else if errno() == libc::EINTR {
                continue;
            } else {
                return true; // EAGAIN: nothing more for now
            }
        }
        true
    };
    // Bounded by the deadline; the count is a second, generous bound.
    let max_iter = (cfg.timeout.as_millis() / 20 + 1000) as usize;
    for _ in 0..max_iter {
        if let Some(st) = reap_all(pid) {
            status = Some(st);
        }
        if status.is_some() {
            if pipe_open {
                drain(&mut len, &mut dropped);
            }
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            // SAFETY: signalling the child's process group and the child.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGKILL);
            }
            for _ in 0..500 {
                if let Some(st) = reap_all(pid) {
                    status = Some(st);
                    break;
                }
                sleep_ms(10);
            }
            if pipe_open {
                drain(&mut len, &mut dropped);
            }
            break;
        }
        let wait_ms = (deadline - now).as_millis().min(50) as libc::c_int;
        if pipe_open {
            let mut pfd = libc::pollfd {
                fd: rfd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, wait_ms.max(1)) };
            if r > 0 && !drain(&mut len, &mut dropped) {
                pipe_open = false;
            }
        } else {
            sleep_ms(wait_ms.max(1) as u64);
        }
    }
    let wall = start.elapsed();
    // SAFETY: our fd.
    unsafe { libc::close(rfd) };
    let exit = if timed_out {
        "timeout".to_string()
    } else {
        match status {
            None => "timeout".to_string(), // loop bound reached: treat as timeout
            Some(st) if libc::WIFEXITED(st) => libc::WEXITSTATUS(st).to_string(),
            Some(st) if libc::WIFSIGNALED(st) => format!("sig{}", libc::WTERMSIG(st)),
            Some(st) => format!("status{st}"),
        }
    };
    Ok(ChildResult {
        exit,
        wall,
        output_len: len,
        dropped,
    })
}

// ------------------------------------------------------------------- main --

fn run(args: &[String]) -> Result<(), String> {
    mount_all()?;
    write_file("/proc/self/oom_score_adj", "-1000")?;
    // SAFETY: plain syscall.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, -20) };
    let cfg = parse_args(args)?;
    match cfg.selftest.as_deref() {
        None => {}
        Some("init-panic") => panic!("selftest=init-panic: init panics on purpose"),
        Some("init-exit") => {
            out("guest-init: selftest=init-exit: PID 1 exits, the kernel panics\n");
            std::process::exit(3);
        }
        Some("init-hang") => {
            out("guest-init: selftest=init-hang: PID 1 sleeps for an hour\n");
            for _ in 0..3600 {
                sleep_ms(1000);
            }
        }
        Some(other) => return Err(format!("unknown selftest={other}")),
    }
    load_modules();
    if cfg.net {
        setup_net(cfg.ip)?;
    }
    if let Some((dev, dir, fstype)) = &cfg.mount {
        mount_disk(dev, dir, fstype)?;
    }

    let mut buf = vec![0u8; REPORT_CAP];
    if !cfg.also.is_empty() {
        let pid = start_also(&cfg.also)?;
        out(&format!(
            "===MISBEHAVE-ALSO-START {} pid={pid}===\n",
            cfg.scenario
        ));
    }
    let res = run_child(&cfg, 1, &mut buf)?;
    out(&format!("===MISBEHAVE-CHILD-END {}===\n", cfg.scenario));
    let also_exit = (!cfg.also.is_empty()).then(|| wait_also(cfg.also_wait));
    let (left, remaining) = clean_up();

    let report = &buf[..res.output_len];
    // One round: the floor three times (the harness takes the median). More rounds: once
    // after each, so that each measurement has a floor taken in the same moment.
    let floors = if cfg.rounds == 1 { 3 } else { 1 };
    measure_floors(cfg.floor, report, floors);
    let mut more = Vec::new();
    for round in 2..=cfg.rounds {
        more.resize(REPORT_CAP, 0);
        let r = run_child(&cfg, round, &mut more)?;
        let (procs_left, _) = clean_up();
        let rep = &more[..r.output_len];
        let field = |keys: &[&str]| json_number(rep, keys).unwrap_or_else(|| "?".into());
        out(&format!(
            "===MISBEHAVE-ROUND i={round} exit={} wall_s={:.3} teardown_s={} live_procs={} procs_left={procs_left}===\n",
            r.exit,
            r.wall.as_secs_f64(),
            field(&["\"teardown_s\""]),
            field(&["\"peaks\"", "\"live_procs\""]),
        ));
        measure_floors(cfg.floor, rep, floors);
    }

    if let Some((_, dir, _)) = &cfg.mount {
        let d = cstring(dir);
        // SAFETY: a valid path; the disk is thrown away after the run anyway.
        unsafe { libc::umount2(d.as_ptr(), 0) };
    }

    // Keep kernel messages off the console while the report is printed.
    // SAFETY: SYSLOG_ACTION_CONSOLE_LEVEL takes no buffer.
    unsafe { libc::klogctl(8, std::ptr::null_mut(), 1) };
    if res.dropped > 0 {
        out(&format!(
            "===MISBEHAVE-NOTE stdout truncated to {} bytes, {} dropped===\n",
            res.output_len, res.dropped
        ));
    }
    out(&format!(
        "\n===MISBEHAVE-REPORT-BEGIN {}===\n",
        cfg.scenario
    ));
    out_bytes(report);
    if !report.ends_with(b"\n") {
        out("\n");
    }
    out(&format!(
        "===MISBEHAVE-REPORT-END {} exit={} wall_s={:.3}===\n===MISBEHAVE-PROCS-LEFT {left}===\n",
        cfg.scenario,
        res.exit,
        res.wall.as_secs_f64()
    ));
    if remaining > 0 {
        out(&format!(
            "===MISBEHAVE-NOTE {remaining} processes survived SIGKILL for 5 s===\n"
        ));
    }
    if let Some(exit) = also_exit {
        let mut also = std::fs::read(ALSO_OUT.to_str().unwrap_or_default()).unwrap_or_default();
        also.truncate(REPORT_CAP);
        out(&format!("===MISBEHAVE-ALSO-BEGIN {}===\n", cfg.scenario));
        out_bytes(&also);
        if !also.ends_with(b"\n") {
            out("\n");
        }
        out(&format!(
            "===MISBEHAVE-ALSO-END {} exit={exit}===\n",
            cfg.scenario
        ));
    }
    out("===MISBEHAVE-POWEROFF===\n");
    Ok(())
}

// ------------------------------------------------------------------ floor --

/// Once the command has ended: a grace of up to 500 ms for processes already on their
/// way out, then SIGKILL for whatever is left. Returns (processes left after the grace,
/// processes that survived the kill for 5 s).
fn clean_up() -> (usize, usize) {
    let mut left = count_procs();
    for _ in 0..25 {
        if left == 0 {
            break;
        }
        reap_all(0);
        sleep_ms(20);
        left = count_procs();
    }
    let remaining = if left > 0 {
        kill_all_and_reap(Duration::from_secs(5))
    } else {
        0
    };
    (left, remaining)
}

/// The number that follows the last of `keys` in a JSON report, each key searched after
/// the one before (`["\"peaks\"", "\"live_procs\""]`: the peak of live processes).
fn json_number(report: &[u8], keys: &[&str]) -> Option<String> {
    let mut at = std::str::from_utf8(report).ok()?;
    for k in keys {
        at = &at[at.find(k)? + k.len()..];
    }
    let num: String = at
        .trim_start_matches([':', ' '])
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!num.is_empty()).then_some(num)
}

/// `floor=`: `times` floor measurements for this round's report.
fn measure_floors(floor: Option<Floor>, report: &[u8], times: usize) {
    let n = match floor {
        Some(Floor::Count(n)) => n,
        Some(Floor::Peak) => {
            match json_number(report, &["\"peaks\"", "\"live_procs\""]).and_then(|n| n.parse().ok())
            {
                Some(n) if n > 0 => n,
                _ => {
                    out("===MISBEHAVE-NOTE floor=peak: no live_procs peak in the report===\n");
                    return;
                }
            }
        }
        None => return,
    };
    for _ in 0..times {
        measure_floor(n);
    }
}

/// Runs `/init --floor N` as a fresh process (not a copy of PID 1's memory) and waits for
/// it; it prints the FLOOR marker itself.
fn measure_floor(n: usize) {
    let argv = [
        cstring("/init"),
        cstring("--floor"),
        cstring(&n.to_string()),
    ];
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: PID 1 is single-threaded here; the child only execs or exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: valid NUL-terminated argv; environment left empty.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, 0, 0);
            let env: [*const libc::c_char; 1] = [std::ptr::null()];
            libc::execve(ptrs[0], ptrs.as_ptr(), env.as_ptr());
            libc::_exit(127);
        }
    }
    if pid < 0 {
        out(&format!("===MISBEHAVE-NOTE floor: {}===\n", os_err("fork")));
        return;
    }
    let mut st = 0;
    // SAFETY: valid out pointer.
    while unsafe { libc::waitpid(pid, &mut st, 0) } < 0 && errno() == libc::EINTR {}
    reap_all(0);
}

/// `--floor N` (as a child of init): N sleeping processes in one group, then one
/// killpg(SIGKILL) and the reaping of every one of them, timed.
fn floor_mode(n: usize) -> i32 {
    let lead = spawn_sleeper(0);
    if lead < 0 {
        println!("===MISBEHAVE-NOTE floor: {}===", os_err("fork"));
        return 1;
    }
    let mut made = 1;
    while made < n && spawn_sleeper(lead) > 0 {
        made += 1;
    }
    let s = kill_and_reap(lead, made);
    println!("===MISBEHAVE-FLOOR n={made} s={s:.3}===");
    0
}

/// fork(2); the child joins group `pgid` (0: leads one of its own) and sleeps until killed.
fn spawn_sleeper(pgid: libc::pid_t) -> libc::pid_t {
    // SAFETY: this process is single-threaded; the child only sets its group and sleeps.
    let c = unsafe { libc::fork() };
    if c == 0 {
        // SAFETY: plain syscalls in a freshly forked single-threaded child.
        unsafe {
            libc::setpgid(0, pgid);
            loop {
                libc::pause();
            }
        }
    }
    if c > 0 {
        // SAFETY: plain syscall (both sides set the group, so neither races the other).
        unsafe { libc::setpgid(c, if pgid == 0 { c } else { pgid }) };
    }
    c
}

/// Once the `n` processes of group `lead` have settled (they were runnable right after
/// fork): one killpg(SIGKILL) and the reaping of every child, adopted orphans included.
/// Returns the seconds that took.
fn kill_and_reap(lead: libc::pid_t, n: usize) -> f64 {
    sleep_ms(1000 + n as u64 / 4);
    let t0 = Instant::now();
    // SAFETY: plain syscall.
    unsafe { libc::killpg(lead, libc::SIGKILL) };
    let mut st = 0;
    // SAFETY: valid out pointer; blocks until a child ends, ECHILD once none is left.
    while unsafe { libc::waitpid(-1, &mut st, 0) } >= 0 || errno() == libc::EINTR {}
    t0.elapsed().as_secs_f64()
}

// ------------------------------------------------------------- child mode --

fn child_mode(args: &[String]) -> i32 {
    match args.first().map(String::as_str) {
        Some("--floor") => match args.get(1).and_then(|a| a.parse().ok()) {
            Some(n) => floor_mode(n),
            None => 2,
        },
        Some("--selftest-hang") => {
            eprintln!("selftest-hang: sleeping for an hour");
            for _ in 0..3600 {
                sleep_ms(1000);
            }
            0
        }
        Some("--selftest-ok") => {
            // One spinning thread per CPU for SECS (default 3) seconds, sampled every
            // second; the report has the shape of a cpubomb report.
            let secs: u64 = args
                .get(1)
                .and_then(|a| a.parse().ok())
                .unwrap_or(3)
                .min(600);
            selftest_burn(Duration::from_secs(secs));
            0
        }
        Some("--selftest-orphans") => {
            // Leaves three sleeping orphans behind: init must count and kill them.
            for _ in 0..3 {
                // SAFETY: fork in a single-threaded process; the child only sleeps.
                if unsafe { libc::fork() } == 0 {
                    for _ in 0..3600 {
                        // SAFETY: plain syscall.
                        unsafe { libc::sleep(1) };
                    }
                    // SAFETY: plain syscall.
                    unsafe { libc::_exit(0) };
                }
            }
            println!("{{\"schema\":\"misbehave.report/1\",\"tool\":\"guest-init-selftest\",\"outcome\":\"completed\"}}");
            0
        }
        _ => {
            eprintln!(
                "guest-init is the /init of scripts/guest-test guests; as PID {} it only offers\n\
                 --selftest-ok | --selftest-hang | --selftest-orphans",
                std::process::id()
            );
            2
        }
    }
}

fn selftest_burn(dur: Duration) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ops = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..n)
        .map(|_| {
            let ops = Arc::clone(&ops);
            std::thread::spawn(move || {
                let mut x = 1u64;
                while t0.elapsed() < dur {
                    for i in 0..10_000u64 {
                        x = std::hint::black_box(x.wrapping_mul(i | 1).wrapping_add(i));
                    }
                    ops.fetch_add(10_000, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut samples = String::new();
    for i in 1..=dur.as_secs() {
        let next = Duration::from_secs(i);
        if let Some(wait) = next.checked_sub(t0.elapsed()) {
            std::thread::sleep(wait);
        }
        if !samples.is_empty() {
            samples.push(',');
        }
        samples.push_str(&format!(
            "{{\"t\":{:.3},\"ops\":{}}}",
            t0.elapsed().as_secs_f64(),
            ops.load(Ordering::Relaxed)
        ));
    }
    let mut exited = 0;
    for w in workers {
        exited += usize::from(w.join().is_ok());
    }
    let elapsed = t0.elapsed().as_secs_f64();
    // SAFETY: valid out pointer.
    let cpu_s = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    };
    println!(
        "{{\"schema\":\"misbehave.report/1\",\"tool\":\"guest-init-selftest\",\"outcome\":\"completed\",\
         \"elapsed_s\":{elapsed:.3},\"workers\":{{\"started\":{n},\"exited\":{exited},\"killed\":0,\"oom_killed\":0}},\
         \"totals\":{{\"ops\":{},\"cpu_s\":{cpu_s:.3}}},\"samples\":[{samples}],\
         \"details\":{{\"load_pct\":{:.1}}}}}",
        ops.load(Ordering::Relaxed),
        100.0 * cpu_s / (elapsed * n as f64)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // SAFETY: plain syscall.
    if unsafe { libc::getpid() } != 1 {
        std::process::exit(child_mode(&args));
    }
    std::panic::set_hook(Box::new(|info| {
        out(&format!(
            "\n===MISBEHAVE-INIT-ERROR panic: {}===\n",
            one_line(&info.to_string())
        ));
        poweroff();
    }));
    if let Err(e) = run(&args) {
        out(&format!("\n===MISBEHAVE-INIT-ERROR {}===\n", one_line(&e)));
    }
    poweroff();
}
