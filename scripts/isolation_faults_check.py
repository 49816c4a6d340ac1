#!/usr/bin/env python3
"""The isolation experiment survives its guests, and says when its host side fails.

    scripts/isolation_faults_check.py

Starts `scripts/isolation-experiment` on qemu (2 guests, sets baseline, cpu and net-send of
5 s, 128 MiB) in a process group of its own and, from the outside, kills (SIGKILL) guest2's
qemu once its probe runs in the cpu set, then the host-side `netflood sink` once the bad
guest floods it in net-send. Then checks: the run went on to net-send and ended with the
table; cpu's guest2 is DNR with the reason (its qemu died) in a DNR file, the table's
footnote and the CSV, every other Good cell a number; the sink's death is in RESULTS/FAULTS,
the README and under the printed table, and the exit status is 1; the run's namespace and
processes are gone. Ends with "N passed, N failed" (scripts/test).
"""

import csv
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from misbehave_check import Verdicts, started  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"-?\d+(\.\d+)?")


def ppid(pid):
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return b""


def descendants_named(root, comm_prefix, word):
    """PIDs below `root` (up to 4 generations: ip netns exec, timeout) whose name starts with
    `comm_prefix` and whose command line holds `word`."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            comm = (d / "comm").read_text().strip()
            cmd = cmdline(d.name).decode(errors="replace")
        except OSError:
            continue
        if not comm.startswith(comm_prefix) or word not in cmd:
            continue
        p = int(d.name)
        for _ in range(4):
            p = ppid(p)
            if p == root:
                found.append(int(d.name))
                break
            if p <= 1:
                break
    return found


def wait_for(pred, seconds):
    """Polls `pred` every 0.1 s for at most `seconds`: its first true value, else None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    return None


def main():
    verdict = Verdicts()
    out = Path(tempfile.mkdtemp(prefix="iso-faults-"))
    res = out / "results"
    errlog, outlog = out / "stderr.log", out / "stdout.log"
    cmd = [str(ROOT / "scripts" / "isolation-experiment"), "--platform", "qemu",
           "--guests", "2", "--phase-seconds", "5", "--mem", "128",
           "--phases", "baseline,cpu,net-send", "--out", str(res)]
    t0 = time.monotonic()
    with started(cmd, out, stdout=outlog, stderr=errlog) as p:
        ns = f"misbehave-iso-{p.pid}"
        def console(name, marker):
            f = res / "consoles" / name
            return f.exists() and marker in f.read_bytes()
        # guest2's qemu in cpu, once its probe runs (a boot takes up to a minute under TCG).
        killed_qemu = work = None
        if wait_for(lambda: console("cpu-guest2.log", b"===MISBEHAVE-CHILD-START")
                    or p.poll() is not None, 300) and p.poll() is None:
            time.sleep(1)   # mid-phase
            pids = descendants_named(p.pid, "qemu-system", "scenario=cpu")
            pids = [q for q in pids if b"ifname=tap1," in cmdline(q)]
            for q in pids:
                m = re.search(rb"file=(\S+)/guest\d\.img", cmdline(q))
                work = m.group(1).decode() if m else work
                os.kill(q, signal.SIGKILL)
            killed_qemu = pids
        verdict(killed_qemu and len(killed_qemu) == 1,
                f"guest2's qemu killed mid-phase in cpu: {killed_qemu} "
                f"({time.monotonic() - t0:.0f}s after start)")
        # The host-side sink in net-send, once the bad guest's flood runs.
        killed_sink = None
        if wait_for(lambda: console("net-send-guest1.log", b"===MISBEHAVE-ALSO-START")
                    or p.poll() is not None, 300) and p.poll() is None:
            time.sleep(1)
            # The sink and its workers (the run's child and the processes it forked).
            pids = descendants_named(p.pid, "netflood", " sink ")
            killed_sink = [q for q in pids if ppid(q) == p.pid]
            for q in pids:
                os.kill(q, signal.SIGKILL)
        verdict(killed_sink and len(killed_sink) == 1,
                f"the host-side netflood sink (and its workers) killed mid-phase in net-send: "
                f"{killed_sink}")
        try:
            rc = p.wait(timeout=400)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            rc = p.wait(timeout=30)
        text, stdout = errlog.read_text(errors="replace"), outlog.read_text(errors="replace")
        verdict(rc == 1, f"exit status 1: a host-side tool died (got {rc}, "
                f"{time.monotonic() - t0:.0f}s after start)")
        dnr = res / "reports" / "cpu" / "guest2" / "DNR"
        why = dnr.read_text().strip() if dnr.exists() else ""
        verdict(why.startswith("its qemu died mid-set (killed by SIGKILL)")
                and not (dnr.parent / "probe.json").exists(),
                f"reports/cpu/guest2/DNR says why: {why!r}")
        others = [f"{s}/{g}" for s in ("baseline", "cpu", "net-send") for g in ("guest1", "guest2")
                  if f"{s}/{g}" != "cpu/guest2"
                  and not (res / "reports" / s / g / "probe.json").exists()]
        verdict(not others, "every other guest of every set reported, net-send after the "
                f"killed guest too{': missing ' + str(others) if others else ''}")
        rows = list(csv.DictReader(open(res / "degradation.csv"))) \
            if (res / "degradation.csv").exists() else []
        wrong = []
        for r in rows:
            lost = r["test"] == "cpu"
            for c in ("good_mean_pct", "good_worst_pct"):
                if lost != (r[c] == "DNR") or (not lost and not NUMBER.fullmatch(r[c])):
                    wrong.append((r["test"], r["kind"], c, r[c]))
            if lost and f"on guest2 in cpu: {why}" not in r["good_dnr_reason"]:
                wrong.append((r["test"], r["kind"], "good_dnr_reason", r["good_dnr_reason"]))
            # The bad guest reported in every set; a kind its bomb starved may still be DNR
            # (under TCG a flood can leave a kind nothing offered), but never for guest2.
            if not (NUMBER.fullmatch(r["bad_pct"]) or r["bad_pct"] == "DNR") \
                    or "guest2" in r["bad_dnr_reason"]:
                wrong.append((r["test"], r["kind"], "bad_pct", r["bad_pct"], r["bad_dnr_reason"]))
        verdict(rows and {r["test"] for r in rows} == {"cpu", "net-send"} and not wrong,
                "the table: DNR with the reason in exactly cpu's Good cells (guest2 the only "
                f"well-behaved guest), numbers in the others{': ' + str(wrong[:3]) if wrong else ''}")
        md = (res / "degradation.md").read_text() if (res / "degradation.md").exists() else ""
        verdict("its qemu died mid-set" in md and "its qemu died mid-set" in stdout,
                "the Markdown table (file and printed) has the reason as a footnote")
        fault = "net-send: the host-side netflood sink died before the set ended " \
            "(killed by SIGKILL)"
        faults = (res / "FAULTS").read_text() if (res / "FAULTS").exists() else ""
        readme = (res / "README.md").read_text() if (res / "README.md").exists() else ""
        verdict(faults == fault + "\n" and fault in readme and fault in stdout and fault in text,
                f"the sink's death in FAULTS, the README, under the table and the log: {faults!r}")
        left = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, text=True,
                              timeout=30).stdout
        procs = [d.name for d in Path("/proc").iterdir() if d.name.isdigit()
                 and work.encode() in cmdline(d.name)] if work else ["no work dir"]
        verdict(ns not in left and not procs and work and not Path(work).exists(),
                f"the run's namespace, work dir {work} and processes are gone"
                + (f": {procs}" if procs else ""))
        if verdict.failed:
            print(text[-3000:], file=sys.stderr)
    return verdict.end()


if __name__ == "__main__":
    sys.exit(main())
