"""The container platforms of scripts/isolation-experiment: a Docker engine of the run's
own (Debian's docker.io), with gVisor's runsc added to it as a runtime.

    eng = DockerEngine(workdir, pid)   # dockerd + containerd under workdir, a private socket
    eng.start(runsc=True)
    eng.build_image(dist_dir)          # FROM scratch + the static binaries, nothing pulled
    eng.create_network(subnet)         # --internal, a bridge of the run's own
    ...
    eng.stop()                         # containers, network, image, daemon, cgroups

The daemon never touches one someone else runs: its data-root, exec-root, pidfile, socket
and config file are under `workdir`, it makes no iptables rules, no docker0 bridge and
leaves ip_forward alone, and its containers' cgroups are under a parent named after the run
(`misbehave-iso-<pid>`), which stop() removes. Everything it made carries the label
`misbehave-iso=<pid>`, so stop() and leftovers() find it.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

LABEL = "misbehave-iso"
# The recipe for gVisor on this kind of machine: runsc's own network stack refuses the
# namespace Docker 20.10 gives it ("cannot run with network enabled in root network
# namespace"); with --network=host the sandbox uses the container's namespace through the
# host's stack, so it is on the run's bridge like a runc container.
RUNSC_ARGS = ["--platform=ptrace", "--network=host"]


class DockerError(Exception):
    pass


def docker_cli():
    """The client that came with the engine (docker.io's /usr/bin/docker), else any."""
    for p in ("/usr/bin/docker", shutil.which("docker")):
        if p and os.access(p, os.X_OK):
            return p
    return None


def why_not(runsc=False):
    """None where the engine (and runsc) can run here, else one line saying why not."""
    if os.geteuid() != 0:
        return "not root (dockerd needs it)"
    if not shutil.which("dockerd") or not docker_cli():
        return "no Docker engine (dockerd: Debian package docker.io)"
    if not shutil.which("containerd"):
        return "no containerd (Debian package containerd)"
    if runsc and not shutil.which("runsc"):
        return "no runsc (Debian package runsc)"
    return None


def _alive(pid):
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] not in "ZX"
    except (OSError, IndexError):
        return False


def procs_matching(text):
    """[(pid, cmdline)] of live processes whose command line holds `text`."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmd and _alive(int(d.name)):
            out.append((int(d.name), cmd.strip()))
    return out


def kill_until_gone(text, rounds=50):
    """SIGKILLs the processes whose command line holds `text` until none is left (at most
    `rounds` rounds 0.1 s apart: a dying daemon may still start one); those left, if any."""
    for _ in range(rounds):
        stray = procs_matching(text)
        if not stray:
            return []
        for pid, _cmd in stray:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.1)
    return procs_matching(text)


def own_cgroup_paths():
    """This process's cgroup paths below their hierarchies' roots (other than the root)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return set()
    return {line.split(":", 2)[2].strip("/") for line in lines if line.count(":") >= 2} - {""}


def cgroup_dirs(name):
    """The cgroup directories called `name` under each hierarchy's root, and under this
    process's own cgroup there: dockerd (cgroupfs) makes a relative cgroup parent beside
    its own cgroup, which is nested where the machine put the run (a container's, a
    session's)."""
    root = Path("/sys/fs/cgroup")
    dirs = [root / name] if (root / name).is_dir() else []
    try:
        hierarchies = [c for c in root.iterdir() if c.is_dir()]
    except OSError:
        hierarchies = []
    for c in hierarchies:
        for base in [c] + [c / p for p in own_cgroup_paths()]:
            if (base / name).is_dir() and base / name not in dirs:
                dirs.append(base / name)
    return dirs


def remove_cgroups(name, tries=50):
    """Removes the cgroups `name` (and those nested in them) of every hierarchy, deepest
    first; a cgroup whose last processes are still dying is retried, 0.1 s apart. Returns
    those left."""
    for _ in range(tries):
        for top in cgroup_dirs(name):
            for root, _, _ in sorted(os.walk(top), key=lambda x: -len(x[0])):
                try:
                    os.rmdir(root)
                except OSError:
                    pass
        if not cgroup_dirs(name):
            return []
        time.sleep(0.1)
    return cgroup_dirs(name)


def remove_shim_sockets(engine_dir):
    """Removes the sockets in /run/containerd/s/ of the shims of the engine under
    `engine_dir` (a shim killed with SIGKILL leaves its socket there): containerd names
    each sha256(<containerd address>/<namespace>/<container id>)."""
    address = Path(engine_dir) / "exec" / "containerd" / "containerd.sock"
    try:
        ids = [d.name for d in (Path(engine_dir) / "data" / "containers").iterdir()]
    except OSError:
        return
    for cid in ids:
        h = hashlib.sha256(f"{address}/moby/{cid}".encode()).hexdigest()
        sock = Path("/run/containerd/s") / h
        try:
            if sock.is_socket():
                sock.unlink()
        except OSError:
            pass


def containerd_pids(text):
    """The containerd processes whose command line holds `text`."""
    return [p for p, c in procs_matching(text) if c.split()[0].endswith("containerd")]


def remove_stack_dumps(pids):
    """containerd writes its goroutines to $TMPDIR/containerd.<pid>.stacks.log when told
    to (seen after a stop now and then): those of these pids go."""
    for pid in pids:
        try:
            (Path(os.environ.get("TMPDIR") or "/tmp") / f"containerd.{pid}.stacks.log").unlink()
        except OSError:
            pass


def mounts_under(path):
    """Mount points at or below `path` (from /proc/self/mountinfo)."""
    p = str(path).rstrip("/")
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mp = line.split()[4].replace("\\040", " ")
        if mp == p or mp.startswith(p + "/"):
            out.append(mp)
    return out


class DockerEngine:
    def __init__(self, workdir, run_id, log=print):
        self.dir = Path(workdir)
        self.run_id = str(run_id)
        self.log = log
        self.sock = self.dir / "docker.sock"
        self.cgroup_parent = f"{LABEL}-{self.run_id}"
        self.cli = docker_cli()
        self.proc = None
        self.pid = None
        self.network = None
        self.image = f"misbehave-iso-{self.run_id}:latest"
        self.env = dict(os.environ, DOCKER_CONFIG=str(self.dir / "client"),
                        DOCKER_HOST=f"unix://{self.sock}")
        self.env.pop("DOCKER_CONTEXT", None)
        self.runsc = False
        self.made_run_dirs = []

    # ------------------------------------------------------------------ the client
    def cmd(self, *argv, check=True, timeout=120, capture=True):
        r = subprocess.run([self.cli, *map(str, argv)], env=self.env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                           stderr=subprocess.PIPE if capture else subprocess.DEVNULL,
                           text=True, timeout=timeout)
        if check and r.returncode:
            raise DockerError(f"docker {' '.join(map(str, argv))[:200]} failed "
                              f"({r.returncode}): {(r.stderr or '').strip()[-600:]}")
        return r

    def popen(self, argv, stdout, stderr):
        return subprocess.Popen([self.cli, *map(str, argv)], env=self.env,
                                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                start_new_session=True)

    # ------------------------------------------------------------------ the daemon
    def start(self, runsc=False, timeout=60):
        """Starts dockerd (and the containerd it runs) and waits for its API."""
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "client").mkdir(exist_ok=True)
        # Whose it is: sweep_stale() clears a work dir whose run was SIGKILLed.
        (self.dir / "owner").write_text(f"{os.getpid()}\n")
        # dockerd makes these system-wide directories whatever its exec-root; removed after
        # if this run made them and they are empty.
        for d in ("/run/docker/plugins", "/run/docker", "/run/containerd/s", "/run/containerd"):
            if not Path(d).exists():
                self.made_run_dirs.append(Path(d))
        conf = {"cgroup-parent": self.cgroup_parent, "log-driver": "json-file",
                "log-opts": {"max-size": "8m"}}
        if runsc:
            conf["runtimes"] = {"runsc": {"path": shutil.which("runsc"),
                                          "runtimeArgs": RUNSC_ARGS}}
        (self.dir / "daemon.json").write_text(json.dumps(conf, indent=1) + "\n")
        argv = ["dockerd", "--config-file", self.dir / "daemon.json",
                "--data-root", self.dir / "data", "--exec-root", self.dir / "exec",
                "--pidfile", self.dir / "dockerd.pid", "-H", f"unix://{self.sock}",
                "--iptables=false", "--ip6tables=false", "--ip-forward=false",
                "--ip-masq=false", "--bridge=none", "--userland-proxy=false"]
        if not shutil.which("dockerd"):
            raise DockerError("no dockerd")
        logf = open(self.dir / "dockerd.log", "wb")
        self.proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        logf.close()
        self.pid = self.proc.pid
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise DockerError(f"dockerd exited ({self.proc.returncode}): "
                                  + self.daemon_log_tail())
            if self.sock.exists() and self.cmd("version", check=False, timeout=10).returncode == 0:
                self.runsc = runsc
                return
            time.sleep(0.2)
        raise DockerError(f"dockerd gave no API in {timeout}s: " + self.daemon_log_tail())

    def daemon_log_tail(self, n=600):
        try:
            return (self.dir / "dockerd.log").read_text(errors="replace")[-n:].strip()
        except OSError:
            return ""

    def version(self):
        r = self.cmd("version", "--format", "{{.Server.Version}}", check=False, timeout=10)
        return (r.stdout or "?").strip()

    # ------------------------------------------------------------------ what it holds
    def build_image(self, bins):
        """The image: FROM scratch and the static binaries `bins` in /bin, nothing pulled."""
        ctx = self.dir / "image"
        (ctx / "bin").mkdir(parents=True, exist_ok=True)
        for b in bins:
            shutil.copy2(b, ctx / "bin" / Path(b).name)
        (ctx / "Dockerfile").write_text(f"FROM scratch\nCOPY bin/ /bin/\nLABEL {LABEL}={self.run_id}\n")
        self.cmd("build", "-q", "--label", f"{LABEL}={self.run_id}", "-t", self.image, ctx,
                 timeout=300)

    def create_network(self, name, subnet, gateway, bridge):
        self.cmd("network", "create", "--internal", "--driver", "bridge", "--subnet", subnet,
                 "--gateway", gateway, "--label", f"{LABEL}={self.run_id}",
                 "-o", f"com.docker.network.bridge.name={bridge}", name)
        self.network = name

    def counts(self):
        """{kind: n} of the containers, networks, images and volumes of this run."""
        out = {}
        for kind, argv in (("containers", ["ps", "-aq"]), ("networks", ["network", "ls", "-q"]),
                           ("images", ["images", "-q"]), ("volumes", ["volume", "ls", "-q"])):
            r = self.cmd(*argv, "--filter", f"label={LABEL}={self.run_id}", check=False,
                         timeout=30)
            out[kind] = len((r.stdout or "").split()) if r.returncode == 0 else -1
        return out

    def remove_all(self):
        """Removes every container, network, volume and image of the run (by label)."""
        f = ["--filter", f"label={LABEL}={self.run_id}"]
        ids = (self.cmd("ps", "-aq", *f, check=False, timeout=30).stdout or "").split()
        if ids:
            self.cmd("rm", "-f", "-v", *ids, check=False, timeout=120)
        for n in (self.cmd("network", "ls", "-q", *f, check=False, timeout=30).stdout or "").split():
            self.cmd("network", "rm", n, check=False, timeout=60)
        for v in (self.cmd("volume", "ls", "-q", *f, check=False, timeout=30).stdout or "").split():
            self.cmd("volume", "rm", "-f", v, check=False, timeout=60)
        for i in set((self.cmd("images", "-q", *f, check=False, timeout=30).stdout or "").split()):
            self.cmd("rmi", "-f", i, check=False, timeout=60)

    # ------------------------------------------------------------------ the end
    def stop(self):
        """Removes what the run made, stops the daemon it started (TERM, then KILL), the
        shims and sandboxes left of it, and its cgroups. Returns what was left before the
        daemon stopped ({kind: n}) and a list of problems (empty: all gone)."""
        left, problems = {}, []
        cpids = containerd_pids(str(self.dir))
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.remove_all()
                left = self.counts()
                if any(v for v in left.values()):
                    problems.append(f"still in the engine: {left}")
            except (DockerError, subprocess.TimeoutExpired, OSError) as e:
                problems.append(f"removing: {e}")
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except OSError:
                pass
        # Shims and gVisor's processes of this run name its exec-root, socket or work dir.
        stray = kill_until_gone(str(self.dir))
        if stray:
            problems.append(f"processes left: {stray[:3]}")
        remove_shim_sockets(self.dir)
        remove_stack_dumps(cpids)
        for m in sorted(mounts_under(self.dir), key=len, reverse=True):
            subprocess.run(["umount", "-l", m], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        for top in remove_cgroups(self.cgroup_parent):
            problems.append(f"cgroup left: {top}")
        for d in self.made_run_dirs:
            try:
                d.rmdir()
            except OSError:
                pass
        self.proc = None
        return left, problems


def sweep_stale(tmp, log=print):
    """Removes what runs SIGKILLed before their cleanup left under `tmp`: for each
    `mbiso-*/docker/owner` whose pid is dead, the processes naming that work dir (dockerd,
    containerd, shims, runsc), the mounts under it, its cgroups and bridge, the dir, and
    the empty /run/docker and /run/containerd where no dockerd runs."""
    for owner in sorted(Path(tmp).glob("mbiso-*/docker/owner")):
        try:
            pid = int(owner.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if _alive(pid):
            continue
        top = owner.parent.parent
        log(f"removing what the dead run {pid} left: {top}")
        cpids = containerd_pids(str(top))
        kill_until_gone(str(top))
        for m in sorted(mounts_under(top), key=len, reverse=True):
            subprocess.run(["umount", "-l", m], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        remove_shim_sockets(owner.parent)
        remove_stack_dumps(cpids)
        for c in remove_cgroups(f"{LABEL}-{pid}"):
            log(f"cgroup left: {c}")
        bridge = f"mbiso{pid}"[:15]
        if Path(f"/sys/class/net/{bridge}").exists():
            subprocess.run(["ip", "link", "del", bridge], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        shutil.rmtree(top, ignore_errors=True)
        # The system-wide dirs the dead run's dockerd made, where no daemon runs now.
        if not [c for _, c in procs_matching("dockerd") if c.split()[0].endswith("dockerd")]:
            for d in ("/run/docker/plugins", "/run/docker", "/run/containerd/s",
                      "/run/containerd"):
                try:
                    os.rmdir(d)
                except OSError:
                    pass


def leftovers(workdir, run_id, bridge=None):
    """What a run left behind on this host, as a list of lines (empty: nothing): processes
    naming its work dir, the dockerd of its pidfile, its cgroups, mounts under its work dir,
    its bridge, the work dir itself."""
    out = []
    workdir = Path(workdir)
    for pid, cmd in procs_matching(str(workdir)):
        out.append(f"process {pid}: {cmd[:120]}")
    for top in cgroup_dirs(f"{LABEL}-{run_id}"):
        out.append(f"cgroup {top}")
    for m in mounts_under(workdir):
        out.append(f"mount {m}")
    if bridge and Path(f"/sys/class/net/{bridge}").exists():
        out.append(f"bridge {bridge}")
    if workdir.exists():
        out.append(f"directory {workdir}")
    return out
