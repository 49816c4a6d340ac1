"""What the bench scripts (scripts/bench-mem, bench-disk, bench-net) share: sizes, Debian's
peer tools, the best of a tool's rounds and its ratio to a peer round by round.

The benches alternate the tools round after round, so a neighbour's burst lands on one round
of each rather than on all rounds of one tool, and the order turns every round, so that
neither tool always runs after the other (on a shared disk, the second meets the first's
discards and write-back); a ratio taken within each round and shown with its spread over the
rounds says how far the comparison holds, which the ratio of two best-of figures hides.
"""

import os
import shutil
import subprocess

UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def size(s):
    """Bytes of '64M', '1G', '1GiB', '4096'."""
    s = s.strip().lower().rstrip("ib").rstrip("i")
    n = s.rstrip("kmg")
    return int(float(n) * UNITS[s[len(n):]])


def install_missing(packages):
    """Installs Debian's packages of the commands not on PATH: packages maps command ->
    package."""
    missing = sorted({pkg for cmd, pkg in packages.items() if shutil.which(cmd) is None})
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env,
                       stdout=subprocess.DEVNULL)


def rounds(reps, *runs):
    """Runs each of runs once a round for reps rounds, in turn, the order reversed every
    other round: one list of results per run, round r of each at index r."""
    out = [[] for _ in runs]
    for r in range(reps):
        order = list(zip(out, runs, strict=True))
        for got, run in order[::-1] if r % 2 else order:
            got.append(run())
    return out


def best(values):
    """The largest of values, None left out; None if none is left."""
    v = [x for x in values if x is not None]
    return max(v) if v else None


def median(values):
    """The middle of values (the upper one of an even count), None left out; None if none."""
    v = sorted(x for x in values if x is not None)
    return v[len(v) // 2] if v else None


def ratio(a, b):
    """a/b as '1.23', or '-' when either is missing."""
    return "-" if a is None or not b else f"{a / b:.2f}"


def spread(values, bases):
    """Round by round values/bases: 'median [min-max]'."""
    rs = sorted(v / b for v, b in zip(values, bases, strict=True) if v is not None and b)
    if not rs:
        return "-"
    return f"{rs[len(rs) // 2]:.2f} [{rs[0]:.2f}-{rs[-1]:.2f}]"
