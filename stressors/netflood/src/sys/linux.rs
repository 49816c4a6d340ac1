//! Linux: UDP batches (sendmmsg with GSO, recvmmsg with GRO), and the packet engine's
//! AF_PACKET TX ring with the rtnetlink queries that find its way out.

use nix::errno::Errno;

use super::LinkPath;

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
    nix::errno::Errno::result(r)
        .map(drop)
        .map_err(common::error::errno_text)
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
    Ok(nix::errno::Errno::result(n)? as usize * per_msg)
}

/// Takes up to `buf.len()` bytes off a TCP stream without copying them out (MSG_TRUNC
/// discards them in the kernel; `buf` stays untouched): a sink counts bytes and has no use
/// for them. Ok(0) at the end of the stream.
pub fn tcp_discard(fd: i32, buf: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: a buffer of ours of the length given (the kernel writes nothing to it).
    let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_TRUNC) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Makes poll(2) call a TCP stream readable only once `bytes` are in (SO_RCVLOWAT; the
/// kernel grows the receive buffer to hold them).
pub fn tcp_lowat(fd: i32, bytes: usize) -> Result<(), String> {
    setsockopt_int(
        fd,
        libc::SOL_SOCKET,
        libc::SO_RCVLOWAT,
        bytes as libc::c_int,
    )
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
    /// MSG_WAITFORONE works here; cleared at its first EINVAL (gVisor refuses the flag).
    wait_for_one: bool,
    /// MSG_TRUNC for buffers that take only the start of what arrives, else 0.
    trunc: i32,
}

/// One received buffer.
pub struct Received<'a> {
    /// The bytes: one datagram, or several of `seg` bytes (the last may be shorter); with
    /// [`UdpRx::heads`], only the first bytes of them.
    pub data: &'a [u8],
    /// The length of what arrived (of `data`, unless only its start was read).
    pub len: usize,
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
            wait_for_one: true,
            trunc: 0,
        }
    }

    /// `n` buffers that take only the first `cap` bytes of each datagram or GRO batch, and
    /// the length of all of it (MSG_TRUNC): the payload is not copied out, so the receiving
    /// CPU never pulls it from the cache of the CPU that wrote it (on loopback and veth the
    /// sender's, which then writes the next datagrams into memory it still holds).
    pub fn heads(n: usize, cap: usize) -> Self {
        Self {
            trunc: libc::MSG_TRUNC,
            ..Self::new(n, cap)
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
        self.got = 0;
        let got = if !wait {
            self.mmsg(fd, 0, n, libc::MSG_DONTWAIT)?
        } else if self.wait_for_one {
            match self.mmsg(fd, 0, n, libc::MSG_WAITFORONE) {
                Err(nix::errno::Errno::EINVAL) => {
                    self.wait_for_one = false;
                    self.wait_then_drain(fd, n)?
                }
                r => r?,
            }
        } else {
            self.wait_then_drain(fd, n)?
        };
        self.got = got;
        Ok(got)
    }

    /// Without MSG_WAITFORONE: a blocking receive of one buffer (the socket's timeout
    /// applies), then what else is already queued, without waiting.
    fn wait_then_drain(&mut self, fd: i32, n: usize) -> Result<usize, nix::errno::Errno> {
        let first = self.mmsg(fd, 0, 1, 0)?;
        if first == 0 || n == 1 {
            return Ok(first);
        }
        match self.mmsg(fd, 1, n - 1, libc::MSG_DONTWAIT) {
            Ok(more) => Ok(1 + more),
            Err(_) => Ok(1),
        }
    }

    /// recvmmsg into headers `from..from + len`.
    fn mmsg(
        &mut self,
        fd: i32,
        from: usize,
        len: usize,
        flags: i32,
    ) -> Result<usize, nix::errno::Errno> {
        let hdr = &mut self.hdr[from..from + len];
        let flags = flags | self.trunc;
        // SAFETY: every header points at buffers owned by self, alive across the call, and
        // `hdr` holds `len` of them.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                hdr.as_mut_ptr(),
                len as _,
                flags as _,
                std::ptr::null_mut(),
            )
        };
        Ok(nix::errno::Errno::result(r)? as usize)
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
            data: &self.bufs[j * self.cap..j * self.cap + len.min(self.cap)],
            len,
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
        nix::errno::Errno::result(unsafe { libc::sendmsg(fd, &h, 0) }).map(drop)
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
                        return Err(common::error::errno_text(Errno::from_raw(-e)));
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
pub fn link_path(dst: std::net::SocketAddr) -> Result<LinkPath, String> {
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
            && !std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{ifname}/route_localnet"))
                .is_ok_and(|v| v.trim() == "1")
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
    Ok(LinkPath {
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
                format!("AF_PACKET socket: {}", common::error::errno_text(e))
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
        let page = common::sys::page_size();
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
        Errno::result(r).map(drop)
    }
}

impl Drop for PacketTx {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in `new`, used by nothing after this.
        unsafe { libc::munmap(self.ring.cast(), self.ring_len) };
    }
}
