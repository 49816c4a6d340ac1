//! netflood's own platform code: UDP batches (sendmmsg with GSO, recvmmsg with GRO) with
//! their one-datagram-per-call stand-ins elsewhere, and the packet engine's AF_PACKET TX
//! ring and rtnetlink queries (Linux only: elsewhere the plan refuses `--engine packet`
//! with "needs Linux"). What other binaries share stays in `common::sys`.
//!
//! Both modules export the same UDP names; the illumos clippy run keeps them in step.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(not(target_os = "linux"))]
mod illumos;
#[cfg(not(target_os = "linux"))]
pub use illumos::*;

/// Where Ethernet frames to a target leave this host (for the packet engine): the
/// interface, its MAC and MTU, and the next hop's MAC (zeros on loopback).
// Off Linux the plan refuses the packet engine, so none is made there; the plan still
// holds an (empty) list of them.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPath {
    pub ifindex: u32,
    pub ifname: String,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub mtu: usize,
    /// The gateway, or the target itself when it is on the link.
    pub next_hop: std::net::IpAddr,
    /// This host's address on the path (the kernel's source address selection).
    pub src_ip: std::net::IpAddr,
}
