//! `netflood`: the isolation paper's network tests, every end in one static binary.
//!
//! - `send` floods UDP (or TCP) to the targets named, and nowhere else: the paper's
//!   "server transmits" stress. Datagrams go out in `sendmmsg` batches, each message
//!   carrying up to 128 datagrams through UDP GSO (`UDP_SEGMENT`) where the kernel and the
//!   device take it (probed at start; otherwise plain `sendmmsg`, or `send` on illumos):
//!   a syscall per thousands of datagrams, where iperf3 makes one `write()` per datagram.
//! - `sink` receives as fast as it can (`recvmmsg`, `UDP_GRO`, one `SO_REUSEPORT` socket per
//!   worker, polling while data keeps coming, copying out headers and not payloads): the
//!   paper's external receiver and its "server receives" stress in one. Every datagram
//!   carries a small header (run id, sender worker, 64-bit sequence, send time), so the sink
//!   reports per sender what arrived, what was lost, reordered or duplicated (a
//!   1,024-datagram window: a late duplicate beyond it counts as reordered), and the drops
//!   its own socket saw (`SO_RXQ_OVFL`) apart from those on the path.
//! - `echo` reflects every datagram to its sender, so `send --echo` measures round-trip
//!   latency without synchronised clocks; the well-behaved probe uses it too.
//!
//! Safety: traffic goes only to the targets named. Broadcast, multicast and unspecified
//! addresses and port 0 are refused (exit 2) unless `--allow-broadcast` for the first two.
//! A sender that meets ECONNREFUSED, ENETUNREACH or ENOBUFS keeps going and counts it: a
//! dead receiver is normal in a flood.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use nix::errno::Errno;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use common::units::{parse_rate, RateKind};
use common::{
    time, CommonArgs, Error, Findings, Found, Host, MetricId, Metrics, RateCap, RunData, Stressor,
    Worker,
};

#[cfg(target_os = "linux")]
mod packet;
mod sys;

use sys::UdpRx;

/// Transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Proto {
    Udp,
    Tcp,
}

/// How datagrams leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// UDP sockets (sendmmsg, GSO)
    Socket,
    /// Prebuilt frames through an AF_PACKET TX ring (Linux, CAP_NET_RAW)
    Packet,
}

/// A rate: datagrams (or TCP writes) per second, or bytes per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    Packets(f64),
    Bytes(f64),
}

/// A sender worker's share of `--rate`, the cap shared by every worker of the run.
struct SendCap {
    cap: RateCap,
    /// Tokens are bytes (`--rate` in bit/s), not datagrams or writes.
    bytes: bool,
    /// Bytes each datagram or write takes of the cap.
    size: usize,
    /// This worker's share in datagrams (or writes) per second.
    per_worker: f64,
}

impl SendCap {
    fn new(rate: Option<Rate>, workers: usize, size: usize) -> Option<Self> {
        let (cap, bytes) = match rate? {
            Rate::Packets(p) => (RateCap::new(0, p), false),
            Rate::Bytes(b) => (RateCap::new(0, b), true),
        };
        let share = cap.per_s / workers as f64;
        let per_worker = if bytes { share / size as f64 } else { share };
        Some(Self {
            cap,
            bytes,
            size,
            per_worker,
        })
    }

    /// How many datagrams (or writes) to send now: 2 ms of this worker's share, 1 to
    /// `most`, once the cap lets them go; None when the run ended while waiting.
    fn turn(&self, w: &mut Worker, most: usize) -> Option<usize> {
        let n = ((self.per_worker * 0.002) as usize).clamp(1, most);
        let tokens = if self.bytes { n * self.size } else { n };
        w.pace(&self.cap, tokens as u64).then_some(n)
    }

    /// [`SendCap::turn`] where there is a cap; `most` at once where there is none.
    fn turn_or_all(cap: Option<&Self>, w: &mut Worker, most: usize) -> Option<usize> {
        match cap {
            Some(c) => c.turn(w, most),
            None => Some(most),
        }
    }
}

fn parse_net_rate(s: &str) -> Result<Rate, String> {
    let t = s.trim().to_ascii_lowercase();
    if t.contains("bit") || t.ends_with("b/s") {
        parse_rate(s, RateKind::Bytes).map(Rate::Bytes)
    } else {
        parse_rate(s, RateKind::Count).map(Rate::Packets)
    }
}

/// A datagram or write size (`1472`, `128k`); the plan checks it against the protocol.
fn parse_size_bytes(s: &str) -> Result<usize, String> {
    common::units::parse_bytes(s).map(|b| usize::try_from(b).unwrap_or(usize::MAX))
}

const ADDR_FORMS: &str = "expected HOST:PORT like 10.0.0.2:9000, [::1]:9000 or sink.example:9000";

fn parse_endpoint(s: &str) -> Result<String, String> {
    if s.rsplit_once(':')
        .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
    {
        return Err(ADDR_FORMS.into());
    }
    Ok(s.to_string())
}

/// Flood a network with UDP or TCP from a guest, sink it, or echo it; aimed only where told.
#[derive(Debug, Parser)]
#[command(name = "netflood", version, after_long_help = concat!("
Examples:
  netflood sink --listen 0.0.0.0:9000                  receive, count, report per sender
  netflood send --to 10.0.0.2:9000 -t 60s              4 workers of 60,000-byte datagrams (the paper's)
  netflood send --to 10.0.0.2:9000 --size 64 --rate 100k/s
                                                       100,000 small datagrams per second
  netflood send --to 10.0.0.2:9000 --rate 1Gbit/s      a steady gigabit
  netflood send --proto tcp --to 10.0.0.2:9001 --connections 4
  netflood echo --listen 0.0.0.0:7                     reflect every datagram
  netflood send --to 10.0.0.2:7 --echo --size 64 --rate 1k/s
                                                       round-trip latency percentiles
  netflood send --to [::1]:9000 --dry-run              the plan: targets as resolved, engine
  netflood send --engine packet --to 10.0.0.2:9000 --size 64
                                                       prebuilt frames through an AF_PACKET ring
                                                       (root or CAP_NET_RAW; Linux)

Safety:
  Traffic goes only to the --to targets (names are resolved once, at start). Broadcast,
  multicast and unspecified addresses and port 0 are refused unless --allow-broadcast (for
  the first two). A target that refuses (ECONNREFUSED), is unreachable or whose queue is
  full (ENOBUFS) is counted, not fatal: a dead receiver is normal in a flood.
", common::help_footer!()), after_help = "See --help for examples, units, safety and exit codes.")]
pub struct Cli {
    #[command(subcommand)]
    pub mode: Mode,
}

#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Flood the targets with datagrams (or TCP streams)
    Send(SendArgs),
    /// Receive as fast as possible; report per sender: received, lost, reordered, duplicated
    Sink(SinkArgs),
    /// Reflect every datagram to its sender (for `send --echo` round trips)
    Echo(EchoArgs),
}

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Where to send: HOST:PORT (repeatable; workers take the targets in turn)
    #[arg(long = "to", value_name = "HOST:PORT", required = true, value_parser = parse_endpoint,
          help_heading = "Stress")]
    pub to: Vec<String>,
    #[arg(long, value_enum, default_value_t = Proto::Udp, help_heading = "Stress")]
    pub proto: Proto,
    /// Bytes per datagram (UDP: 32 to 65507) or per write (TCP: up to 16M; 128k, 1M)
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = 60000,
        value_parser = parse_size_bytes,
        help_heading = "Stress"
    )]
    pub size: usize,
    /// Datagrams per second (100k/s) or bits/bytes per second (1Gbit/s, 100M/s) over all workers
    #[arg(long, value_name = "RATE", value_parser = parse_net_rate, help_heading = "Stress")]
    pub rate: Option<Rate>,
    /// TCP connections per worker
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = "Stress")]
    pub connections: usize,
    /// Measure round trips: the target is a `netflood echo`
    #[arg(long, help_heading = "Stress")]
    pub echo: bool,
    /// Send without UDP GSO (plain sendmmsg batches)
    #[arg(long, help_heading = "Engine")]
    pub no_gso: bool,
    /// socket, or packet: prebuilt UDP frames through an AF_PACKET TX ring past the UDP
    /// stack and the qdisc (Linux, needs CAP_NET_RAW; interface and next hop's MAC from the
    /// routing and neighbour tables)
    #[arg(long, value_enum, default_value_t = Engine::Socket, help_heading = "Engine")]
    pub engine: Engine,
    /// Allow broadcast and multicast targets
    #[arg(long, help_heading = "Safety")]
    pub allow_broadcast: bool,
}

#[derive(Debug, Args)]
pub struct SinkArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Where to listen: ADDR:PORT (repeatable; 0.0.0.0 or [::] for every address)
    #[arg(long, value_name = "ADDR:PORT", required = true, value_parser = parse_endpoint,
          help_heading = "Stress")]
    pub listen: Vec<String>,
    #[arg(long, value_enum, default_value_t = Proto::Udp, help_heading = "Stress")]
    pub proto: Proto,
}

#[derive(Debug, Args)]
pub struct EchoArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Where to listen: ADDR:PORT (repeatable)
    #[arg(long, value_name = "ADDR:PORT", required = true, value_parser = parse_endpoint,
          help_heading = "Stress")]
    pub listen: Vec<String>,
}

/// What a run does; in the plan, `mode` says which.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Plan {
    Send {
        targets: Vec<SocketAddr>,
        #[serde(serialize_with = "common::params::as_value_name")]
        proto: Proto,
        #[serde(rename = "size_bytes")]
        size: usize,
        #[serde(flatten, serialize_with = "rate_keys")]
        rate: Option<Rate>,
        /// TCP connections per worker (TCP only).
        #[serde(
            rename = "connections_per_worker",
            skip_serializing_if = "Option::is_none"
        )]
        connections: Option<usize>,
        echo: bool,
        /// How datagrams leave ([`NetFlood::engine`]).
        engine: &'static str,
        /// Datagrams per GSO message (1: no GSO).
        #[serde(rename = "gso_segments")]
        gso: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        gso_note: Option<String>,
        allow_broadcast: bool,
        /// The packet engine's way out, one per target (empty: the socket engine).
        #[serde(
            rename = "packet_paths",
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "packet_paths"
        )]
        links: Vec<sys::LinkPath>,
        /// Whether the packet engine bypasses the qdisc.
        #[serde(skip)]
        qdisc_bypass: bool,
    },
    Sink {
        listen: Vec<SocketAddr>,
        #[serde(serialize_with = "common::params::as_value_name")]
        proto: Proto,
    },
    Echo {
        listen: Vec<SocketAddr>,
    },
}

/// `rate_per_s` or `rate_bytes_s`, or `rate: unlimited`.
fn rate_keys<S: Serializer>(r: &Option<Rate>, s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(1))?;
    match r {
        Some(Rate::Packets(p)) => m.serialize_entry("rate_per_s", p)?,
        Some(Rate::Bytes(b)) => m.serialize_entry("rate_bytes_s", b)?,
        None => m.serialize_entry("rate", "unlimited")?,
    }
    m.end()
}

/// Each way out: interface, source, next hop and its MAC, MTU.
fn packet_paths<S: Serializer>(links: &[sys::LinkPath], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Path<'a> {
        interface: &'a str,
        source: std::net::IpAddr,
        next_hop: std::net::IpAddr,
        next_hop_mac: String,
        mtu: usize,
    }
    let mac = |m: &[u8; 6]| m.map(|b| format!("{b:02x}")).join(":");
    s.collect_seq(links.iter().map(|l| Path {
        interface: &l.ifname,
        source: l.src_ip,
        next_hop: l.next_hop,
        next_hop_mac: mac(&l.dst_mac),
        mtu: l.mtu,
    }))
}

/// The stressor.
#[derive(Debug, Serialize)]
pub struct NetFlood {
    #[serde(skip)]
    pub workers: usize,
    #[serde(flatten)]
    pub plan: Plan,
    /// Marks this run's datagrams (so a sink tells runs apart).
    #[serde(serialize_with = "hex8")]
    run_id: u32,
    #[serde(skip)]
    counters: Counters,
}

fn hex8<S: Serializer>(v: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:08x}"))
}

/// The header every datagram starts with (little-endian).
pub const HEADER: usize = 32;
const MAGIC: u32 = u32::from_le_bytes(*b"MBNF");

/// Writes a header at the start of `buf`.
pub fn stamp(buf: &mut [u8], run: u32, worker: u32, seq: u64, ns: u64) {
    buf[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    buf[4..8].copy_from_slice(&run.to_le_bytes());
    buf[8..12].copy_from_slice(&worker.to_le_bytes());
    buf[12..16].copy_from_slice(&0u32.to_le_bytes());
    buf[16..24].copy_from_slice(&seq.to_le_bytes());
    buf[24..32].copy_from_slice(&ns.to_le_bytes());
}

/// (run, worker, seq, send ns) of a datagram that carries our header.
pub fn parse(buf: &[u8]) -> Option<(u32, u32, u64, u64)> {
    if buf.len() < HEADER || buf[0..4] != MAGIC.to_le_bytes() {
        return None;
    }
    let u32_at = |i: usize| u32::from_le_bytes(buf[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(buf[i..i + 8].try_into().expect("8 bytes"));
    Some((u32_at(4), u32_at(8), u64_at(16), u64_at(24)))
}

/// Window of sequence numbers in which a duplicate is told from a late datagram.
pub const WINDOW: u64 = 1024;

/// One sender's datagrams as a sink sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flow {
    pub run: u32,
    pub worker: u32,
    /// Datagrams that arrived (duplicates included).
    pub received: u64,
    /// Distinct sequence numbers that arrived.
    pub unique: u64,
    pub duplicates: u64,
    /// Arrived after a later one.
    pub reordered: u64,
    /// The highest sequence number seen.
    pub highest: u64,
    seen: Vec<u64>,
}

impl Flow {
    pub fn new(run: u32, worker: u32) -> Self {
        Flow {
            run,
            worker,
            seen: vec![0; (WINDOW / 64) as usize],
            ..Default::default()
        }
    }

    fn bit(&mut self, seq: u64) -> (&mut u64, u64) {
        let i = (seq % WINDOW) as usize;
        (&mut self.seen[i / 64], 1 << (i % 64))
    }

    /// Counts one arrival.
    pub fn arrive(&mut self, seq: u64) {
        self.received += 1;
        if self.unique == 0 && self.received == 1 {
            self.highest = seq;
            let (w, b) = self.bit(seq);
            *w |= b;
            self.unique = 1;
            return;
        }
        if seq > self.highest {
            // Forget the window's positions the new highest moves over.
            let gap = seq - self.highest;
            if gap >= WINDOW {
                self.seen.iter_mut().for_each(|w| *w = 0);
            } else {
                for s in self.highest + 1..=seq {
                    let (w, b) = self.bit(s);
                    *w &= !b;
                }
            }
            self.highest = seq;
            let (w, b) = self.bit(seq);
            *w |= b;
            self.unique += 1;
        } else if self.highest - seq < WINDOW {
            let (w, b) = self.bit(seq);
            if *w & b != 0 {
                self.duplicates += 1;
            } else {
                *w |= b;
                self.unique += 1;
                self.reordered += 1;
            }
        } else {
            // Too old to tell: a late datagram (counted as such).
            self.unique += 1;
            self.reordered += 1;
        }
    }

    /// Datagrams sent up to the highest seen that never arrived.
    pub fn lost(&self) -> u64 {
        (self.highest + 1).saturating_sub(self.unique)
    }

    fn to_bytes(&self) -> [u8; 48] {
        let mut b = [0u8; 48];
        b[0..4].copy_from_slice(&self.run.to_le_bytes());
        b[4..8].copy_from_slice(&self.worker.to_le_bytes());
        for (k, v) in [
            self.received,
            self.unique,
            self.duplicates,
            self.reordered,
            self.highest,
        ]
        .iter()
        .enumerate()
        {
            b[8 + k * 8..16 + k * 8].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    fn from_bytes(b: &[u8]) -> Flow {
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Flow {
            run: u32::from_le_bytes(b[0..4].try_into().expect("4")),
            worker: u32::from_le_bytes(b[4..8].try_into().expect("4")),
            received: u(8),
            unique: u(16),
            duplicates: u(24),
            reordered: u(32),
            highest: u(40),
            seen: Vec::new(),
        }
    }
}

common::metrics! {
    /// The metrics, each with its handle (`ops`: datagrams sent (send), received (sink) or reflected (echo); TCP: writes/reads).
    struct Counters {
        bytes: total("bytes", Bytes),
        /// Sends or receives that failed (ECONNREFUSED, ENOBUFS...; by errno in `errors`).
        errors: total("send_errors", Count),
        /// Send --echo: replies that came back.
        echoed: total("echo_replies", Count),
        /// Sink: datagrams the receiving sockets dropped (SO_RXQ_OVFL), last seen per worker.
        socket_drops: gauge("socket_drops", Count),
    }
}
static RTT: [&str; 1] = ["rtt"];

/// Datagrams per GSO message at most: the kernel's per-call limit, 128 since 2024 (and in
/// older stable kernels that took the change), 64 before; `gso_limit` finds which.
const GSO_MAX: usize = 128;
const GSO_OLD_MAX: usize = 64;
/// Empty polls before a sink sleeps in the kernel. A sleeping receiver makes the sender wake
/// it, a cross-CPU wake-up per batch paid on the sender's CPU; one that keeps polling while
/// data keeps coming spares the sender that.
const SPIN: u32 = 256;
/// What a TCP sink lets arrive before it reads (SO_RCVLOWAT, Linux). Read as each GSO segment
/// lands, a stream costs a read and often an acknowledgement per 64 KiB; half a MiB per read
/// is fewer of both (docs/notes/netflood-bench.md).
const TCP_LOWAT: usize = 512 << 10;
/// The largest UDP payload in one IPv4 datagram.
const UDP_MAX: usize = 65507;

fn refuse(what: &str, a: &SocketAddr, allow_broadcast: bool) -> common::Result<()> {
    let ip = a.ip();
    let bad = if a.port() == 0 {
        Some("port 0")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if ip.is_multicast() && !allow_broadcast {
        Some("a multicast address (pass --allow-broadcast to mean it)")
    } else if matches!(ip, std::net::IpAddr::V4(v4) if v4.is_broadcast()) && !allow_broadcast {
        Some("the broadcast address (pass --allow-broadcast to mean it)")
    } else {
        None
    };
    match bad {
        Some(why) => Err(Error::usage(format!("{what} {a}: refusing {why}"))),
        None => Ok(()),
    }
}

fn resolve(flag: &str, spec: &str) -> common::Result<SocketAddr> {
    let mut it = spec
        .to_socket_addrs()
        .map_err(|e| Error::usage(format!("{flag} {spec}: cannot resolve: {e}")))?;
    it.next()
        .ok_or_else(|| Error::usage(format!("{flag} {spec}: resolves to no address")))
}

/// Probes UDP GSO: a socket to the first target with UDP_SEGMENT set; None if it can be used.
fn probe_gso(target: &SocketAddr, size: usize) -> Option<String> {
    let s = Socket::new(
        Domain::for_address(*target),
        Type::DGRAM,
        Some(Protocol::UDP),
    )
    .ok()?;
    if let Err(why) = sys::udp_gso(s.as_raw_fd(), size) {
        return Some(format!("UDP_SEGMENT refused: {why}"));
    }
    None
}

/// The most datagrams one GSO message may carry here: one message of GSO_MAX small
/// segments sent by a loopback socket to itself, which kernels with the older limit refuse
/// (EINVAL). Fewer segments per message cost more per datagram, which small ones feel most.
fn gso_limit(target: &SocketAddr) -> usize {
    let lo: SocketAddr = if target.is_ipv4() {
        (std::net::Ipv4Addr::LOCALHOST, 0).into()
    } else {
        (std::net::Ipv6Addr::LOCALHOST, 0).into()
    };
    const SEG: usize = 32;
    let fits = || -> Option<()> {
        let s = Socket::new(Domain::for_address(lo), Type::DGRAM, Some(Protocol::UDP)).ok()?;
        s.bind(&SockAddr::from(lo)).ok()?;
        s.connect(&s.local_addr().ok()?).ok()?;
        sys::udp_send(s.as_raw_fd(), &[0u8; GSO_MAX * SEG], SEG, GSO_MAX, 1).ok()?;
        Some(())
    };
    if fits().is_some() {
        GSO_MAX
    } else {
        GSO_OLD_MAX
    }
}

impl common::Command for Cli {
    type Stressor = NetFlood;

    fn common(&self) -> &CommonArgs {
        match &self.mode {
            Mode::Send(a) => &a.common,
            Mode::Sink(a) => &a.common,
            Mode::Echo(a) => &a.common,
        }
    }

    fn plan(&self, _host: &Host) -> common::Result<NetFlood> {
        let run_id =
            (time::mono_ns() ^ u64::from(std::process::id()).wrapping_mul(0x9E37_79B9)) as u32;
        let (workers, plan) = match &self.mode {
            Mode::Send(a) => {
                let mut targets = Vec::new();
                for t in &a.to {
                    let addr = resolve("--to", t)?;
                    refuse("--to", &addr, a.allow_broadcast)?;
                    targets.push(addr);
                }
                let max = if a.proto == Proto::Udp {
                    UDP_MAX
                } else {
                    16 << 20
                };
                if a.size < HEADER || a.size > max {
                    return Err(Error::usage(format!(
                        "--size {}: from {HEADER} to {max} bytes for {}",
                        a.size,
                        common::params::value_name(&a.proto)
                    )));
                }
                if a.echo && a.proto == Proto::Tcp {
                    return Err(Error::usage(
                        "--echo measures UDP round trips: use --proto udp",
                    ));
                }
                if a.connections == 0 || a.connections > 1024 {
                    return Err(Error::usage("--connections: from 1 to 1024"));
                }
                let (links, qdisc_bypass) = if a.engine == Engine::Packet {
                    packet_links(a, &targets)?
                } else {
                    (Vec::new(), false)
                };
                // GSO packs datagrams into one message of at most 64 KiB.
                let mut gso = (UDP_MAX / a.size).min(GSO_MAX);
                let mut gso_note = None;
                if a.proto == Proto::Tcp || gso < 2 || a.engine == Engine::Packet {
                    gso = 1;
                } else if a.no_gso {
                    gso = 1;
                    gso_note = Some("off (--no-gso)".into());
                } else if let Some(why) = probe_gso(&targets[0], a.size) {
                    gso = 1;
                    gso_note = Some(why);
                } else {
                    gso = gso.min(gso_limit(&targets[0]));
                }
                (
                    a.common.workers.unwrap_or(4),
                    Plan::Send {
                        targets,
                        proto: a.proto,
                        size: a.size,
                        rate: a.rate,
                        connections: (a.proto == Proto::Tcp).then_some(a.connections),
                        echo: a.echo,
                        engine: "",
                        gso,
                        gso_note,
                        allow_broadcast: a.allow_broadcast,
                        links,
                        qdisc_bypass,
                    },
                )
            }
            Mode::Sink(a) => {
                let listen = listen_addrs(&a.listen)?;
                (
                    a.common.workers.unwrap_or(2),
                    Plan::Sink {
                        listen,
                        proto: a.proto,
                    },
                )
            }
            Mode::Echo(a) => {
                let listen = listen_addrs(&a.listen)?;
                (a.common.workers.unwrap_or(2), Plan::Echo { listen })
            }
        };
        let mut workers = workers;
        if let Plan::Sink { listen, .. } | Plan::Echo { listen } = &plan {
            let probe = Socket::new(Domain::IPV4, Type::DGRAM, None).map_err(Error::from)?;
            if let Err(why) = sys::reuse_port(probe.as_raw_fd()) {
                if workers > listen.len() {
                    eprintln!("netflood: note: {why}: one worker per --listen address");
                    workers = listen.len();
                }
            }
        }
        let mut nf = NetFlood {
            counters: Counters::default(),
            workers,
            plan,
            run_id,
        };
        let named = nf.engine();
        if let Plan::Send { engine, .. } = &mut nf.plan {
            *engine = named;
        }
        // Bind once now, so a port in use or an address we do not have is exit 2, not a
        // run of failing workers.
        match &nf.plan {
            Plan::Sink { listen, proto } => {
                for a in listen {
                    bind(*a, *proto).map_err(|e| Error::usage(format!("--listen {a}: {e}")))?;
                }
            }
            Plan::Echo { listen } => {
                for a in listen {
                    bind(*a, Proto::Udp).map_err(|e| Error::usage(format!("--listen {a}: {e}")))?;
                }
            }
            Plan::Send { .. } => {}
        }
        Ok(nf)
    }
}

/// The packet engine's plan: a way out per target, and a ring tried once (so a missing
/// CAP_NET_RAW is exit 2 with one line, not a run of failing workers).
#[cfg(target_os = "linux")]
fn packet_links(
    a: &SendArgs,
    targets: &[SocketAddr],
) -> common::Result<(Vec<sys::LinkPath>, bool)> {
    let no = |why: String| Error::usage(format!("--engine packet: {why}"));
    if a.proto == Proto::Tcp {
        return Err(no("sends UDP frames only (--proto udp)".into()));
    }
    if a.echo {
        return Err(no("--echo needs the socket engine".into()));
    }
    let mut links = Vec::new();
    for t in targets {
        let l = sys::link_path(*t).map_err(no)?;
        let max = l.mtu.saturating_sub(packet::overhead(&t.ip()) - 14);
        if a.size > max {
            return Err(no(format!(
                "--size {}: frames are not fragmented: at most {max} bytes on {} (MTU {})",
                a.size, l.ifname, l.mtu
            )));
        }
        links.push(l);
    }
    let frame = packet::overhead(&targets[0].ip()) + a.size;
    let tx = sys::PacketTx::new(links[0].ifindex, frame).map_err(no)?;
    Ok((links, tx.qdisc_bypass))
}

/// AF_PACKET is Linux's: here the packet engine is refused at plan time.
#[cfg(not(target_os = "linux"))]
fn packet_links(
    _a: &SendArgs,
    _targets: &[SocketAddr],
) -> common::Result<(Vec<sys::LinkPath>, bool)> {
    Err(Error::usage(
        "--engine packet: needs Linux (AF_PACKET); use the socket engine here",
    ))
}

fn listen_addrs(specs: &[String]) -> common::Result<Vec<SocketAddr>> {
    let mut out = Vec::new();
    for s in specs {
        let a = resolve("--listen", s)?;
        if a.port() == 0 {
            return Err(Error::usage(format!(
                "--listen {a}: refusing port 0 (say which port)"
            )));
        }
        out.push(a);
    }
    Ok(out)
}

/// A socket bound to `addr` with SO_REUSEPORT (one per worker share the port: the kernel
/// spreads flows over them), buffers sized up.
fn bind(addr: SocketAddr, proto: Proto) -> std::io::Result<Socket> {
    let (ty, p) = match proto {
        Proto::Udp => (Type::DGRAM, Protocol::UDP),
        Proto::Tcp => (Type::STREAM, Protocol::TCP),
    };
    let s = Socket::new(Domain::for_address(addr), ty, Some(p))?;
    s.set_reuse_address(true)?;
    // Where the OS lacks it (illumos) the plan runs one worker per address.
    let _ = sys::reuse_port(s.as_raw_fd());
    if addr.is_ipv6() {
        let _ = s.set_only_v6(false);
    }
    if proto == Proto::Udp {
        // TCP is left to the kernel's autotuning (tcp_rmem): a size set here turns it off
        // and caps the window at rmem_max.
        let _ = s.set_recv_buffer_size(8 << 20);
        let _ = s.set_send_buffer_size(8 << 20);
    }
    s.bind(&SockAddr::from(addr))?;
    if proto == Proto::Tcp {
        s.listen(1024)?;
    }
    Ok(s)
}

impl NetFlood {
    fn count_err(&self, w: &mut Worker, e: Errno) {
        w.errno(e);
        w.add(self.counters.errors, 1);
    }

    fn send_udp(&self, w: &mut Worker) -> common::Result<()> {
        let Plan::Send {
            targets,
            size,
            rate,
            echo,
            gso,
            ..
        } = &self.plan
        else {
            unreachable!()
        };
        let (size, gso) = (*size, *gso);
        let target = targets[w.index % targets.len()];
        let s = Socket::new(
            Domain::for_address(target),
            Type::DGRAM,
            Some(Protocol::UDP),
        )
        .map_err(Error::from)?;
        let _ = s.set_send_buffer_size(8 << 20);
        let _ = s.set_recv_buffer_size(8 << 20);
        let _ = s.set_broadcast(true);
        s.connect(&SockAddr::from(target))
            .map_err(|e| Error::from(e).context(format!("connecting to {target}")))?;
        let fd = s.as_raw_fd();
        let mut gso = gso;
        if gso > 1 && sys::udp_gso(fd, size).is_err() {
            gso = 1;
        }
        // Up to 16 messages of `gso` datagrams each per call, 256 KiB of them at most: the
        // kernel copies from this buffer, and a larger one no longer stays in the CPU's cache
        // (1472 B: 4 messages). Without GSO up to 64 datagrams.
        let msgs = if gso > 1 {
            ((256 << 10) / (gso * size)).clamp(1, 16)
        } else {
            64.min((1 << 20) / size).max(1)
        };
        let per_call = msgs * gso;
        let mut buf = vec![0u8; per_call * size];
        let mut rx = echo.then(|| UdpRx::new(32, 64 << 10));
        if *echo {
            let _ = UdpRx::enable(fd);
        }
        let cap = SendCap::new(*rate, self.workers, size);
        let rtt = echo.then(|| w.histogram(0));
        let mut seq = 0u64;
        let worker = w.index as u32 + (w.generation << 16);
        while w.running() {
            // How many datagrams this turn: the whole batch, or what the cap's batch allows.
            let Some(n) = SendCap::turn_or_all(cap.as_ref(), w, per_call) else {
                break;
            };
            let now = time::mono_ns();
            for k in 0..n {
                stamp(
                    &mut buf[k * size..],
                    self.run_id,
                    worker,
                    seq + k as u64,
                    now,
                );
            }
            let (full, rest) = (n / gso, n % gso);
            let mut sent = 0;
            if full > 0 {
                match sys::udp_send(fd, &buf, size, gso, full) {
                    Ok(k) => sent += k,
                    Err(e) => {
                        self.count_err(w, e);
                        if e == Errno::ENOBUFS || e == Errno::EAGAIN {
                            std::thread::yield_now();
                        }
                    }
                }
            }
            if rest > 0 && sent == full * gso {
                match sys::udp_send(fd, &buf[full * gso * size..], size, 1, rest) {
                    Ok(k) => sent += k,
                    Err(e) => self.count_err(w, e),
                }
            }
            if sent > 0 && sent < n {
                // sendmmsg stops at a failed message and reports only what went: the error
                // itself (ECONNREFUSED from a dead receiver, ENOBUFS) is lost. One more try
                // of the first datagram that did not go tells what it was.
                match sys::udp_send(fd, &buf[sent * size..], size, 1, 1) {
                    Ok(k) => sent += k,
                    Err(e) => self.count_err(w, e),
                }
            }
            // Sequence numbers of datagrams the kernel did not take are not reused: they
            // count as lost at the sink, as they were never sent.
            seq += n as u64;
            w.add(MetricId::OPS, sent as u64);
            w.add(self.counters.bytes, (sent * size) as u64);
            if let (Some(rx), Some(rtt)) = (rx.as_mut(), rtt.as_ref()) {
                self.drain_echo(w, rx, fd, worker, rtt);
            }
        }
        Ok(())
    }

    /// `--engine packet`: the worker's template in every frame of its ring; per frame,
    /// sequence, time and checksum; one `sendto` per batch.
    #[cfg(target_os = "linux")]
    fn send_packet(&self, w: &mut Worker) -> common::Result<()> {
        let Plan::Send {
            targets,
            size,
            rate,
            links,
            ..
        } = &self.plan
        else {
            unreachable!()
        };
        let size = *size;
        let i = w.index % targets.len();
        let (target, link) = (targets[i], &links[i]);
        // A UDP socket of our own holds the source port the frames carry.
        let s = Socket::new(
            Domain::for_address(target),
            Type::DGRAM,
            Some(Protocol::UDP),
        )
        .map_err(Error::from)?;
        s.connect(&SockAddr::from(target))
            .map_err(|e| Error::from(e).context(format!("connecting to {target}")))?;
        let src = s
            .local_addr()
            .map_err(Error::from)?
            .as_socket()
            .ok_or_else(|| Error::runtime("no source address"))?;
        let worker = w.index as u32 + (w.generation << 16);
        let mut head = [0u8; HEADER];
        stamp(&mut head, self.run_id, worker, 0, 0);
        let t = packet::Template::new(link, src, target, size, &head);
        let len = t.frame.len();
        let mut tx = sys::PacketTx::new(link.ifindex, len).map_err(Error::runtime)?;
        for k in 0..tx.frames() {
            tx.slot(k)[..len].copy_from_slice(&t.frame);
        }
        let per_call = (tx.frames() / 2).clamp(1, 512);
        let cap = SendCap::new(*rate, self.workers, size);
        let mut seq = 0u64;
        while w.running() {
            let Some(n) = SendCap::turn_or_all(cap.as_ref(), w, per_call) else {
                break;
            };
            let now = time::mono_ns();
            let mut q = 0;
            while q < n {
                match tx.next_free() {
                    Some(f) => {
                        t.stamp(f, seq, now);
                        tx.queue(len);
                        seq += 1;
                        q += 1;
                    }
                    None if q > 0 => break,
                    None => {
                        // The ring is full: wait for frames in flight (100 ms at most).
                        if let Err(e) = tx.flush(true) {
                            if e != Errno::EAGAIN && e != Errno::EINTR {
                                self.count_err(w, e);
                            }
                        }
                        if !w.running() {
                            break;
                        }
                        if tx.next_free().is_none() {
                            std::thread::yield_now();
                        }
                    }
                }
            }
            if q == 0 {
                continue;
            }
            if let Err(e) = tx.flush(false) {
                if e != Errno::EAGAIN {
                    self.count_err(w, e);
                }
            }
            // What the target answers (ICMP port unreachable: ECONNREFUSED) lands on the
            // UDP socket whose port the frames carry.
            if let Ok(Some(e)) = s.take_error() {
                self.count_err(w, Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)));
            }
            w.add(MetricId::OPS, q as u64);
            w.add(self.counters.bytes, (q * size) as u64);
        }
        // What is still marked goes before the ring is unmapped.
        let _ = tx.flush(true);
        drop(s);
        Ok(())
    }

    /// Takes the echo replies that have arrived; records their round trips.
    fn drain_echo(
        &self,
        w: &mut Worker,
        rx: &mut UdpRx,
        fd: i32,
        worker: u32,
        rtt: &common::hist::Recorder,
    ) {
        loop {
            let n = match rx.recv(fd, false) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => return,
                Err(e) => {
                    self.count_err(w, e);
                    return;
                }
            };
            let now = time::mono_ns();
            for j in 0..n {
                let r = rx.get(j);
                for seg in r.data.chunks(r.seg) {
                    if let Some((run, wk, _, sent)) = parse(seg) {
                        if run == self.run_id && wk == worker {
                            rtt.record(now.saturating_sub(sent));
                            w.add(self.counters.echoed, 1);
                        }
                    }
                }
            }
        }
    }

    fn send_tcp(&self, w: &mut Worker) -> common::Result<()> {
        let Plan::Send {
            targets,
            size,
            rate,
            connections,
            ..
        } = &self.plan
        else {
            unreachable!()
        };
        let target = targets[w.index % targets.len()];
        let buf = vec![0x5Au8; *size];
        let mut conns: Vec<TcpStream> = Vec::new();
        let cap = SendCap::new(*rate, self.workers, *size);
        let mut next = 0usize;
        while w.running() {
            while conns.len() < connections.unwrap_or(1) && w.running() {
                match TcpStream::connect_timeout(&target, Duration::from_millis(500)) {
                    Ok(c) => {
                        // No SO_SNDBUF: setting it turns the kernel's autotuning off
                        // (tcp_wmem), which measured slower.
                        let _ = c.set_write_timeout(Some(Duration::from_millis(100)));
                        conns.push(c);
                    }
                    Err(e) => {
                        self.count_err(w, Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)));
                        w.sleep(Duration::from_millis(100));
                    }
                }
            }
            if conns.is_empty() {
                continue;
            }
            if SendCap::turn_or_all(cap.as_ref(), w, 1).is_none() {
                break;
            }
            next = (next + 1) % conns.len();
            match conns[next].write(&buf) {
                Ok(n) => {
                    w.add(MetricId::OPS, 1);
                    w.add(self.counters.bytes, n as u64);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => {
                    self.count_err(w, Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)));
                    conns.swap_remove(next);
                }
            }
        }
        Ok(())
    }

    fn sink_udp(&self, w: &mut Worker, listen: &[SocketAddr]) -> common::Result<()> {
        let (s, mut rx) = receiver(w, listen, true)?;
        let fd = s.as_raw_fd();
        let mut flows: Vec<Flow> = Vec::new();
        let mut last_publish = time::mono_ns();
        let mut empty = 0;
        while w.running() {
            let n = match rx.recv(fd, empty >= SPIN) {
                Ok(n) => {
                    empty = 0;
                    n
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {
                    empty += 1;
                    0
                }
                Err(e) => {
                    self.count_err(w, e);
                    0
                }
            };
            for j in 0..n {
                let r = rx.get(j);
                if let Some(d) = r.drops {
                    w.set(self.counters.socket_drops, d as u64);
                }
                // One datagram, or a GRO batch: one sender's datagrams in the order they
                // came, each the next sequence number unless the network lost one inside the
                // batch (then the batch's last numbers are counted early, and the loss when
                // the next batch comes). Only the first header is read (`UdpRx::heads`).
                let k = r.len.div_ceil(r.seg) as u64;
                if let Some((run, wk, seq, _)) = parse(r.data) {
                    let f = match flows.iter().position(|f| f.run == run && f.worker == wk) {
                        Some(i) => &mut flows[i],
                        None => {
                            flows.push(Flow::new(run, wk));
                            flows.last_mut().expect("just pushed")
                        }
                    };
                    (seq..seq + k).for_each(|s| f.arrive(s));
                }
                w.add(MetricId::OPS, k);
                w.add(self.counters.bytes, r.len as u64);
            }
            let now = time::mono_ns();
            if now - last_publish > 200_000_000 {
                last_publish = now;
                publish_flows(w, &flows);
            }
        }
        publish_flows(w, &flows);
        Ok(())
    }

    fn sink_tcp(&self, w: &mut Worker, listen: &[SocketAddr]) -> common::Result<()> {
        let a = listen[w.index % listen.len()];
        let s = bind(a, Proto::Tcp).map_err(|e| Error::from(e).context(format!("binding {a}")))?;
        let l: TcpListener = s.into();
        l.set_nonblocking(true).map_err(Error::from)?;
        let pollin = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // The listener first, then one entry per connection, in the order of `conns`.
        let mut fds = vec![pollin(l.as_raw_fd())];
        let mut conns: Vec<TcpStream> = Vec::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut empty = 0;
        while w.running() {
            // Polls without sleeping while data keeps coming (see SPIN); a connection is
            // ready once its low-water mark is in.
            let wait = if empty >= SPIN { 50 } else { 0 };
            // SAFETY: a valid array of pollfds for its length.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as _, wait) };
            // A stream slower than the low-water mark is still counted, 50 ms late at most.
            let all = wait > 0 && n == 0;
            // Only when a connection waits: a failed accept(2) still makes and frees a socket.
            if fds[0].revents != 0 {
                while let Ok((c, _)) = l.accept() {
                    let _ = c.set_nonblocking(true);
                    let _ = sys::tcp_lowat(c.as_raw_fd(), TCP_LOWAT);
                    fds.push(pollin(c.as_raw_fd()));
                    conns.push(c);
                }
            }
            let mut idle = true;
            let mut i = 0;
            while i < conns.len() {
                if !all && fds[i + 1].revents == 0 {
                    i += 1;
                    continue;
                }
                // Counted, not copied out (see `UdpRx::heads` for what a copy costs).
                match sys::tcp_discard(conns[i].as_raw_fd(), &mut buf) {
                    Ok(n) if n > 0 => {
                        idle = false;
                        w.add(MetricId::OPS, 1);
                        w.add(self.counters.bytes, n as u64);
                        i += 1;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => i += 1,
                    r => {
                        if let Err(e) = r {
                            let errno = e.raw_os_error().unwrap_or(libc::EIO);
                            self.count_err(w, Errno::from_raw(errno));
                        }
                        // The end of the stream, or an error: its entries go together.
                        conns.swap_remove(i);
                        fds.swap_remove(i + 1);
                    }
                }
            }
            empty = if idle { empty + 1 } else { 0 };
        }
        Ok(())
    }

    fn echo(&self, w: &mut Worker, listen: &[SocketAddr]) -> common::Result<()> {
        let (s, mut rx) = receiver(w, listen, false)?;
        let fd = s.as_raw_fd();
        while w.running() {
            let n = match rx.recv(fd, true) {
                Ok(n) => n,
                Err(Errno::EAGAIN | Errno::EINTR) => 0,
                Err(e) => {
                    self.count_err(w, e);
                    0
                }
            };
            for j in 0..n {
                let r = rx.get(j);
                let k = r.data.len().div_ceil(r.seg) as u64;
                let len = r.data.len() as u64;
                match rx.reply(fd, j) {
                    Ok(()) => {
                        w.add(MetricId::OPS, k);
                        w.add(self.counters.bytes, len);
                    }
                    Err(e) => self.count_err(w, e),
                }
            }
        }
        Ok(())
    }
}

/// This worker's receiving socket (its share of the --listen addresses, SO_REUSEPORT, a
/// 100 ms timeout so it sees the stop) and its receive batches: whole datagrams for an
/// echo, which sends them back, or with `heads` their headers only.
fn receiver(w: &Worker, listen: &[SocketAddr], heads: bool) -> common::Result<(Socket, UdpRx)> {
    let a = listen[w.index % listen.len()];
    let s = bind(a, Proto::Udp).map_err(|e| Error::from(e).context(format!("binding {a}")))?;
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(Error::from)?;
    let _ = UdpRx::enable(s.as_raw_fd());
    let rx = if heads {
        UdpRx::heads(64, HEADER)
    } else {
        UdpRx::new(64, 64 << 10)
    };
    Ok((s, rx))
}

/// Leaves the worker's flows for `finish` (the latest copy wins).
fn publish_flows(w: &mut Worker, flows: &[Flow]) {
    let max = common::shm::RESULT_BYTES / 48;
    let mut out = Vec::with_capacity(flows.len().min(max) * 48);
    for f in flows.iter().take(max) {
        out.extend_from_slice(&f.to_bytes());
    }
    w.set_result(&out);
}

impl Stressor for NetFlood {
    const NAME: &'static str = "netflood";

    fn metrics(&self) -> &Metrics {
        &self.counters.list
    }

    fn latencies(&self) -> &[&'static str] {
        match &self.plan {
            Plan::Send { echo: true, .. } => &RTT,
            _ => &[],
        }
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn work(&self, w: &mut Worker) -> common::Result<()> {
        match &self.plan {
            #[cfg(target_os = "linux")]
            Plan::Send { links, .. } if !links.is_empty() => self.send_packet(w),
            Plan::Send {
                proto: Proto::Udp, ..
            } => self.send_udp(w),
            Plan::Send {
                proto: Proto::Tcp, ..
            } => self.send_tcp(w),
            Plan::Sink {
                listen,
                proto: Proto::Udp,
            } => self.sink_udp(w, listen),
            Plan::Sink {
                listen,
                proto: Proto::Tcp,
            } => self.sink_tcp(w, listen),
            Plan::Echo { listen } => self.echo(w, listen),
        }
    }

    fn finish(&self, run: &RunData) -> Findings {
        let mut f = Findings::default();
        let t = run.stress_s.max(1e-9);
        let r1 = |v: f64| (v * 10.0).round() / 10.0;
        let (ops, bytes) = (
            run.total(MetricId::OPS) as f64,
            run.total(self.counters.bytes) as f64,
        );
        f.detail("engine", Found::Text(self.engine().into()))
            .detail("pps", Found::Number(r1(ops / t), "datagrams/s"))
            .detail(
                "gbit_s",
                Found::Number((bytes * 8.0 / t / 1e9 * 1000.0).round() / 1000.0, "Gbit/s"),
            );
        match &self.plan {
            Plan::Send { echo, gso_note, .. } => {
                if let Some(n) = gso_note {
                    f.detail("gso_note", Found::Text(n.clone()));
                }
                if *echo {
                    let replies = run.total(self.counters.echoed);
                    f.detail("echo_replies", Found::Count(replies)).detail(
                        "echo_lost",
                        Found::Count(run.total(MetricId::OPS).saturating_sub(replies)),
                    );
                }
            }
            Plan::Sink {
                proto: Proto::Udp, ..
            } => {
                let mut flows: Vec<Flow> = Vec::new();
                for slot in &run.slots {
                    for chunk in slot.result.chunks_exact(48) {
                        let g = Flow::from_bytes(chunk);
                        match flows
                            .iter_mut()
                            .find(|x| x.run == g.run && x.worker == g.worker)
                        {
                            Some(x) => {
                                x.received += g.received;
                                x.unique += g.unique;
                                x.duplicates += g.duplicates;
                                x.reordered += g.reordered;
                                x.highest = x.highest.max(g.highest);
                            }
                            None => flows.push(g),
                        }
                    }
                }
                flows.sort_by_key(|x| (x.run, x.worker));
                let sum = |g: &dyn Fn(&Flow) -> u64| flows.iter().map(g).sum::<u64>();
                f.detail("senders", Found::Count(flows.len() as u64))
                    .detail("lost", Found::Count(sum(&|x| x.lost())))
                    .detail("reordered", Found::Count(sum(&|x| x.reordered)))
                    .detail("duplicates", Found::Count(sum(&|x| x.duplicates)))
                    .detail(
                        "socket_drops",
                        Found::Count(run.peak(self.counters.socket_drops)),
                    );
                let rows = flows
                    .iter()
                    .map(|x| {
                        vec![
                            ("run", Found::Text(format!("{:08x}", x.run))),
                            ("worker", Found::Count(u64::from(x.worker & 0xffff))),
                            ("received", Found::Count(x.received)),
                            ("lost", Found::Count(x.lost())),
                            ("reordered", Found::Count(x.reordered)),
                            ("duplicates", Found::Count(x.duplicates)),
                            ("highest_seq", Found::Count(x.highest)),
                        ]
                    })
                    .collect();
                f.detail_report_only("per_sender", Found::Records(rows));
            }
            _ => {}
        }
        f
    }
}

impl NetFlood {
    fn engine(&self) -> &'static str {
        match &self.plan {
            Plan::Send {
                proto: Proto::Tcp, ..
            }
            | Plan::Sink {
                proto: Proto::Tcp, ..
            } => "tcp (large writes, Nagle on)",
            Plan::Send {
                links,
                qdisc_bypass,
                ..
            } if !links.is_empty() => {
                if *qdisc_bypass {
                    "AF_PACKET TX ring (TPACKET_V2, qdisc bypass)"
                } else {
                    "AF_PACKET TX ring (TPACKET_V2, through the qdisc)"
                }
            }
            Plan::Send { gso, .. } if *gso > 1 && sys::UDP_BATCHES => "sendmmsg + UDP GSO",
            _ if sys::UDP_BATCHES => match &self.plan {
                Plan::Send { .. } => "sendmmsg",
                _ => "recvmmsg + UDP GRO, SO_REUSEPORT",
            },
            _ => "send/recvfrom (no batching on this OS)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let mut b = [0u8; 64];
        stamp(&mut b, 7, 3, 1 << 40, 123);
        assert_eq!(parse(&b), Some((7, 3, 1 << 40, 123)));
        assert_eq!(parse(&[0u8; 64]), None);
        assert_eq!(parse(&b[..31]), None);
    }

    #[test]
    fn a_crafted_sequence_gives_exact_loss_reordering_and_duplicates() {
        let mut f = Flow::new(1, 0);
        // 0..10 with 3 lost, 5 and 6 swapped, 8 twice, 9 three times.
        for s in [0, 1, 2, 4, 6, 5, 7, 8, 8, 9, 9, 9] {
            f.arrive(s);
        }
        assert_eq!(f.received, 12);
        assert_eq!(f.unique, 9);
        assert_eq!(f.lost(), 1);
        assert_eq!(f.reordered, 1);
        assert_eq!(f.duplicates, 3);
        // A jump past the window, then a late one from before it.
        f.arrive(5000);
        f.arrive(3000);
        f.arrive(5000);
        assert_eq!(f.duplicates, 4);
        assert_eq!(f.reordered, 2);
        assert_eq!(f.lost(), 5001 - f.unique);
        let back = Flow::from_bytes(&f.to_bytes());
        assert_eq!(
            (
                back.received,
                back.unique,
                back.duplicates,
                back.reordered,
                back.highest
            ),
            (f.received, f.unique, f.duplicates, f.reordered, f.highest)
        );
    }

    #[test]
    fn rates_are_datagrams_or_bits() {
        assert_eq!(parse_net_rate("100k/s"), Ok(Rate::Packets(1e5)));
        assert_eq!(parse_net_rate("1Gbit/s"), Ok(Rate::Bytes(1.25e8)));
        assert!(parse_net_rate("fast").is_err());
    }
}
