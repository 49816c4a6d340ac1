//! illumos (and any other Unix without the Linux interfaces): one datagram per call, no
//! GSO, GRO or drop counts. The packet engine is not here: the plan refuses it.

/// No sendmmsg on illumos: one send(2) per datagram.
pub fn udp_send(
    fd: i32,
    buf: &[u8],
    seg: usize,
    per_msg: usize,
    msgs: usize,
) -> Result<usize, nix::errno::Errno> {
    let mut sent = 0;
    for k in 0..per_msg * msgs {
        // SAFETY: a slice of `buf` (checked by the caller's sizes) for the length given.
        let r = unsafe { libc::send(fd, buf[k * seg..].as_ptr().cast(), seg, 0) };
        if r < 0 {
            return if sent > 0 {
                Ok(sent)
            } else {
                Err(nix::errno::Errno::last())
            };
        }
        sent += 1;
    }
    Ok(sent)
}

/// No UDP GSO on illumos.
pub fn udp_gso(_fd: i32, _seg: usize) -> Result<(), String> {
    Err("UDP_SEGMENT (GSO) is Linux only".into())
}

/// Not set on illumos: its sink reads whatever has arrived.
pub fn tcp_lowat(_fd: i32, _bytes: usize) -> Result<(), String> {
    Err("SO_RCVLOWAT for poll(2) is set on Linux only".into())
}

/// Reads up to `buf.len()` bytes off a TCP stream into `buf` (illumos has no MSG_TRUNC that
/// discards them). Ok(0) at the end of the stream.
pub fn tcp_discard(fd: i32, buf: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: reading into our own buffer of its length.
    let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Receive batches of one: recvfrom(2) (no recvmmsg, GRO or drop counts on illumos).
pub struct UdpRx {
    buf: Vec<u8>,
    from: libc::sockaddr_storage,
    from_len: libc::socklen_t,
    len: usize,
}

/// One received datagram.
pub struct Received<'a> {
    pub data: &'a [u8],
    pub len: usize,
    pub seg: usize,
    pub drops: Option<u32>,
}

impl UdpRx {
    pub fn new(_n: usize, cap: usize) -> Self {
        Self {
            buf: vec![0; cap],
            // SAFETY: a zeroed sockaddr_storage is a valid initial value.
            from: unsafe { std::mem::zeroed() },
            from_len: 0,
            len: 0,
        }
    }

    /// Whole datagrams: illumos's recvfrom has no MSG_TRUNC that returns the full length.
    pub fn heads(n: usize, _cap: usize) -> Self {
        Self::new(n, 64 << 10)
    }

    pub fn enable(_fd: i32) -> (Result<(), String>, Result<(), String>) {
        (
            Err("UDP_GRO is Linux only".into()),
            Err("SO_RXQ_OVFL is Linux only".into()),
        )
    }

    pub fn recv(&mut self, fd: i32, wait: bool) -> Result<usize, nix::errno::Errno> {
        self.from_len = std::mem::size_of::<libc::sockaddr_storage>() as _;
        // SAFETY: our buffer and address storage, alive across the call.
        let r = unsafe {
            libc::recvfrom(
                fd,
                self.buf.as_mut_ptr().cast(),
                self.buf.len(),
                if wait { 0 } else { libc::MSG_DONTWAIT },
                (&mut self.from as *mut libc::sockaddr_storage).cast(),
                &mut self.from_len,
            )
        };
        self.len = nix::errno::Errno::result(r)? as usize;
        Ok(1)
    }

    pub fn get(&self, _j: usize) -> Received<'_> {
        Received {
            data: &self.buf[..self.len],
            len: self.len,
            seg: self.len.max(1),
            drops: None,
        }
    }

    pub fn reply(&self, fd: i32, _j: usize) -> Result<(), nix::errno::Errno> {
        // SAFETY: our buffer and the address it came from.
        let r = unsafe {
            libc::sendto(
                fd,
                self.buf.as_ptr().cast(),
                self.len,
                0,
                (&self.from as *const libc::sockaddr_storage).cast(),
                self.from_len,
            )
        };
        nix::errno::Errno::result(r).map(drop)
    }
}

/// No SO_REUSEPORT on illumos: one socket per port.
pub fn reuse_port(_fd: i32) -> Result<(), String> {
    Err("SO_REUSEPORT is not available on illumos".into())
}

/// No sendmmsg/recvmmsg here: one datagram per call.
pub const UDP_BATCHES: bool = false;
