//! `--engine packet`: prebuilt UDP frames (Ethernet, IPv4 or IPv6, UDP, our header) sent
//! through an AF_PACKET TX ring (`crate::sys::PacketTx`). Every frame of a worker's ring is
//! filled once with the worker's template; a send rewrites only the sequence number, the
//! send time and the UDP checksum (updated from the template's sum, RFC 1624 style).

use std::net::{IpAddr, SocketAddr};

use crate::sys::LinkPath;

/// Ethernet + IP + UDP header bytes in front of the payload.
pub fn overhead(ip: &IpAddr) -> usize {
    14 + if ip.is_ipv4() { 20 } else { 40 } + 8
}

/// The one's-complement sum of `b` as big-endian 16-bit words (not folded).
fn sum16(b: &[u8]) -> u32 {
    let mut s = 0u32;
    let mut it = b.chunks_exact(2);
    for w in &mut it {
        s += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = it.remainder() {
        s += u32::from(*last) << 8;
    }
    s
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The checksum to write for a sum: complemented, and 0 sent as 0xffff (UDP).
fn udp_csum(s: u32) -> u16 {
    match !fold(s) {
        0 => 0xffff,
        c => c,
    }
}

/// A frame template: the frame's bytes with sequence and time zero, where the UDP
/// checksum and the payload start, and the template's UDP sum without those fields.
pub struct Template {
    pub frame: Vec<u8>,
    pub payload: usize,
    csum_at: usize,
    base: u32,
}

impl Template {
    /// A frame of `size` payload bytes from `src` to `dst` on `path`; the payload is our
    /// header (`head`: magic, run and worker stamped, sequence and time zero) then zeros.
    pub fn new(
        path: &LinkPath,
        src: SocketAddr,
        dst: SocketAddr,
        size: usize,
        head: &[u8],
    ) -> Self {
        let v4 = dst.is_ipv4();
        let mut f = Vec::with_capacity(overhead(&dst.ip()) + size);
        f.extend_from_slice(&path.dst_mac);
        f.extend_from_slice(&path.src_mac);
        f.extend_from_slice(&(if v4 { 0x0800u16 } else { 0x86dd }).to_be_bytes());
        let udp_len = (8 + size) as u16;
        let (s, d) = (ip_bytes(src.ip()), ip_bytes(dst.ip()));
        if v4 {
            let ip = f.len();
            f.extend_from_slice(&[0x45, 0]);
            f.extend_from_slice(&(20 + udp_len).to_be_bytes());
            // Identification 0, don't fragment, TTL 64, UDP, checksum below.
            f.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
            f.extend_from_slice(&s);
            f.extend_from_slice(&d);
            let c = !fold(sum16(&f[ip..ip + 20]));
            f[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
        } else {
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&udp_len.to_be_bytes());
            f.extend_from_slice(&[17, 64]);
            f.extend_from_slice(&s);
            f.extend_from_slice(&d);
        }
        let udp = f.len();
        f.extend_from_slice(&src.port().to_be_bytes());
        f.extend_from_slice(&dst.port().to_be_bytes());
        f.extend_from_slice(&udp_len.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        let payload = f.len();
        f.extend_from_slice(head);
        f.resize(payload + size, 0);
        // Pseudo-header (addresses, protocol, UDP length) and the UDP header and payload.
        let base = sum16(&s) + sum16(&d) + 17 + u32::from(udp_len) + sum16(&f[udp..]);
        let mut t = Template {
            frame: f,
            payload,
            csum_at: udp + 6,
            base,
        };
        let c = t.checksum(0, 0);
        t.frame[udp + 6..udp + 8].copy_from_slice(&c.to_be_bytes());
        t
    }

    /// The UDP checksum of the template with `seq` and `ns` stamped.
    fn checksum(&self, seq: u64, ns: u64) -> u16 {
        udp_csum(self.base + sum16(&seq.to_le_bytes()) + sum16(&ns.to_le_bytes()))
    }

    /// Stamps `seq` and `ns` into `frame` (a copy of the template) and fixes its checksum.
    #[inline]
    pub fn stamp(&self, frame: &mut [u8], seq: u64, ns: u64) {
        let p = self.payload;
        frame[p + 16..p + 24].copy_from_slice(&seq.to_le_bytes());
        frame[p + 24..p + 32].copy_from_slice(&ns.to_le_bytes());
        let c = self.checksum(seq, ns);
        frame[self.csum_at..self.csum_at + 2].copy_from_slice(&c.to_be_bytes());
    }
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> LinkPath {
        LinkPath {
            ifindex: 1,
            ifname: "lo".into(),
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            mtu: 1500,
            next_hop: "10.0.0.2".parse().unwrap(),
            src_ip: "10.0.0.1".parse().unwrap(),
        }
    }

    /// The UDP checksum from scratch: pseudo-header plus the whole datagram sums to 0xffff.
    fn verify(f: &[u8], v4: bool) {
        let (ip, l3) = (14, if v4 { 20 } else { 40 });
        let udp = &f[ip + l3..];
        let (s, d) = if v4 {
            (&f[ip + 12..ip + 16], &f[ip + 16..ip + 20])
        } else {
            (&f[ip + 8..ip + 24], &f[ip + 24..ip + 40])
        };
        let total = sum16(s) + sum16(d) + 17 + udp.len() as u32 + sum16(udp);
        assert_eq!(fold(total), 0xffff, "UDP checksum");
        if v4 {
            assert_eq!(fold(sum16(&f[ip..ip + 20])), 0xffff, "IPv4 header checksum");
        }
    }

    #[test]
    fn frames_carry_correct_checksums_after_every_stamp() {
        for (src, dst) in [
            ("10.0.0.1:40000", "10.0.0.2:9000"),
            ("[fd00::1]:40000", "[fd00::2]:9000"),
        ] {
            let (src, dst): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
            for size in [32, 33, 64, 1472] {
                let mut head = [0u8; crate::HEADER];
                crate::stamp(&mut head, 0xdead_beef, 3, 0, 0);
                let t = Template::new(&path(), src, dst, size, &head);
                assert_eq!(t.frame.len(), overhead(&dst.ip()) + size);
                verify(&t.frame, dst.is_ipv4());
                let mut f = t.frame.clone();
                for (seq, ns) in [(1, 2), (u64::MAX, u64::MAX), (0x1234_5678_9abc, 77)] {
                    t.stamp(&mut f, seq, ns);
                    verify(&f, dst.is_ipv4());
                    assert_eq!(
                        crate::parse(&f[t.payload..]),
                        Some((0xdead_beef, 3, seq, ns))
                    );
                }
            }
        }
    }
}
