//! Kernel modules: the virtio drivers (and whatever else) the initramfs carries under
//! /lib/modules, loaded with finit_module(2) and the parameters the kernel command line
//! gives them, as modprobe would.

use std::ffi::CString;
use std::os::fd::AsRawFd;

use crate::console::out;
use crate::sys::errno;

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

pub(crate) fn load_modules() {
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
