//! The command line: the kernel hands everything after `--` on its command line to init
//! as argv, `key=value` words parsed here into a [`Config`]. The markers named below are
//! described in [`crate::console`].
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
//!   follows the main report between the `ALSO-BEGIN` and `ALSO-END` markers.
//! * `mount=DEV:DIR:FSTYPE` mount a scratch disk (e.g. `mount=/dev/vda:/mnt:ext4`, the
//!   virtio-blk disk a cloud VM would have) after the modules are loaded; waits up to 5 s
//!   for DEV to appear, and unmounts it before the report.
//! * `floor=N|peak`  after the command, measure the teardown floor of this guest: a fresh
//!   process forks N children that sleep in one process group, then times one
//!   `killpg(SIGKILL)` and the reaping of all of them (what a bare program needs to remove
//!   N processes here). `peak` takes N from the report's `"live_procs"` peak. Prints a
//!   `FLOOR` marker, before the report: once after every round (`rounds=`), three times
//!   when there is one round.
//! * `rounds=N`      run the command N times (1..10, default 1), one after the other, so
//!   that a measurement can be paired with the floor taken right after it (a guest under
//!   software emulation on a busy host drifts). The report printed is the first round's;
//!   every later round prints a `ROUND` marker once it and all it left are gone.
//! * `poweroff=reboot` end with reboot(RB_AUTOBOOT), not RB_POWER_OFF (for x86
//!   microvm with acpi=off, which cannot power off; qemu -no-reboot exits).
//! * `MODULE.PARAM=VALUE` (anywhere on the kernel command line) is passed to
//!   that module when init loads it, like modprobe does.
//! * `selftest=init-panic|init-exit|init-hang` make init itself misbehave
//!   (harness self-tests only).
//! * `soak=PATH`     soak mode ([`crate::soak`], for `scripts/soak`): run the steps of the
//!   plan file PATH instead of `run=` (which is still required, and ignored).

use std::ffi::CString;
use std::time::Duration;

use crate::console::out;

#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) scenario: String,
    pub(crate) timeout: Duration,
    pub(crate) run: Vec<CString>,
    pub(crate) net: bool,
    pub(crate) selftest: Option<String>,
    /// (device, directory, filesystem type) of a scratch disk to mount.
    pub(crate) mount: Option<(String, String, String)>,
    /// Measure the teardown floor after the command (see `floor=`).
    pub(crate) floor: Option<Floor>,
    /// How many times to run the command (see `rounds=`).
    pub(crate) rounds: usize,
    /// eth0's address and prefix length (`ip=`); None: qemu user networking's.
    pub(crate) ip: Option<([u8; 4], u8)>,
    /// The command run beside the main one (`also=`).
    pub(crate) also: Vec<CString>,
    /// How long to wait for `also` to end once the main command has.
    pub(crate) also_wait: Duration,
    /// The plan file of soak mode (`soak=`).
    pub(crate) soak: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Floor {
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
pub(crate) fn parse_argv(key: &str, v: &str) -> Result<Vec<CString>, String> {
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

pub(crate) fn parse_args(args: &[String]) -> Result<Config, String> {
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
        soak: None,
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
            "poweroff" => {
                crate::REBOOT_INSTEAD.store(v == "reboot", std::sync::atomic::Ordering::Relaxed)
            }
            // module.param=value: handed to that module by load_modules().
            _ if k.contains('.') => {}
            "selftest" => cfg.selftest = Some(v.into()),
            "soak" => cfg.soak = Some(v.into()),
            _ => out(&format!("guest-init: ignoring unknown key {k:?}\n")),
        }
    }
    if cfg.run.is_empty() && cfg.selftest.is_none() {
        return Err("no run= on the kernel command line (after --)".into());
    }
    Ok(cfg)
}
