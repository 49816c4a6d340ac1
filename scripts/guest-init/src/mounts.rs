//! Mounts: the pseudo file systems init needs first (`/proc`, `/sys`, `/dev`, `/tmp`),
//! and the scratch disk of `mount=`.

use std::time::{Duration, Instant};

use crate::console::out;
use crate::sys::{cstring, errno, os_err, sleep_ms};

pub(crate) fn mount_fs(
    fstype: &str,
    target: &str,
    flags: libc::c_ulong,
    data: &str,
) -> Result<(), String> {
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

pub(crate) fn mount_all() -> Result<(), String> {
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
pub(crate) fn mount_disk(dev: &str, dir: &str, fstype: &str) -> Result<(), String> {
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
