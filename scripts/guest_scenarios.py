"""The scenarios of scripts/guest-test and their checks: what runs in each guest, and what
its report must show for the scenario to pass. The qemu driver (scripts/guest-test) boots
a guest per scenario and architecture, reads guest-init's markers into a Run and hands it
to the scenario's check.

Adding a stressor: add one Scenario(...) to SCENARIOS (guest-test names every crate under
stressors/ that has none): name, binary (in dist/<target>/), args, duration (how long it
should run), timeout (/init kills it past that: exit=timeout), check(Run) -> list of
problems, and optionally summary(Run) -> one line.
"""

import dataclasses
import statistics
from typing import Callable, Optional


@dataclasses.dataclass
class Run:
    """What a check function sees."""
    report: Optional[dict]   # parsed JSON report (None if missing / not JSON)
    exit: str                # "0", "1", "sig9", "timeout" (from the END marker)
    wall_s: float            # child start -> child end, guest clock
    procs_left: int          # processes alive after the child ended
    arch: str
    disk_files: Optional[list] = None   # names in the scratch disk's root after the run
    host_report: Optional[dict] = None  # the host-side companion's JSON report
    floors: list = dataclasses.field(default_factory=list)  # (processes, seconds) of each
                                        # floor= run, in order
    rounds: list = dataclasses.field(default_factory=list)  # Round of each rounds= run after
                                        # the first, in order


@dataclasses.dataclass
class Round:
    """A later round of a rounds= scenario (the first one is the report)."""
    exit: str
    teardown_s: Optional[float]
    live_procs: Optional[int]
    procs_left: int


@dataclasses.dataclass
class Scenario:
    name: str
    binary: Optional[str]    # file in dist/<target>/ (becomes /bin/<binary>); None: /init
    args: list
    duration: float          # how long the command should run (s)
    timeout: float           # guest-side hard limit for the command (s)
    check: Callable[[Run], list]   # returns a list of problems (empty: pass)
    summary: Callable[[Run], str] = lambda r: ""
    default: bool = True     # part of the default run (else only with --only)
    exclusive: bool = False  # runs with no other guest beside it (see SCENARIOS)
    init_args: tuple = ()    # extra key=value words for /init (selftest=...)
    arch_init_args: dict = dataclasses.field(default_factory=dict)  # arch -> more words
    disk_mib: int = 0        # a scratch disk: ext4 made on the host, virtio-blk, at /mnt
    # A host-side companion: argv of dist/x86_64/<binary> run on the host ("{port}" is the
    # guest's own host port), started before the boot ("boot") or when the command starts
    # ("child"); its JSON report is Run.host_report. hostfwd forwards that UDP port on the
    # host's loopback to the guest's 10.0.2.15:9000.
    host_args: tuple = ()
    host_when: str = "boot"
    hostfwd: bool = False
    after_s: float = 0       # what /init may take after the command (floor=), on top of 10 s


def need(cond, msg, problems):
    if not cond:
        problems.append(msg)


def dig(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def num(x):
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def common_checks(r: Run, stop_reason=None):
    """What every bomb's check opens with: exit 0, a report of the schema, completed (and
    stopped for `stop_reason` where given). The report (None if there is none) and the
    problems so far."""
    p = []
    need(r.exit == "0", f"exit={r.exit}, want 0", p)
    need(r.report is not None, "no JSON report on stdout", p)
    rep = r.report
    if rep is None:
        return None, p
    need(rep.get("schema") == "misbehave.report/1", f"schema={rep.get('schema')!r}", p)
    need(rep.get("outcome") == "completed", f"outcome={rep.get('outcome')!r}", p)
    if stop_reason is not None:
        need(rep.get("stop_reason") == stop_reason, f"stop_reason={rep.get('stop_reason')!r}", p)
    return rep, p


def check_cpubomb(r: Run, min_samples=9):
    rep, p = common_checks(r)
    if rep is None:
        return p
    ops = num(dig(rep, "totals", "ops"))
    need(ops is not None and ops > 0, f"totals.ops={ops!r}, want > 0", p)
    load = num(dig(rep, "details", "load_pct"))
    need(load is not None and load >= 80, f"details.load_pct={load!r}, want >= 80", p)
    started = dig(rep, "workers", "started")
    need(started == 2, f"workers.started={started!r}, want 2 (one per vCPU)", p)
    samples = rep.get("samples")
    n = len(samples) if isinstance(samples, list) else None
    need(n is not None and n >= min_samples, f"{n!r} samples, want >= {min_samples}", p)
    need(r.procs_left == 0, f"{r.procs_left} processes left behind", p)
    return p


def summary_cpubomb(r: Run):
    rep = r.report or {}
    load = num(dig(rep, "details", "load_pct"))
    return "ops=%s load=%s%% samples=%s" % (
        dig(rep, "totals", "ops"), "%.0f" % load if load is not None else "?",
        len(rep.get("samples") or []))


def check_membomb(r: Run):
    # No cap in a 512 MiB guest: the guest runs out of memory, the kernel OOM-kills the
    # workers (OOM score 1000), the supervisor (-1000) respawns them, survives, and reports.
    rep, p = common_checks(r, "deadline")
    if rep is None:
        return p
    need(dig(rep, "params", "effective", "max_mem_bytes") is None, "a cap was set", p)
    oom = num(dig(rep, "workers", "oom_killed"))
    need(oom is not None and oom >= 1, f"workers.oom_killed={oom!r}, want >= 1", p)
    resp = num(dig(rep, "workers", "respawned"))
    need(resp is not None and resp >= 1, f"workers.respawned={resp!r}, want >= 1", p)
    touched = num(dig(rep, "totals", "touched_bytes"))
    need(touched is not None and touched > 256 << 20,
         f"totals.touched_bytes={touched!r}, want > 256 MiB", p)
    n = len(rep.get("samples") or [])
    need(n >= 24, f"{n} samples, want >= 24", p)
    need(r.procs_left == 0, f"{r.procs_left} processes left behind", p)
    return p


def summary_membomb(r: Run):
    rep = r.report or {}
    peak = num(dig(rep, "details", "peak_resident_bytes"))
    return "oom_killed=%s respawned=%s first_oom_s=%s peak=%s MiB fill=%s GiB/s" % (
        dig(rep, "workers", "oom_killed"), dig(rep, "workers", "respawned"),
        dig(rep, "workers", "first_oom_s"),
        "%.0f" % (peak / 2**20) if peak is not None else "?",
        dig(rep, "details", "fill_gib_s"))


def check_diskthrash(r: Run):
    # The paper's test at full strength (10 workers, files twice the guest's memory) on an
    # ext4 scratch disk on virtio-blk: real disk traffic, the deadline holds, and the
    # filesystem holds nothing of the run afterwards (read from the host with debugfs).
    rep, p = common_checks(r)
    if rep is None:
        return p
    stress = num(rep.get("stress_s"))
    need(stress is not None and abs(stress - 10) < 1, f"stress_s={stress!r}, want about 10", p)
    td = num(rep.get("teardown_s"))
    need(td is not None and td < 3, f"teardown_s={td!r}, want < 3", p)
    w = num(dig(rep, "totals", "write_bytes"))
    need(w is not None and w > 0, f"totals.write_bytes={w!r}, want > 0", p)
    dw = num(dig(rep, "details", "device_write_bytes"))
    need(dw is not None and dw > 0, f"details.device_write_bytes={dw!r}: no disk traffic", p)
    need(dig(rep, "details", "device") == "vda", f"device={dig(rep, 'details', 'device')!r}", p)
    lat = num(dig(rep, "latency", "write", "count"))
    need(lat is not None and lat > 0, "no write latency", p)
    need(dig(rep, "workers", "started") == 10, "want the paper's 10 workers", p)
    need(r.procs_left == 0, f"{r.procs_left} processes left behind", p)
    need(r.disk_files is not None and sorted(r.disk_files) == ["lost+found"],
         f"files left on the scratch disk: {r.disk_files!r}", p)
    return p


def check_netflood_send(r: Run):
    # The guest floods the host's loopback sink through user-mode networking (10.0.2.2).
    p = []
    rep = r.report or {}
    need(r.exit == "0", f"exit={r.exit}, want 0", p)
    need(r.report is not None, "no JSON report on stdout", p)
    sent = num(dig(rep, "totals", "ops"))
    need(sent is not None and sent > 0, f"totals.ops={sent!r}, want > 0", p)
    h = r.host_report or {}
    need(r.host_report is not None, "the host's sink left no report", p)
    got = num(dig(h, "totals", "ops"))
    need(got is not None and got > 0, f"host sink received {got!r}, want > 0", p)
    need(got is None or sent is None or got <= sent, f"host sink received {got} > sent {sent}", p)
    need(dig(h, "details", "senders") == 2, f"senders={dig(h, 'details', 'senders')!r}, want 2", p)
    need(r.procs_left == 0, f"{r.procs_left} processes left behind", p)
    return p


def check_netflood_sink(r: Run):
    # The host floods the guest's sink through a forwarded port.
    p = []
    rep = r.report or {}
    need(r.exit == "0", f"exit={r.exit}, want 0", p)
    need(r.report is not None, "no JSON report on stdout", p)
    got = num(dig(rep, "totals", "ops"))
    need(got is not None and got > 0, f"guest sink received {got!r}, want > 0", p)
    need(num(dig(rep, "details", "senders")) and dig(rep, "details", "senders") >= 1,
         "no sender seen", p)
    h = r.host_report or {}
    sent = num(dig(h, "totals", "ops"))
    need(sent is not None and sent > 0, f"host sender sent {sent!r}", p)
    need(got is None or sent is None or got <= sent, f"received {got} > sent {sent}", p)
    need(r.procs_left == 0, f"{r.procs_left} processes left behind", p)
    return p


def summary_netflood(r: Run):
    rep, h = r.report or {}, r.host_report or {}
    return "guest ops=%s host ops=%s lost=%s" % (
        dig(rep, "totals", "ops"), dig(h, "totals", "ops"),
        dig(rep, "details", "lost") if dig(h, "details", "lost") is None else dig(h, "details", "lost"))


def summary_diskthrash(r: Run):
    rep = r.report or {}
    d = rep.get("details") or {}
    return "engine=%s write=%sMiB/s read=%sMiB/s disk=%s" % (
        d.get("engine"), d.get("write_mib_s"), d.get("read_mib_s"), r.disk_files)


# forkbomb's teardown against the guest's own floor (see check_forkbomb): the median over
# the rounds of teardown / floor may be at most the 1.5x. One round scatters too
# much to decide alone, so the slower architecture runs more rounds; the figures behind
# these numbers are in docs/notes/forkbomb-teardown.md.
FLOOR_RATIO = 1.5
FORKBOMB_ROUNDS = {"aarch64": 9, "x86_64": 3}


def forkbomb_pairs(r: Run):
    """(teardown_s, peak, floor processes, floor seconds) of each round."""
    rep = r.report or {}
    rounds = [(num(rep.get("teardown_s")), num(dig(rep, "peaks", "live_procs")))]
    rounds += [(x.teardown_s, x.live_procs) for x in r.rounds]
    # As many pairs as both have: check_forkbomb fails a count of rounds or floors short.
    return [(td, peak, n, s) for (td, peak), (n, s) in zip(rounds, r.floors, strict=False)]


def check_forkbomb(r: Run):
    # Uncapped (no --max-procs: the default is what the guest allows, threads-max in a
    # 512 MiB guest, minus 32): the process table fills, the deadline still holds, the
    # teardown kills every process of the run, none is left.
    rep, p = common_checks(r, "deadline")
    if rep is None:
        return p
    need(dig(rep, "params", "requested", "max-procs") is None, "a cap was given", p)
    cap = num(dig(rep, "params", "effective", "max_procs"))
    peak = num(dig(rep, "peaks", "live_procs"))
    need(peak is not None and cap is not None and peak <= cap,
         f"peaks.live_procs={peak!r} above max_procs={cap!r}", p)
    need(peak is not None and peak >= 1000, f"peaks.live_procs={peak!r}, want >= 1000 (table full)", p)
    # The default cap leaves the rest of the guest its margin: what the kernel threads and
    # init already use is counted, so no fork runs into threads-max.
    eagain = num(dig(rep, "errors", "EAGAIN")) or 0
    need(eagain == 0, f"errors.EAGAIN={eagain}: the bomb met the kernel's limit, not its cap", p)
    ops = num(dig(rep, "totals", "ops"))
    need(ops is not None and ops >= 1000, f"totals.ops={ops!r}, want >= 1000", p)
    st = num(rep.get("stress_s"))
    need(st is not None and st < 10.5, f"stress_s={st!r}, want about 10 (the deadline)", p)
    need(r.procs_left == 0, f"{r.procs_left} processes left behind", p)
    # The deadline holds to the sample, and the teardown to the floor of this guest: the
    # bomb runs several times (rounds=, FORKBOMB_ROUNDS), and after each /init
    # (floor=peak) times what a bare program needs to killpg and reap as many sleeping
    # processes as that round's peak. Each teardown is set against the floor taken right
    # after it (the same minutes of the same guest), and the median of those ratios must
    # stay within FLOOR_RATIO, so that one odd round does not decide.
    want = FORKBOMB_ROUNDS[r.arch]
    for i, x in enumerate(r.rounds, 2):
        need(x.exit == "0", f"round {i}: exit={x.exit}, want 0", p)
        need(x.procs_left == 0, f"round {i}: {x.procs_left} processes left behind", p)
    pairs = forkbomb_pairs(r)
    need(len(pairs) == want and len(r.rounds) == want - 1,
         f"{len(r.rounds) + 1} rounds and {len(r.floors)} FLOOR markers, want "
         f"{want} of each (rounds=, floor=peak)", p)
    ok = []
    for i, (td, pk, n, s) in enumerate(pairs, 1):
        if td is None or pk is None or not s:
            need(False, f"round {i}: no teardown_s or peak", p)
            continue
        need(n >= 0.9 * pk, f"round {i}: the floor forked {n} processes of the peak {pk}", p)
        ok.append((td, s))
    if len(ok) == want:
        ratio = forkbomb_ratio(ok)
        need(ratio <= FLOOR_RATIO,
             f"teardown over floor: median of the rounds' ratios {ratio:.2f}x, above "
             f"{FLOOR_RATIO}x (rounds: " + ", ".join("%.2fs/%.2fs" % x for x in ok) + ")", p)
    return p


def forkbomb_ratio(pairs):
    """The median over the rounds of teardown / floor, each round with its own floor."""
    return statistics.median(td / s for td, s in pairs)


def summary_forkbomb(r: Run):
    rep = r.report or {}
    ok = [(td, s) for td, _, _, s in forkbomb_pairs(r) if td is not None and s]
    return "peak=%s/%s full_s=%s forks=%s teardown/floor %s%s errors=%s" % (
        dig(rep, "peaks", "live_procs"), dig(rep, "params", "effective", "max_procs"),
        dig(rep, "details", "time_to_full_s"), dig(rep, "totals", "ops"),
        " ".join("%.2fs/%.2fs" % x for x in ok) or None,
        " median ratio %.2fx" % forkbomb_ratio(ok) if ok else "", rep.get("errors"))


def check_selftest_hang(r: Run):
    # The command sleeps for an hour: /init must kill it at timeout= and still report.
    p = []
    need(r.exit == "timeout", f"exit={r.exit}, want timeout", p)
    need(4.5 <= r.wall_s <= 7.0, f"wall_s={r.wall_s}, want about 5", p)
    need(r.procs_left == 0, f"{r.procs_left} processes left behind", p)
    return p


def check_selftest_orphans(r: Run):
    # The command leaves 3 sleeping orphans: /init must count them, kill them, power off.
    p = []
    need(r.exit == "0", f"exit={r.exit}, want 0", p)
    need(r.procs_left == 3, f"procs_left={r.procs_left}, want 3", p)
    return p


def expect_no_end_marker(r: Run):  # never reached: these guests print no END marker
    return ["init printed an END marker although it should have died"]


SCENARIOS = [
    Scenario("cpubomb", "cpubomb", ["-t", "10s", "--json"], duration=10, timeout=30,
             check=check_cpubomb, summary=summary_cpubomb),
    # 25 s, not 10: on a slow host the fill may not reach the OOM killer within 10 s
    # (docs/notes/guest-test-durations.md).
    Scenario("membomb", "membomb", ["-t", "25s", "--json"], duration=25, timeout=45,
             check=check_membomb, summary=summary_membomb),
    # exclusive: under software emulation a second guest beside it slows the teardown of
    # thousands of processes several times over (docs/notes/guest-test-durations.md).
    Scenario("forkbomb", "forkbomb", ["-t", "10s", "--json"], duration=10, timeout=40,
             check=check_forkbomb, summary=summary_forkbomb, exclusive=True,
             init_args=("floor=peak",),
             arch_init_args={a: (f"rounds={n}",) for a, n in FORKBOMB_ROUNDS.items()},
             after_s=400),
    Scenario("diskthrash", "diskthrash", ["--dir", "/mnt", "-t", "10s", "--json"],
             duration=10, timeout=30, check=check_diskthrash, summary=summary_diskthrash,
             disk_mib=2560),
    Scenario("netflood-send", "netflood",
             ["send", "--to", "10.0.2.2:{port}", "-w", "2", "--size", "1472", "--rate", "20k/s",
              "-t", "6s", "--json"],
             duration=6, timeout=30, check=check_netflood_send, summary=summary_netflood,
             host_args=("sink", "--listen", "127.0.0.1:{port}", "-w", "1", "-t", "60s",
                        "--json", "-q"), host_when="boot"),
    Scenario("netflood-sink", "netflood",
             ["sink", "--listen", "0.0.0.0:9000", "-w", "2", "-t", "8s", "--json"],
             duration=8, timeout=30, check=check_netflood_sink, summary=summary_netflood,
             host_args=("send", "--to", "127.0.0.1:{port}", "-w", "2", "--size", "1000",
                        "--rate", "5k/s", "-t", "5s", "--json", "-q"),
             host_when="child", hostfwd=True),
    # Harness self-tests (only with --only). selftest-ok/-hang/-orphans must PASS;
    # selftest-panic/-exit/-stuck must be reported as FAIL quickly (panic, exit)
    # or at the host's hard limit (stuck), never hang.
    # /init --selftest-ok N: one spinning thread per vCPU for N s, a cpubomb-shaped report.
    Scenario("selftest-ok", None, ["--selftest-ok", "3"], duration=3, timeout=20,
             check=lambda r: check_cpubomb(r, min_samples=2), summary=summary_cpubomb,
             default=False),
    Scenario("selftest-burn", None, ["--selftest-ok", "10"], duration=10, timeout=30,
             check=check_cpubomb, summary=summary_cpubomb, default=False),
    Scenario("selftest-hang", None, ["--selftest-hang"], duration=5, timeout=5,
             check=check_selftest_hang, default=False),
    Scenario("selftest-orphans", None, ["--selftest-orphans"], duration=0, timeout=20,
             check=check_selftest_orphans, default=False),
    Scenario("selftest-panic", None, ["--selftest-ok", "1"], duration=0, timeout=20,
             check=expect_no_end_marker, default=False, init_args=("selftest=init-panic",)),
    Scenario("selftest-exit", None, ["--selftest-ok", "1"], duration=0, timeout=20,
             check=expect_no_end_marker, default=False, init_args=("selftest=init-exit",)),
    Scenario("selftest-stuck", None, ["--selftest-ok", "1"], duration=0, timeout=5,
             check=expect_no_end_marker, default=False, init_args=("selftest=init-hang",)),
]
