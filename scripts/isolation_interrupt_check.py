#!/usr/bin/env python3
"""Ctrl-C in the middle of a Docker isolation experiment leaves nothing behind.

    scripts/isolation_interrupt_check.py [--platform docker|gvisor]

Starts `scripts/isolation-experiment --platform docker` (2 guests, baseline and cpu sets of
10 s, 128 MiB) in a process group of its own, waits until the cpu set's containers run
(the bomb beside the probe), sends SIGINT to the group as a terminal's Ctrl-C does, and
then checks: exit status 130; the engine held no container, network, image or volume of
the run before it stopped; the run's dockerd is gone, and so is every process naming its
work dir (containerd, containerd-shim, runsc); no cgroup, mount, bridge or work dir of the
run is left, nor the /run/docker, /run/containerd it made, nor a stack dump of its
containerd; no more containerd-shim processes than before. Ends with "N passed, N failed"
(scripts/test). Skips (via $MISBEHAVE_SKIP_LOG) where the platform cannot run here.
"""

import argparse
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
from misbehave_docker import (LABEL, containerd_pids, docker_cli, leftovers,  # noqa: E402
                              procs_matching, why_not)

ROOT = Path(__file__).resolve().parent.parent


def skip(why):
    line = f"SKIP isolation_interrupt_check: {why}"
    print(line, file=sys.stderr, flush=True)
    if os.environ.get("MISBEHAVE_SKIP_LOG"):
        with open(os.environ["MISBEHAVE_SKIP_LOG"], "a") as f:
            f.write(line + "\n")


def shims():
    return len([p for p, cmd in procs_matching("containerd-shim") if "containerd-shim" in
                cmd.split()[0]])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--platform", choices=["docker", "gvisor"], default="docker")
    args = ap.parse_args()
    why = why_not(args.platform == "gvisor")
    if why:
        skip(f"--platform {args.platform}: {why}")
        print("0 passed, 0 failed")
        return 0
    verdict = Verdicts()
    shims_before = shims()
    # dockerd makes these whatever its exec-root; the run removes them if it made them.
    run_dirs = [d for d in ("/run/docker", "/run/containerd") if not Path(d).exists()]
    out = Path(tempfile.mkdtemp(prefix="iso-interrupt-"))
    errlog = out / "stderr.log"
    cmd = [str(ROOT / "scripts" / "isolation-experiment"), "--platform", args.platform,
           "--guests", "2", "--phase-seconds", "10", "--mem", "128", "--phases", "baseline,cpu",
           "--out", str(out / "results")]
    t0 = time.monotonic()
    sock = dockerd = None
    cpids = []
    sent = False
    with started(cmd, out, stderr=errlog) as p:
        # Waits (at most 5 minutes) for the cpu set's two containers and its bomb to run.
        for _ in range(3000):
            if p.poll() is not None or time.monotonic() - t0 > 300:
                break
            text = errlog.read_text(errors="replace")
            m = re.search(r"dockerd pid (\d+), socket (\S+)", text)
            if m:
                dockerd, sock = int(m.group(1)), m.group(2)
            if sock and "set baseline:" in text:
                r = subprocess.run([docker_cli(), "-H", f"unix://{sock}", "ps", "-q", "--filter",
                                    f"label={LABEL}={p.pid}", "--filter", "status=running"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                   timeout=30, env=dict(os.environ, DOCKER_CONFIG=str(out)))
                if len(r.stdout.split()) >= 2:
                    time.sleep(3)   # mid-phase: the probes and the bomb at work
                    cpids = containerd_pids(str(Path(sock).parent.parent))
                    os.killpg(p.pid, signal.SIGINT)
                    sent = True
                    break
            time.sleep(0.1)
        verdict(sent, f"SIGINT sent mid-phase ({time.monotonic() - t0:.0f}s after start)")
        try:
            rc = p.wait(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            rc = p.wait(timeout=30)
        text = errlog.read_text(errors="replace")
        verdict(rc == 130, f"exit status 130 after SIGINT (got {rc}, "
                f"{time.monotonic() - t0:.0f}s after start)")
        m = re.search(r"the engine held (.*) of the run before it stopped", text)
        counts = {k: int(v) for v, k in re.findall(r"(-?\d+) (\w+)", m.group(1))} if m else {}
        verdict(bool(counts) and not any(counts.values()) and
                {"containers", "networks", "images", "volumes"} <= set(counts),
                f"no containers, networks, images or volumes of the run left: {counts}")
        verdict(dockerd is not None and not Path(f"/proc/{dockerd}").exists(),
                f"the run's dockerd (pid {dockerd}) is gone")
        work = Path(sock).parent.parent if sock else None
        left = leftovers(work, p.pid, f"mbiso{p.pid}"[:15]) if work else ["no socket seen"]
        verdict(not left, "no process (containerd, shim, runsc), cgroup, mount, bridge or work "
                "dir of the run left" + (f": {left[:4]}" if left else ""))
        dumps = [f for f in (Path(os.environ.get("TMPDIR") or "/tmp") /
                             f"containerd.{c}.stacks.log" for c in cpids) if f.exists()]
        verdict(bool(cpids) and not dumps, f"no stack dump of the run's containerd {cpids} left"
                + (f": {dumps}" if dumps else ""))
        made = [d for d in run_dirs if Path(d).exists()]
        verdict(not made, "no /run/docker or /run/containerd made by the run left"
                + (f": {made}" if made else ""))
        verdict(shims() <= shims_before,
                f"containerd-shim processes: {shims()} (before the run: {shims_before})")
        if verdict.failed:
            print(text[-3000:], file=sys.stderr)
    return verdict.end()


if __name__ == "__main__":
    sys.exit(main())
