//! netflood driven as users drive it. Traffic goes only to 127.0.0.0/8, [::1], or addresses
//! inside network namespaces this test makes (and removes, also on failure). Every run is
//! short.

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use common::testkit::{live_tagged, port, take_turn, wait_for_live, Bin, Output, Running};
use serde_json::Value;

common::test_binary!("netflood");

const T: Duration = Duration::from_secs(60);

/// Starts a sink (or echo) and waits until its workers are up.
fn start(mode: &str, args: &[&str], workers: usize) -> Running {
    let mut all = vec![mode];
    all.extend_from_slice(args);
    let run = bin().spawn(&all);
    assert!(
        wait_for_live(&run.tag, 2 + workers, T),
        "{mode} never started"
    );
    std::thread::sleep(Duration::from_millis(300 + (1000.0 * bin().slack()) as u64));
    run
}

/// A listener on `addr` (`listen`: sink or echo, then its flags) and a `send` to it (its
/// flags after `--to`), both with `--json -q`: the sender's output, and the listener's once
/// it has reported.
fn flood(addr: &str, listen: &[&str], send: &[&str]) -> (Output, Output) {
    let workers = match listen.iter().position(|a| *a == "-w") {
        Some(i) => listen[i + 1].parse().unwrap(),
        None => 1,
    };
    let mut args = listen[1..].to_vec();
    args.extend(["--listen", addr, "--json", "-q"]);
    let listener = start(listen[0], &args, workers);
    let mut args = vec!["send", "--to", addr];
    args.extend_from_slice(send);
    args.extend(["--json", "-q"]);
    let out = bin().run(&args, T);
    (out, listener.wait(T))
}

#[test]
fn sink_and_sender_agree_on_every_datagram() {
    let _turn = take_turn();
    let p = port();
    let addr = format!("127.0.0.1:{p}");
    let (out, got) = flood(
        &addr,
        &["sink", "-w", "2", "-t", "4"],
        &["-w", "2", "--size", "512", "--rate", "20k/s", "-t", "2"],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let s = out.json();
    let sent = s["totals"]["ops"].as_u64().unwrap();
    assert!(sent > 30_000, "sent {sent}");
    assert_eq!(got.code, Some(0), "{}", got.stderr);
    let r = got.json();
    let d = &r["details"];
    // Paced well below what loopback carries: nothing lost, all in order.
    assert_eq!(r["totals"]["ops"].as_u64().unwrap(), sent, "{d}");
    assert_eq!(r["totals"]["bytes"].as_u64().unwrap(), sent * 512);
    assert_eq!(d["lost"], 0, "{d}");
    assert_eq!(d["duplicates"], 0);
    assert_eq!(d["senders"], 2, "one flow per sending worker: {d}");
    let per = d["per_sender"].as_array().unwrap();
    let sum: u64 = per.iter().map(|f| f["received"].as_u64().unwrap()).sum();
    assert_eq!(sum, sent);
    assert_eq!(per[0]["run"], s["params"]["effective"]["run_id"]);
    assert!(live_tagged(&got.tag).is_empty() && live_tagged(&out.tag).is_empty());
}

/// An unpaced flood of `size`-byte datagrams from `workers` senders for `secs` into a sink of
/// one worker; the sender's report once the sink has checked that every datagram sent is
/// counted as received or lost.
fn full_speed_flood_is_accounted(addr: &str, size: &str, workers: &str, secs: &str) -> Value {
    let (out, sink) = flood(
        addr,
        &["sink", "-w", "1", "-t", "4"],
        &["-w", workers, "--size", size, "-t", secs],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let s = out.json();
    let sent = s["totals"]["ops"].as_u64().unwrap();
    let r = sink.json();
    let received = r["totals"]["ops"].as_u64().unwrap();
    let lost = r["details"]["lost"].as_u64().unwrap();
    // Lost is counted up to the highest sequence seen: the last few in flight at the
    // sender's end may be neither.
    assert!(received > 0);
    assert!(received + lost <= sent, "{received} + {lost} > {sent}");
    assert!(
        received + lost >= sent - sent / 100,
        "{received} + {lost} << {sent}"
    );
    s
}

#[test]
fn a_full_speed_flood_is_counted_as_received_plus_lost() {
    let _turn = take_turn();
    let addr = format!("127.0.0.1:{}", port());
    full_speed_flood_is_accounted(&addr, "1472", "2", "2");
}

/// Turns on UDP GSO (`UDP_SEGMENT`) with `seg`-byte datagrams on `s`; false if refused.
fn set_gso(s: &UdpSocket, seg: libc::c_int) -> bool {
    use std::os::fd::AsRawFd;
    const UDP_SEGMENT: libc::c_int = 103;
    // SAFETY: a valid socket and a c_int option value of its size.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_UDP,
            UDP_SEGMENT,
            (&seg as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as _,
        )
    };
    r == 0
}

/// Whether this kernel takes one UDP GSO message of 128 segments (the limit was 64 before
/// 2024), asked by the test itself: a loopback socket sending to itself.
fn kernel_takes_128_segments() -> bool {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.connect(s.local_addr().unwrap()).unwrap();
    assert!(set_gso(&s, 32), "UDP_SEGMENT refused on loopback");
    s.send(&[0u8; 128 * 32]).is_ok()
}

#[test]
fn small_datagrams_go_in_gso_messages_as_large_as_the_kernel_takes() {
    if bin().emulated() {
        // qemu-user passes UDP_SEGMENT on, but the answer is then qemu's, not the test's.
        return common::testkit::skip("GSO limits are the host kernel's under qemu-user");
    }
    let limit = if kernel_takes_128_segments() { 128 } else { 64 };
    let p = port();
    let addr = format!("127.0.0.1:{p}");
    for (size, want) in [(64, limit), (1472, 65507 / 1472), (60000, 1)] {
        let size = size.to_string();
        let out = bin().run(
            &[
                "send",
                "--to",
                &addr,
                "--size",
                &size,
                "--dry-run",
                "--json",
            ],
            T,
        );
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let e = &out.json()["params"]["effective"];
        assert_eq!(e["gso_segments"], want, "--size {size}: {e}");
    }
    // Messages of that many segments really go (a refused one is an error), and the sink
    // accounts for every datagram in them.
    let _turn = take_turn();
    let s = full_speed_flood_is_accounted(&addr, "64", "1", "1");
    assert_eq!(s["totals"]["send_errors"], 0, "{}", s["errors"]);
}

#[test]
fn an_idle_sink_sleeps() {
    let _turn = take_turn();
    let p = port();
    let addr = format!("127.0.0.1:{p}");
    // A burst, then 3 s of nothing: a sink that kept polling would spend about 4 s of CPU.
    let (out, sink) = flood(
        &addr,
        &["sink", "-w", "1", "-t", "4"],
        &["--size", "1472", "-w", "1", "-t", "0.5"],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = sink.json();
    assert!(r["totals"]["ops"].as_u64().unwrap() > 0);
    let cpu = r["totals"]["cpu_s"].as_f64().unwrap();
    assert!(
        cpu < 1.5,
        "the sink spent {cpu} s of CPU over 4 s, 3.5 of them idle"
    );
}

/// A sink of one worker for 2 s on a fresh loopback port, and a socket connected to it for
/// the test's own crafted datagrams.
fn sink_and_socket() -> (Running, UdpSocket) {
    let addr = format!("127.0.0.1:{}", port());
    let sink = start(
        "sink",
        &["--listen", &addr, "-w", "1", "-t", "2", "--json", "-q"],
        1,
    );
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(&addr).unwrap();
    (sink, sock)
}

/// Datagrams with our header, sent by the test itself in a crafted order.
#[test]
fn reordering_duplicates_and_loss_are_detected_in_a_crafted_sequence() {
    let _turn = take_turn();
    let (sink, sock) = sink_and_socket();
    for seq in [0u64, 1, 2, 4, 6, 5, 7, 8, 8, 9] {
        let mut b = [0u8; 64];
        netflood::stamp(&mut b, 0xABCD, 7, seq, 1);
        sock.send(&b).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    // Not ours: counted as received bytes, no flow.
    sock.send(b"hello").unwrap();
    let r = sink.wait(T).json();
    let d = &r["details"];
    assert_eq!(d["senders"], 1, "{d}");
    let f = &d["per_sender"][0];
    assert_eq!(f["run"], "0000abcd");
    assert_eq!(f["worker"], 7);
    assert_eq!(f["received"], 10, "{f}");
    assert_eq!(f["lost"], 1, "{f}");
    assert_eq!(f["reordered"], 1, "{f}");
    assert_eq!(f["duplicates"], 1, "{f}");
    assert_eq!(r["totals"]["ops"], 11);
}

/// A GSO message reaches the sink as one GRO batch, of which the sink reads only the first
/// header: the batch's datagrams count as the numbers that follow it, and a loss inside the
/// batch shows when the next datagram comes. The totals stay exact.
#[test]
fn a_gro_batch_counts_from_its_first_header_and_a_loss_in_it_shows_after_it() {
    let _turn = take_turn();
    let (sink, sock) = sink_and_socket();
    if !set_gso(&sock, 64) {
        common::testkit::skip("UDP_SEGMENT refused here");
        return;
    }
    // Five datagrams in one message, number 3 missing; then number 6 alone.
    let mut msg = vec![0u8; 5 * 64];
    for (k, seq) in [0u64, 1, 2, 4, 5].into_iter().enumerate() {
        netflood::stamp(&mut msg[k * 64..], 0xBEEF, 3, seq, 1);
    }
    sock.send(&msg).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let mut one = [0u8; 64];
    netflood::stamp(&mut one, 0xBEEF, 3, 6, 1);
    sock.send(&one).unwrap();
    let r = sink.wait(T).json();
    let f = &r["details"]["per_sender"][0];
    assert_eq!(f["received"], 6, "{f}");
    assert_eq!(f["lost"], 1, "{f}");
    assert_eq!(f["duplicates"], 0, "{f}");
    assert_eq!(f["reordered"], 0, "{f}");
    assert_eq!(r["totals"]["ops"], 6);
    assert_eq!(r["totals"]["bytes"], 6 * 64, "{}", r["totals"]);
}

#[test]
fn the_rate_cap_holds_in_datagrams_and_in_bits() {
    let _turn = take_turn();
    let p = port();
    let addr = format!("127.0.0.1:{p}");
    let sink = start("sink", &["--listen", &addr, "-w", "1", "-t", "8", "-q"], 1);
    let out = bin().run(
        &[
            "send", "--to", &addr, "--size", "256", "--rate", "10k/s", "-t", "3", "--json", "-q",
        ],
        T,
    );
    // Rates a loaded two-core machine (or qemu-user) still reaches: a shortfall would be the
    // machine's, not the cap's.
    let got = out.json()["rates"]["ops"].as_f64().unwrap();
    assert!((got - 1e4).abs() / 1e4 <= 0.03, "{got}/s for 10k/s");
    let out = bin().run(
        &[
            "send", "--to", &addr, "--size", "1000", "--rate", "40Mbit/s", "-t", "3", "--json",
            "-q",
        ],
        T,
    );
    let got = out.json()["rates"]["bytes"].as_f64().unwrap() * 8.0;
    assert!((got - 4e7).abs() / 4e7 <= 0.03, "{got} bit/s for 40Mbit/s");
    drop(sink);
}

#[test]
fn echo_round_trips_give_rtt_percentiles() {
    let _turn = take_turn();
    let p = port();
    let addr = format!("127.0.0.1:{p}");
    let (out, echo) = flood(
        &addr,
        &["echo", "-w", "1", "-t", "5"],
        &[
            "--echo", "-w", "1", "--size", "64", "--rate", "2k/s", "-t", "2",
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = out.json();
    let rtt = &r["latency"]["rtt"];
    let n = rtt["count"].as_u64().unwrap();
    let sent = r["totals"]["ops"].as_u64().unwrap();
    assert!(n >= sent * 95 / 100, "{n} round trips of {sent}");
    assert!(rtt["p50_us"].as_f64().unwrap() > 0.0 && rtt["p99_us"].as_f64().unwrap() < 1e6);
    assert_eq!(r["details"]["echo_replies"].as_u64().unwrap(), n);
    assert!(r["samples"][0]["latency"]["rtt"]["count"].as_u64().unwrap() > 0);
    let e = echo.json();
    assert_eq!(e["totals"]["ops"].as_u64().unwrap(), sent);
}

/// A TCP sink reads half a MiB at a time from a fast stream; a stream that trickles is
/// counted all the same, while it is still open.
#[test]
fn a_tcp_stream_below_the_low_water_mark_is_counted() {
    use std::io::Write;
    let _turn = take_turn();
    let addr = format!("127.0.0.1:{}", port());
    let sink = start(
        "sink",
        &[
            "--proto", "tcp", "--listen", &addr, "-w", "1", "-t", "2", "--json", "-q",
        ],
        1,
    );
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    c.write_all(&[7u8; 1000]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    c.write_all(&[7u8; 500]).unwrap();
    // Open until the sink has reported: no end of stream makes it read.
    let r = sink.wait(T);
    drop(c);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = r.json();
    assert_eq!(r["totals"]["bytes"], 1500, "{}", r["totals"]);
    assert_eq!(r["errors"], serde_json::json!({}), "{}", r["errors"]);
}

#[test]
fn tcp_and_ipv6_work() {
    let _turn = take_turn();
    let p = port();
    let addr = format!("127.0.0.1:{p}");
    let (out, sink) = flood(
        &addr,
        &["sink", "--proto", "tcp", "-w", "1", "-t", "4"],
        &[
            "--proto",
            "tcp",
            "-w",
            "2",
            "--connections",
            "2",
            "--size",
            "64k",
            "-t",
            "2",
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let sent = out.json()["totals"]["bytes"].as_u64().unwrap();
    let r = sink.json();
    let got = r["totals"]["bytes"].as_u64().unwrap();
    assert!(sent > 10 << 20, "sent {sent}");
    // What was written and not yet read at the end is all that may differ.
    assert!(
        got <= sent && got >= sent - sent / 10,
        "received {got} of {sent}"
    );

    let p = port();
    let addr6 = format!("[::1]:{p}");
    let (out, sink) = flood(
        &addr6,
        &["sink", "-w", "1", "-t", "3"],
        &["--size", "1000", "--rate", "10k/s", "-t", "1"],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let sent = out.json()["totals"]["ops"].as_u64().unwrap();
    assert_eq!(sink.json()["totals"]["ops"].as_u64().unwrap(), sent);
}

#[test]
fn a_target_that_refuses_is_counted_not_fatal() {
    let _turn = take_turn();
    // Nothing listens there: the kernel answers with port unreachable.
    let addr = format!("127.0.0.1:{}", port());
    let out = bin().run(
        &[
            "send", "--to", &addr, "--size", "64", "--rate", "10k/s", "-t", "1", "--json", "-q",
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = out.json();
    assert_eq!(r["outcome"], "completed");
    assert!(
        r["errors"]["ECONNREFUSED"].as_u64().unwrap_or(0) > 0,
        "{}",
        r["errors"]
    );
    assert!(r["totals"]["send_errors"].as_u64().unwrap() > 0);
}

#[test]
fn bad_and_forbidden_addresses_are_refused_with_exit_2() {
    let cases: &[&[&str]] = &[
        &["send", "--to", "255.255.255.255:9"],
        &["send", "--to", "224.0.0.1:9"],
        &["send", "--to", "[ff02::1]:9"],
        &["send", "--to", "0.0.0.0:9"],
        &["send", "--to", "127.0.0.1:0"],
        &["send", "--to", "127.0.0.1"],
        &["send", "--to", "no-such-host.invalid:9"],
        &["send"],
        &["send", "--to", "127.0.0.1:9", "--size", "10"],
        &["send", "--to", "127.0.0.1:9", "--size", "70000"],
        &["send", "--to", "127.0.0.1:9", "--size", "12q"],
        &["send", "--to", "127.0.0.1:9", "--rate", "fast"],
        &["sink", "--listen", "127.0.0.1:0"],
        &["sink", "--listen", "192.0.2.1:9000"],
        &[],
    ];
    for args in cases {
        let out = bin().run(args, T);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.starts_with("netflood"), "{}", out.stderr);
        assert!(live_tagged(&out.tag).is_empty());
    }
    // Broadcast when asked for it: planned (a dry run sends nothing).
    let out = bin().run(
        &[
            "send",
            "--to",
            "255.255.255.255:9",
            "--allow-broadcast",
            "--dry-run",
            "--json",
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.json()["params"]["effective"]["targets"][0],
        "255.255.255.255:9"
    );
}

/// Two hosts: network namespaces joined by a veth pair, made here and removed on drop.
struct Netns {
    names: [String; 2],
}

impl Netns {
    fn new() -> Option<Self> {
        let id = std::process::id() % 100_000;
        let names = [format!("mbt{id}a"), format!("mbt{id}b")];
        let run = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let me = Netns { names };
        let (a, b) = (me.names[0].as_str(), me.names[1].as_str());
        let ok = run(&["netns", "add", a])
            && run(&["netns", "add", b])
            && run(&[
                "link", "add", "mbtva", "netns", a, "type", "veth", "peer", "name", "mbtvb",
                "netns", b,
            ])
            && run(&["-n", a, "addr", "add", "10.210.0.1/30", "dev", "mbtva"])
            && run(&["-n", b, "addr", "add", "10.210.0.2/30", "dev", "mbtvb"])
            && run(&["-n", a, "link", "set", "mbtva", "up"])
            && run(&["-n", b, "link", "set", "mbtvb", "up"])
            && run(&["-n", a, "link", "set", "lo", "up"])
            && run(&["-n", b, "link", "set", "lo", "up"]);
        ok.then_some(me)
    }
}

impl Netns {
    /// The MAC of the veth end in namespace `i`.
    fn mac(&self, i: usize) -> String {
        let dev = ["mbtva", "mbtvb"][i];
        let out = Command::new("ip")
            .args(["-n", &self.names[i], "-o", "link", "show", dev])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut words = text.split_whitespace();
        words.find(|w| *w == "link/ether");
        words.next().unwrap_or_default().to_string()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// This binary run inside network namespace `name`.
fn inside(name: &str) -> Bin {
    let exe = bin().exe.to_str().unwrap().to_string();
    Bin::program("ip").with_prefix(&["netns", "exec", name, &exe])
}

/// Two fresh namespaces joined by a veth pair, and a sink on 10.210.0.2:9000 in the second
/// for `secs` seconds, ready. None, with a skip line, where this cannot run: an emulated
/// binary, or no namespaces (no root, no iproute2). Drop the sink before the namespaces.
fn veth_pair_with_sink(secs: &str) -> Option<(Netns, Running)> {
    if bin().emulated() {
        common::testkit::skip("namespaces are tested with the native binary");
        return None;
    }
    let Some(ns) = Netns::new() else {
        common::testkit::skip("cannot make network namespaces here (needs root and iproute2)");
        return None;
    };
    let sink = inside(&ns.names[1]).spawn(&[
        "sink",
        "--listen",
        "10.210.0.2:9000",
        "-w",
        "1",
        "-t",
        secs,
        "--json",
        "-q",
    ]);
    std::thread::sleep(Duration::from_millis(700));
    Some((ns, sink))
}

#[test]
fn a_flood_crosses_a_veth_pair_between_two_namespaces() {
    let _turn = take_turn();
    let Some((ns, sink)) = veth_pair_with_sink("4") else {
        return;
    };
    let out = inside(&ns.names[0]).run(
        &[
            "send",
            "--to",
            "10.210.0.2:9000",
            "-w",
            "2",
            "--size",
            "1000",
            "--rate",
            "50k/s",
            "-t",
            "2",
            "--json",
            "-q",
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let sent = out.json()["totals"]["ops"].as_u64().unwrap();
    let r = sink.wait(T).json();
    let got = r["totals"]["ops"].as_u64().unwrap();
    assert!(
        sent > 50_000 && got > sent * 9 / 10,
        "received {got} of {sent}"
    );
    assert_eq!(r["details"]["senders"], 2);
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `--engine packet` between two namespaces: prebuilt frames through an AF_PACKET TX ring
/// on one veth end, counted by a socket sink on the other (the kernel checks the IP and UDP
/// checksums on the way in, so every datagram counted had correct ones). The next hop's
/// MAC is found in the neighbour table, resolved first (the namespaces are fresh).
#[test]
fn the_packet_engine_carries_a_flood_across_a_veth_pair() {
    let _turn = take_turn();
    if !bin().emulated() && !is_root() {
        common::testkit::skip("the packet engine needs CAP_NET_RAW and namespaces need root");
        return;
    }
    let Some((ns, sink)) = veth_pair_with_sink("5") else {
        return;
    };
    let out = inside(&ns.names[0]).run(
        &[
            "send",
            "--engine",
            "packet",
            "--to",
            "10.210.0.2:9000",
            "-w",
            "2",
            "--size",
            "64",
            "--rate",
            "20k/s",
            "-t",
            "2",
            "--json",
            "-q",
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let s = out.json();
    let p = &s["params"]["effective"];
    assert!(
        s["details"]["engine"]
            .as_str()
            .unwrap()
            .starts_with("AF_PACKET TX ring"),
        "{}",
        s["details"]
    );
    let path = &p["packet_paths"][0];
    assert_eq!(path["interface"], "mbtva", "{path}");
    assert_eq!(path["next_hop"], "10.210.0.2");
    assert_eq!(path["next_hop_mac"], ns.mac(1).as_str(), "{path}");
    assert_eq!(path["source"], "10.210.0.1");
    let sent = s["totals"]["ops"].as_u64().unwrap();
    assert!(sent > 30_000, "sent {sent}");
    assert_eq!(s["totals"]["bytes"].as_u64().unwrap(), sent * 64);
    let got = sink.wait(T);
    assert_eq!(got.code, Some(0), "{}", got.stderr);
    let r = got.json();
    let d = &r["details"];
    // Paced well below what the pair carries: every frame arrives, in order, once.
    assert_eq!(r["totals"]["ops"].as_u64().unwrap(), sent, "{d}");
    assert_eq!(r["totals"]["bytes"].as_u64().unwrap(), sent * 64);
    assert_eq!(d["lost"], 0, "{d}");
    assert_eq!(d["duplicates"], 0);
    assert_eq!(d["reordered"], 0);
    assert_eq!(d["senders"], 2, "one flow per sending worker: {d}");
    assert_eq!(d["per_sender"][0]["run"], p["run_id"]);

    // Frames are never fragmented: the veth's MTU bounds the size.
    let out = inside(&ns.names[0]).run(
        &[
            "send",
            "--engine",
            "packet",
            "--to",
            "10.210.0.2:9000",
            "--size",
            "1473",
        ],
        T,
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("MTU 1500"), "{}", out.stderr);
    // No neighbour answers for an address nobody has on the link: refused, not a flood
    // into the void.
    let on_link = Command::new("ip")
        .args([
            "-n",
            &ns.names[0],
            "route",
            "add",
            "10.210.1.5/32",
            "dev",
            "mbtva",
        ])
        .status()
        .unwrap();
    assert!(on_link.success());
    let out = inside(&ns.names[0]).run(
        &["send", "--engine", "packet", "--to", "10.210.1.5:9000"],
        T,
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("does not resolve"), "{}", out.stderr);
}

/// `--engine packet` on loopback over IPv6 (lo takes Ethernet frames with zero MACs).
#[test]
fn the_packet_engine_floods_ipv6_loopback() {
    let _turn = take_turn();
    if !is_root() {
        common::testkit::skip("the packet engine needs CAP_NET_RAW (run as root)");
        return;
    }
    let p = port();
    let addr6 = format!("[::1]:{p}");
    let (out, sink) = flood(
        &addr6,
        &["sink", "-w", "1", "-t", "4"],
        &[
            "--engine", "packet", "-w", "2", "--size", "1000", "--rate", "10k/s", "-t", "2",
        ],
    );
    if bin().emulated() && out.code == Some(2) {
        common::testkit::skip(&format!(
            "qemu-user cannot run the packet engine here: {}",
            out.stderr.trim()
        ));
        return;
    }
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let s = out.json();
    let sent = s["totals"]["ops"].as_u64().unwrap();
    assert!(sent > 5000, "sent {sent}");
    // The rate cap, per-worker counts and the deadline as with the socket engine.
    let rate = s["rates"]["ops"].as_f64().unwrap();
    assert!((rate - 1e4).abs() / 1e4 <= 0.03, "{rate}/s for 10k/s");
    let per: Vec<u64> = s["per_worker"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["ops"].as_u64().unwrap())
        .collect();
    assert_eq!(per.len(), 2);
    assert_eq!(per.iter().sum::<u64>(), sent);
    assert_eq!(s["outcome"], "completed");
    let r = sink.json();
    assert_eq!(
        r["totals"]["ops"].as_u64().unwrap(),
        sent,
        "{}",
        r["details"]
    );
    assert_eq!(r["details"]["lost"], 0);
    assert_eq!(r["details"]["senders"], 2);

    // Nobody listening: the port unreachable answers are counted, the flood goes on.
    let out = bin().run(
        &[
            "send",
            "--engine",
            "packet",
            "--to",
            &format!("[::1]:{}", port()),
            "--size",
            "64",
            "--rate",
            "10k/s",
            "-t",
            "1",
            "--json",
            "-q",
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = out.json();
    assert!(
        r["errors"]["ECONNREFUSED"].as_u64().unwrap_or(0) > 0,
        "{}",
        r["errors"]
    );
}

#[test]
fn the_packet_engine_refuses_what_it_cannot_do_with_exit_2() {
    let mut cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "send", "--engine", "packet", "--proto", "tcp", "--to", "[::1]:9",
            ],
            "UDP",
        ),
        (
            vec!["send", "--engine", "packet", "--echo", "--to", "[::1]:9"],
            "--echo",
        ),
    ];
    if is_root() {
        // 127/8 frames injected on lo are martians to the kernel.
        cases.push((
            vec!["send", "--engine", "packet", "--to", "127.0.0.1:9"],
            "route_localnet",
        ));
    }
    for (args, why) in &cases {
        let out = bin().run(args, T);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(why), "{args:?}: {}", out.stderr);
        assert!(live_tagged(&out.tag).is_empty());
    }
    // Without CAP_NET_RAW (dropped from the bounding set, so even root has none).
    if bin().emulated() || Command::new("setpriv").arg("--help").output().is_err() {
        common::testkit::skip("the CAP_NET_RAW refusal is tested natively with setpriv");
        return;
    }
    let exe = bin().exe.to_str().unwrap().to_string();
    let no_raw = Bin::program("setpriv").with_prefix(&["--bounding-set=-net_raw", "--", &exe]);
    let out = no_raw.run(
        &["send", "--engine", "packet", "--to", "[::1]:9", "-t", "1"],
        T,
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("CAP_NET_RAW"), "{}", out.stderr);
}

/// gVisor refuses recvmmsg's MSG_WAITFORONE with EINVAL: the sink must fall back to another
/// way of waiting and receive every datagram, not spin on the error. Sender and sink run
/// in one sandbox with no network but its own loopback.
#[test]
fn under_gvisor_the_sink_receives_every_datagram() {
    let _turn = take_turn();
    let exe = bin().exe.to_str().unwrap().to_string();
    let p = port();
    let script = format!(
        "{exe} sink --listen 127.0.0.1:{p} -t 4 -q --json & sleep 1; \
         {exe} send --to 127.0.0.1:{p} -t 1 -w 1 --rate 2000/s -q; wait"
    );
    let Some(sandboxed) = common::testkit::gvisor(&["sh", "-c", &script]) else {
        return;
    };
    let out = sandboxed.run(&[], T);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let r = out.json();
    assert_eq!(r["outcome"], "completed");
    assert_eq!(r["errors"], serde_json::json!({}), "{}", r["errors"]);
    let d = &r["details"];
    assert_eq!(d["senders"], 1, "{d}");
    assert_eq!(d["lost"], 0, "{d}");
    assert!(r["totals"]["ops"].as_u64().unwrap() > 0, "{}", r["totals"]);
}
