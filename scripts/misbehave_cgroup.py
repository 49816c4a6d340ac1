"""A cgroup of the caller's own, for the Python benches (bench-fork, bench-mem): the
Python twin of `common::cgroup::RunCgroup` (common/src/cgroup.rs), so the benches hold one
copy of this code.

    from misbehave_cgroup import RunCgroup
    with RunCgroup("pids", "bench-fork-churn") as cg:
        cg.limit_pids(1000)
        subprocess.run(argv, preexec_fn=cg.enter)

Made one step below this process's own cgroup of the controller, found through
/proc/self/cgroup and /proc/self/mountinfo like `common::sys::cgroup_dir` (so it also works
inside containers and where the hierarchy is mounted somewhere unusual); cgroup v1 or v2,
where the controller is first enabled for children in the parent's cgroup.subtree_control.
Named `<name>-<pid>` after the process that made it; making one first sweeps the empty
cgroups `<name>-<pid>` whose maker is dead (a bench SIGKILLed before it could remove its
own). Removal kills whatever is inside, nested cgroups too, and removes the directories
deepest first, with retries; used with `with`, also on an exception or Ctrl-C.
"""

import os
import re
import signal
import sys
import time
from pathlib import Path


class NoCgroup(OSError):
    """This machine (or container) shows no hierarchy with the controller."""


def _read(path):
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _join(mnt, root, own):
    rel = own[len(root):] if own.startswith(root) else own
    d = Path(mnt) / rel.lstrip("/")
    # Without a cgroup namespace the path may name a directory this mount does not show.
    return d if d.is_dir() else Path(mnt)


def own_cgroup(controller):
    """(directory, is_v2) of this process's cgroup of `controller`, or None."""
    cgroups = Path("/proc/self/cgroup").read_text().splitlines()
    found_v2 = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if " - " not in line:
            continue
        pre, post = line.split(" - ", 1)
        pre, post = pre.split(), post.split()
        if len(pre) < 5 or len(post) < 3:
            continue
        root, mnt, fstype, opts = pre[3], pre[4], post[0], post[2]
        if fstype == "cgroup" and controller in opts.split(","):
            own = next((path for _, ctrls, path in (ln.split(":", 2) for ln in cgroups)
                        if controller in ctrls.split(",")), None)
            if own is None:
                return None
            return _join(mnt, root, own), False
        if fstype == "cgroup2" and found_v2 is None:
            own = next((ln[3:] for ln in cgroups if ln.startswith("0::")), None)
            if own is None:
                continue
            d = _join(mnt, root, own)
            enabled = (_read(Path(mnt) / "cgroup.controllers") or "").split()
            if controller in enabled or (d / f"{controller}.max").exists():
                found_v2 = d, True
    return found_v2


def _prog():
    return Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "misbehave_cgroup"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return True


def _dirs(top):
    """`top` and the cgroups nested in it, deepest first."""
    found = [Path(root) for root, _, _ in os.walk(top)]
    return sorted(found, key=lambda p: -len(p.parts))


def _sweep_stale(parent, name):
    """Removes the cgroups `<name>-<pid>` under `parent` whose maker is dead. Nothing inside
    is killed: one with a process still in it stays."""
    pattern = re.compile(re.escape(name) + r"-(\d+)")
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for e in entries:
        m = pattern.fullmatch(e.name)
        if not m or not e.is_dir() or _alive(int(m[1])):
            continue
        for d in _dirs(e):
            try:
                d.rmdir()
            except OSError:
                break


class RunCgroup:
    """A cgroup of the run's own: `<own cgroup of controller>/<name>-<pid>`."""

    def __init__(self, controller, name):
        self.controller = controller
        own = own_cgroup(controller)
        if own is None:
            raise NoCgroup(f"no {controller} cgroup hierarchy here")
        self.parent, self.v2 = own
        _sweep_stale(self.parent, name)
        if self.v2:
            try:
                (self.parent / "cgroup.subtree_control").write_text(f"+{controller}")
            except OSError:
                pass
        self.dir = self.parent / f"{name}-{os.getpid()}"
        self.dir.mkdir()

    @property
    def version(self):
        return 2 if self.v2 else 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False

    def set(self, file, value):
        """Writes `value` to one of the cgroup's files (OSError if it cannot)."""
        (self.dir / file).write_text(str(value))

    def get(self, file):
        """One of the cgroup's files, trimmed; None if it cannot be read."""
        return _read(self.dir / file)

    def get_int(self, file, default=-1):
        try:
            return int(self.get(file))
        except (TypeError, ValueError):
            return default

    def limit_pids(self, n):
        """At most `n` processes (and threads) inside."""
        self.set("pids.max", n)

    def limit_memory(self, nbytes):
        """At most `nbytes` of memory inside (the kernel OOM-kills inside past it)."""
        self.set("memory.max" if self.v2 else "memory.limit_in_bytes", nbytes)

    def memory_usage(self):
        """Memory in use inside now (v1 memory.usage_in_bytes, v2 memory.current); 0 if
        unreadable."""
        return self.get_int("memory.current" if self.v2 else "memory.usage_in_bytes", 0)

    def memory_peak(self):
        """The highest memory use seen inside (v1 max_usage_in_bytes, v2 memory.peak)."""
        return self.get_int("memory.peak" if self.v2 else "memory.max_usage_in_bytes", None)

    def pids_current(self):
        """pids.current; -1 if unreadable (the cgroup is gone)."""
        return self.get_int("pids.current")

    def event(self, file, key):
        """A count from one of the cgroup's `key value` files: event("pids.events", "max"),
        event("memory.events", "oom_kill"); None if absent."""
        for line in (self.get(file) or "").splitlines():
            k, _, v = line.partition(" ")
            if k == key:
                try:
                    return int(v)
                except ValueError:
                    return None
        return None

    @property
    def procs_file(self):
        return self.dir / "cgroup.procs"

    def enter(self):
        """preexec_fn: moves the child into the cgroup between fork and exec (if it cannot,
        the child does not exec and subprocess raises in the parent)."""
        (self.dir / "cgroup.procs").write_text("0")

    def dirs(self):
        """This cgroup and those nested in it (a run's own), deepest first."""
        return _dirs(self.dir)

    def procs(self):
        """Pids inside, nested cgroups included."""
        out = []
        for d in self.dirs():
            try:
                out += [int(p) for p in (d / "cgroup.procs").read_text().split()]
            except (OSError, ValueError):
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
        """SIGKILLs everything inside, nested cgroups too: at once with cgroup.kill where
        the kernel has it (v2, Linux 5.14+), and each process found."""
        if self.v2:
            try:
                (self.dir / "cgroup.kill").write_text("1")
            except OSError:
                pass
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

    def remove(self, tries=1000):
        """Kills what is inside and removes the cgroup and those nested in it, deepest
        first; `tries` attempts 10 ms apart. True once gone; warns on stderr if not."""
        for _ in range(tries):
            for d in self.dirs():
                if (d / "freezer.state").exists():  # a frozen cgroup's processes cannot die
                    try:
                        (d / "freezer.state").write_text("THAWED")
                    except OSError:
                        pass
            self.kill_all()
            for d in self.dirs():
                try:
                    d.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    break
            if not self.dir.exists():
                return True
            time.sleep(0.01)
        print(f"{_prog()}: warning: could not remove {self.dir}", file=sys.stderr)
        return False
