"""A cgroup of the caller's own, for the Python benches (bench-fork, bench-mem): the
Python twin of `common::cgroup::RunCgroup`, so the benches hold one copy of this code.

    from misbehave_cgroup import RunCgroup
    with RunCgroup("pids", "bench-fork-churn") as cg:
        cg.limit_pids(1000)
        subprocess.run(argv, preexec_fn=cg.enter)

Made one step below this process's own cgroup of the controller (found through
/proc/self/cgroup and /proc/self/mountinfo; cgroup v1 or v2, where the controller is first
enabled for children), named `<name>-<pid>`. Removal kills whatever is inside, nested
cgroups too (deepest first), also on an exception or Ctrl-C when used with `with`.
"""

import os
import signal
import time
from pathlib import Path


def own_cgroup(controller):
    """(directory, is_v2) of this process's cgroup for `controller`, or None."""
    v1 = v2 = None
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hid, ctrls, path = line.split(":", 2)
        if controller in ctrls.split(","):
            v1 = path
        if hid == "0" and ctrls == "":
            v2 = path
    found_v2 = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, post = line.split(" - ", 1)
        pre, post = pre.split(), post.split()
        root, mnt, fstype, opts = pre[3], pre[4], post[0], post[2]
        if fstype == "cgroup" and controller in opts.split(",") and v1 is not None:
            rel = v1[len(root):] if v1.startswith(root) else v1
            d = Path(mnt) / rel.lstrip("/")
            return (d if d.is_dir() else Path(mnt)), False
        if fstype == "cgroup2" and v2 is not None and found_v2 is None:
            rel = v2[len(root):] if v2.startswith(root) else v2
            d = Path(mnt) / rel.lstrip("/")
            enabled = (Path(mnt) / "cgroup.controllers").read_text().split() \
                if (Path(mnt) / "cgroup.controllers").exists() else []
            if controller in enabled:
                found_v2 = (d if d.is_dir() else Path(mnt)), True
    return found_v2


class RunCgroup:
    def __init__(self, controller, name):
        own = own_cgroup(controller)
        if own is None:
            raise OSError(f"no {controller} cgroup hierarchy here")
        parent, self.v2 = own
        if self.v2:
            try:
                (parent / "cgroup.subtree_control").write_text(f"+{controller}")
            except OSError:
                pass
        self.dir = parent / f"{name}-{os.getpid()}"
        self.dir.mkdir()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False

    def set(self, file, value):
        (self.dir / file).write_text(str(value))

    def get(self, file):
        try:
            return (self.dir / file).read_text().strip()
        except OSError:
            return None

    def get_int(self, file, default=-1):
        v = self.get(file)
        try:
            return int(v)
        except (TypeError, ValueError):
            return default

    def limit_pids(self, n):
        self.set("pids.max", n)

    def limit_memory(self, nbytes):
        self.set("memory.max" if self.v2 else "memory.limit_in_bytes", nbytes)

    def memory_usage(self):
        return self.get_int("memory.current" if self.v2 else "memory.usage_in_bytes", 0)

    def pids_current(self):
        return self.get_int("pids.current")

    def event(self, file, key):
        """A count from a `key value` file: event("pids.events", "max")."""
        for line in (self.get(file) or "").splitlines():
            k, _, v = line.partition(" ")
            if k == key:
                return int(v)
        return None

    def enter(self):
        """preexec_fn: moves the child into the cgroup before it execs."""
        (self.dir / "cgroup.procs").write_text("0")

    def dirs(self):
        """This cgroup and those nested in it (a run's own), deepest first."""
        found = [Path(root) for root, _, _ in os.walk(self.dir)]
        return sorted(found, key=lambda p: -len(p.parts))

    def procs(self):
        """Pids inside, nested cgroups included."""
        out = []
        for d in self.dirs():
            try:
                out += [int(p) for p in (d / "cgroup.procs").read_text().split()]
            except OSError:
                pass
        return out

    def live(self):
        """Processes inside that are not zombies."""
        n = 0
        for p in self.procs():
            try:
                if Path(f"/proc/{p}/stat").read_text().rsplit(") ", 1)[1][0] not in "ZX":
                    n += 1
            except (OSError, IndexError):
                pass
        return n

    def kill_all(self):
        for p in self.procs():
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def wait_empty(self, timeout=10.0):
        """Waits for the processes inside to go; kills them past `timeout`."""
        t0 = time.monotonic()
        while self.procs():
            if time.monotonic() - t0 > timeout:
                self.kill_all()
            time.sleep(0.01)

    def remove(self):
        """Kills what is inside and removes the cgroup and those nested in it."""
        for _ in range(1000):
            try:
                self.kill_all()
                for d in self.dirs():
                    d.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)
        print(f"misbehave_cgroup: warning: could not remove {self.dir}", flush=True)
