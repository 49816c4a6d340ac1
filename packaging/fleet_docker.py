#!/usr/bin/env python3
"""The container fleet of packaging/test-fleet-docker: a Docker engine of its own
(scripts/misbehave_docker.py: a private dockerd, nothing of another daemon touched), an
image made from this machine's own Python, dash and coreutils (nothing pulled: Ansible's
Docker connection execs into a container and its modules need a Python there), an
--internal network and one capped container per host.

    fleet_docker.py up WORK READY REPORT --hosts h1,h2,h3

starts all of it, writes READY (JSON: socket, containers and their addresses) and waits;
SIGTERM, SIGINT or the death of its parent (the test script) removes everything again and
writes REPORT (JSON: what was left, problems), exit 0 when nothing was. WORK's name is
mbiso-*/ so that a run killed with SIGKILL is swept by the next one (sweep_stale), as
scripts/isolation-experiment's are.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from misbehave_docker import (  # noqa: E402
    LABEL,
    DockerEngine,
    DockerError,
    leftovers,
    sweep_stale,
    why_not,
)

PYTHON = "/usr/bin/python3"
# Large and never imported by Ansible's modules: the static libpython and pip's wheels.
STDLIB_SKIP = ("config-3.", "ensurepip", "idlelib", "tkinter", "turtledemo")


class Stop(Exception):
    pass


def on_signal(signum, _frame):
    # The first signal ends the wait (or the setup); the cleanup itself is not interrupted.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stop(signal.Signals(signum).name)


# ---------------------------------------------------------------------- the image
def add_path(path, root):
    """Copies `path` of this machine to the same place under `root`, symlinks as symlinks
    (and what they point to), directories whole."""
    p = Path(path)
    # Through the merged-/usr links of the parents (/lib -> usr/lib), which root has too.
    p = Path(os.path.realpath(p.parent)) / p.name
    dst = root / p.relative_to("/")
    if dst.exists() or dst.is_symlink():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    if p.is_symlink():
        target = os.readlink(p)
        dst.symlink_to(target)
        add_path(target if os.path.isabs(target) else p.parent / target, root)
    elif p.is_dir():
        shutil.copytree(p, dst, symlinks=True,
                        ignore=lambda d, names: [n for n in names if n.startswith(STDLIB_SKIP)])
        for d, dirs, files in os.walk(dst):
            for n in dirs + files:
                q = Path(d) / n
                if q.is_symlink():
                    t = os.readlink(q)
                    src = Path("/") / q.relative_to(root)
                    add_path(t if os.path.isabs(t) else src.parent / t, root)
    else:
        shutil.copy2(p, dst)


def elf_deps(files):
    """The shared libraries and the loader `ldd` names for `files`."""
    deps = set()
    for f in files:
        r = subprocess.run(["ldd", str(f)], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            parts = line.split()
            if "=>" in parts and len(parts) > 2 and parts[2].startswith("/"):
                deps.add(parts[2])
            elif parts and parts[0].startswith("/"):
                deps.add(parts[0])
    return sorted(deps)


def make_rootfs(root):
    """A root filesystem of this machine's python3 (interpreter and standard library), dash
    as /bin/sh and coreutils (dd for the connection's file transfers, mkdir, rm, chmod, cat
    for Ansible's shell commands), the libraries they load, and /etc/passwd for root."""
    root.mkdir(parents=True)
    for top in ("bin", "sbin", "lib", "lib64"):
        if os.path.islink(f"/{top}"):
            (root / top).symlink_to(os.readlink(f"/{top}"))
    real = os.path.realpath(PYTHON)
    version = Path(real).name  # python3.11
    stdlib = Path("/usr/lib") / version
    coreutils = subprocess.run(["dpkg", "-L", "coreutils"], capture_output=True, text=True,
                               check=True).stdout.split()
    bins = [PYTHON, "/bin/sh", "/usr/bin/dash"] + \
        [p for p in coreutils if "/bin/" in p and os.path.isfile(p)]
    for p in bins + [str(stdlib)]:
        add_path(p, root)
    elf = [real, "/usr/bin/dash"] + [p for p in bins if os.path.isfile(p)] + \
        [str(p) for p in (stdlib / "lib-dynload").glob("*.so")]
    for p in elf_deps(elf):
        add_path(p, root)
    etc = root / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                "nobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    for d, mode in (("root", 0o700), ("tmp", 0o1777), ("var/tmp", 0o1777)):
        (root / d).mkdir(parents=True, exist_ok=True)
        os.chmod(root / d, mode)


def build_image(eng, root):
    ctx = root.parent
    (ctx / "Dockerfile").write_text(f"FROM scratch\nCOPY {root.name}/ /\n"
                                    f"LABEL {LABEL}={eng.run_id}\n")
    eng.cmd("build", "-q", "--label", f"{LABEL}={eng.run_id}", "-t", eng.image, ctx,
            timeout=300)
    shutil.rmtree(ctx)


# ---------------------------------------------------------------------- the network
def pick_subnet(run_id):
    """10.205.N.0/24, N from the pid, moved on past any subnet this host already uses
    (scripts/isolation-experiment takes 10.204.N, packaging/test-fleet 10.200-249.N)."""
    used = subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True).stdout \
        + subprocess.run(["ip", "-4", "addr", "show"], capture_output=True, text=True).stdout
    for k in range(250):
        n = (run_id + k) % 250 + 1
        if f"10.205.{n}." not in used:
            return f"10.205.{n}"
    raise DockerError("no free 10.205.N.0/24 subnet")


def up(args):
    work = Path(args.work)
    run_id = os.getpid()
    parent = os.getppid()
    bridge = f"mbiso{run_id}"[:15]
    eng = DockerEngine(work, run_id)
    report = {"run_id": run_id, "left_in_engine": {}, "problems": [], "leftovers": []}
    rc = 0
    orphaned = False
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        why = why_not()
        if why:
            raise DockerError(why)
        sweep_stale(work.parent.parent, log=lambda m: print(f"fleet_docker: {m}", file=sys.stderr))
        t0 = time.monotonic()
        eng.start()
        t_daemon = time.monotonic() - t0
        root = work / "image" / "rootfs"
        make_rootfs(root)
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink())
        build_image(eng, root)
        t_image = time.monotonic() - t0 - t_daemon
        subnet = pick_subnet(run_id)
        eng.create_network(f"mbiso-{run_id}", f"{subnet}.0/24", f"{subnet}.1", bridge)
        hosts = {}
        for i, h in enumerate(args.hosts.split(",")):
            name = f"mbiso-{run_id}-{h}"
            ip = f"{subnet}.{11 + i}"
            # docker-init reaps what the async wrapper leaves to PID 1; sleep keeps it up.
            eng.cmd("run", "-d", "--init", "--name", name, "--hostname", h,
                    "--label", f"{LABEL}={run_id}", "--network", eng.network, "--ip", ip,
                    "--cpus", args.cpus, "-m", args.memory, "--memory-swap", args.memory,
                    "--pids-limit", args.pids, eng.image, "/bin/sleep", "infinity")
            hosts[h] = {"container": name, "ip": ip}
        ready = {"run_id": run_id, "socket": str(eng.sock), "dockerd_pid": eng.pid, "version": eng.version(),
                 "image": eng.image, "image_bytes": size, "network": eng.network,
                 "subnet": f"{subnet}.0/24", "bridge": bridge, "hosts": hosts,
                 "daemon_s": round(t_daemon, 1), "image_s": round(t_image, 1)}
        Path(args.ready + ".tmp").write_text(json.dumps(ready, indent=1) + "\n")
        os.rename(args.ready + ".tmp", args.ready)
        # Until told to stop, or until the test script is gone (SIGKILLed): then clean up.
        while os.getppid() == parent:
            time.sleep(0.5)
        report["problems"].append("the test script went away")
        orphaned = True
    except Stop as e:
        print(f"fleet_docker: {e}: removing the fleet", file=sys.stderr)
    except (DockerError, subprocess.SubprocessError, OSError) as e:
        report["problems"].append(f"setup: {e}")
        print(f"fleet_docker: {e}", file=sys.stderr)
        rc = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        left, problems = eng.stop()
        report["left_in_engine"] = left
        report["problems"] += problems
        shutil.rmtree(work, ignore_errors=True)
        report["leftovers"] = leftovers(work, run_id, bridge)
        Path(args.report).write_text(json.dumps(report, indent=1) + "\n")
        if orphaned:
            # Nobody is left to read the report or remove the test's folder (mbiso-*/).
            print(json.dumps(report), file=sys.stderr)
            shutil.rmtree(work.parent, ignore_errors=True)
    if report["problems"] or report["leftovers"] or any(report["left_in_engine"].values()):
        rc = rc or 1
    return rc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="start the fleet, wait for a signal, remove it")
    u.add_argument("work", help="the engine's work dir (removed at the end)")
    u.add_argument("ready", help="JSON written once the containers run")
    u.add_argument("report", help="JSON written once everything is removed")
    u.add_argument("--hosts", default="h1,h2,h3")
    u.add_argument("--cpus", default="0.5")
    u.add_argument("--memory", default="256m")
    u.add_argument("--pids", default="300")
    args = ap.parse_args()
    return up(args)


if __name__ == "__main__":
    sys.exit(main())
