//! Network: brings up `lo` and `eth0` with ioctl(2) (no netlink, no tools in the
//! initramfs): qemu user networking's address and default route, or the address of `ip=`.

use std::ffi::CStr;
use std::time::{Duration, Instant};

use crate::console::out;
use crate::sys::os_err;

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

pub(crate) fn setup_net(ip: Option<([u8; 4], u8)>) -> Result<(), String> {
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
