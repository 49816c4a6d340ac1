"""Shared by scripts/guest-test and scripts/isolation-experiment: the throwaway Linux
guests' parts. Debian kernels (downloaded with apt-get, the vmlinux extracted, the virtio
modules resolved), guest-init built as /init, the newc initramfs with dist/<target>/
binaries, the qemu machine per architecture, the %-encoding of /init's run= words.
Everything downloaded or built is cached under target/guest/.
"""

import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path


PROG = Path(sys.argv[0]).name or "guest"

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "target" / "guest"

# Modules /init loads (whichever the kernel has as modules; their dependencies
# from modules.dep are added too).
MODULES = ["virtio_ring", "virtio", "virtio_mmio", "failover", "net_failover",
           "virtio_net", "virtio_blk", "crc32c_generic", "crc32c_intel", "ext4"]

ARCHES = {
    "x86_64": dict(
        target="x86_64-unknown-linux-musl", debarch="amd64",
        qemu="qemu-system-x86_64", qemu_pkg="qemu-system-x86",
        # pit=off: with the i8254 PIT, 4 boots in 12 (some hours, none in others)
        # died at once: "divide error" in start_kernel right after interrupts are
        # enabled (an early timer IRQ delivered as vector 0), qemu exits after 0.3 s.
        # 0 in 36 without it. The kernel needs no PIT: tsc_early_khz gives the TSC
        # rate and the local APIC timer runs in TSC-deadline mode.
        machine=["-M", "microvm,pit=off", "-accel", "tcg", "-cpu", "max"],
        # tsc_early_khz skips TSC calibration (about 1 boot in 10 hangs in it). Under
        # TCG the guest TSC is the host's, so it must be the host's rate or the
        # guest clock runs fast or slow: see host_tsc_khz().
        # tsc=reliable: microvm has no HPET or PM timer, so the clocksource watchdog
        # compares the TSC with jiffies, which lag under TCG when the host is busy; it
        # then drops the TSC for jiffies and the guest clock runs slow.
        append="console=ttyS0 panic=-1 quiet tsc_early_khz={tsc_khz} tsc=reliable",
        boot_budget=45.0),
    "aarch64": dict(
        target="aarch64-unknown-linux-musl", debarch="arm64",
        qemu="qemu-system-aarch64", qemu_pkg="qemu-system-arm",
        # pauth-impdef: same CPU features, far cheaper pointer authentication under TCG.
        machine=["-M", "virt", "-accel", "tcg", "-cpu", "max,pauth-impdef=on"],
        append="console=ttyAMA0 panic=-1 quiet",
        boot_budget=75.0),
}


def accel(arch):
    """What arch's guests run under: "tcg" (software emulation) or "kvm"."""
    m = ARCHES[arch]["machine"]
    return m[m.index("-accel") + 1]


# The marker of `/init --floor N`: the processes it killed and the seconds that took.
FLOOR_RE = r"===MISBEHAVE-FLOOR n=(\d+) s=([\d.]+)==="


def host_tsc_khz():
    """The host's TSC rate in kHz ("cpu MHz" with constant_tsc), else 2000000."""
    try:
        info = Path("/proc/cpuinfo").read_text()
        mhz = re.search(r"^cpu MHz\s*:\s*([\d.]+)", info, re.M)
        if mhz and re.search(r"^flags\s*:.*\bconstant_tsc\b", info, re.M):
            return int(float(mhz.group(1)) * 1000)
    except OSError:
        pass
    return 2000000




def log(msg):
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def sh(cmd, check=True, capture=True, timeout=900, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.STDOUT if capture else None,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    if check and r.returncode != 0:
        raise SetupError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n"
                         + (r.stdout or "")[-3000:])
    return r


class SetupError(Exception):
    pass


def is_root():
    return os.geteuid() == 0


def apt_update():
    log("apt-get update")
    sh(["apt-get", "update", "-q"])


def apt_install(pkgs):
    if not is_root():
        raise SetupError(f"need root to install {' '.join(pkgs)}")
    # qemu must come from the same suite as an installed qemu-utils (backports here).
    pol = sh(["apt-cache", "policy", "qemu-utils"], check=False).stdout or ""
    m = re.search(r"Installed:\s*(\S+)", pol)
    extra = []
    if m and "bpo" in m.group(1):
        srcs = " ".join(p.read_text(errors="replace")
                        for p in [Path("/etc/apt/sources.list"),
                                  *Path("/etc/apt/sources.list.d").glob("*")]
                        if p.is_file())
        if "bookworm-backports" not in srcs:
            # From the machine's own mirror (scripts/lib.sh): no host name written here.
            sh(["bash", "-c", f". {ROOT / 'scripts' / 'lib.sh'} && ensure_backports_source"])
            apt_update()
        extra = ["-t", "bookworm-backports"]
    log(f"apt-get install {' '.join(pkgs)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if sh(["apt-get", "install", "-y", "-q", *extra, *pkgs], check=False, env=env).returncode:
        apt_update()
        sh(["apt-get", "install", "-y", "-q", *extra, *pkgs], env=env)


def ensure_tools(arches):
    missing = [ARCHES[a]["qemu_pkg"] for a in arches if not shutil.which(ARCHES[a]["qemu"])]
    for tool, pkg in (("dpkg-deb", "dpkg"), ("timeout", "coreutils"),
                      ("mkfs.ext4", "e2fsprogs"), ("debugfs", "e2fsprogs")):
        if not shutil.which(tool):
            missing.append(pkg)
    if missing:
        apt_install(sorted(set(missing)))
    targets = [ARCHES[a]["target"] for a in arches]
    have = sh(["rustup", "target", "list", "--installed"], check=False).stdout or ""
    add = [t for t in targets if t not in have.split()]
    if add:
        log(f"rustup target add {' '.join(add)}")
        sh(["rustup", "target", "add", *add])


def build_init(arch):
    target = ARCHES[arch]["target"]
    sh(["cargo", "build", "-q", "-p", "guest-init", "--release", "--target", target], cwd=ROOT)
    return ROOT / "target" / target / "release" / "guest-init"


# --------------------------------------------------------------------- kernel

VER_RE = re.compile(r"^linux-image-(\d+\.\d+(?:\.\d+)?(?:-\d+)?(?:\+deb\d+)?)-amd64$")


def vkey(v):
    return [int(x) for x in re.findall(r"\d+", v)]


def pick_kernel_version(arches):
    def candidates():
        out = sh(["apt-cache", "search", "--names-only", r"^linux-image-[0-9]"],
                 check=False).stdout or ""
        names = (line.split()[0] for line in out.splitlines() if line.strip())
        return sorted({m.group(1) for m in map(VER_RE.match, names) if m}, key=vkey, reverse=True)
    vers = candidates()
    if not vers:
        apt_update()
        vers = candidates()
    for v in vers[:10]:
        if "aarch64" in arches and sh(["apt-cache", "show", f"linux-image-{v}-arm64:arm64"],
                                      check=False).returncode:
            continue
        return v
    return None


def kernel_version(arches, requested=None):
    """The Debian kernel version to boot: REQUESTED, else the newest apt knows (for every
    arch), else the newest one cached."""
    ver = requested or pick_kernel_version(arches)
    if not ver:
        cached = sorted(CACHE.glob("kernel-*/ok"))
        if not cached:
            raise SetupError("apt knows no linux-image-<ver>-amd64 package")
        ver = cached[-1].read_text().split("\n")[0].strip()
    return ver


def ensure_arm64_arch():
    if "arm64" not in (sh(["dpkg", "--print-foreign-architectures"]).stdout or "").split():
        if not is_root():
            raise SetupError("need root for dpkg --add-architecture arm64")
        log("dpkg --add-architecture arm64")
        sh(["dpkg", "--add-architecture", "arm64"])
        apt_update()


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The uncompressed ELF vmlinux inside an x86 bzImage (xz, gzip or zstd)."""
    for magic, kind in ((b"\xfd7zXZ\x00", "xz"), (b"\x1f\x8b\x08", "gz"),
                        (b"\x28\xb5\x2f\xfd", "zstd")):
        off = bzimage.find(magic)
        for _ in range(50):
            if off < 0:
                break
            try:
                if kind == "xz":
                    data = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(bzimage[off:])
                elif kind == "gz":
                    data = zlib.decompressobj(31).decompress(bzimage[off:])
                else:
                    data = subprocess.run(["zstd", "-dc"], input=bzimage[off:],
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          timeout=120).stdout
                if data[:4] == b"\x7fELF":
                    return data
            except (lzma.LZMAError, zlib.error, OSError, subprocess.SubprocessError):
                pass
            off = bzimage.find(magic, off + 1)
    raise SetupError("no xz/gzip/zstd compressed ELF found in the bzImage")


def decompress_module(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return zlib.decompress(data, 31)
    if path.name.endswith(".zst"):
        return subprocess.run(["zstd", "-dc", str(path)], stdout=subprocess.PIPE,
                              check=True, timeout=120).stdout
    return data


def ensure_kernel(arch, ver):
    """Cached kernel (vmlinux / Image) and modules for arch; returns (kernel, [modules])."""
    debarch = ARCHES[arch]["debarch"]
    kdir = CACHE / f"kernel-{ver}-{debarch}"
    stamp = kdir / "ok"
    kfile = kdir / ("vmlinux" if arch == "x86_64" else "Image")
    # The stamp names the modules extracted: a changed MODULES list extracts again.
    want = ver + "\n" + ",".join(MODULES) + "\n"
    if not stamp.exists() or stamp.read_text() != want:
        if kdir.exists():
            shutil.rmtree(kdir)
        kdir.mkdir(parents=True)
        pkg = f"linux-image-{ver}-{debarch}" + (":arm64" if arch == "aarch64" else "")
        log(f"apt-get download {pkg}")
        if arch == "aarch64":
            ensure_arm64_arch()
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            if sh(["apt-get", "download", pkg], cwd=tmp, check=False).returncode:
                apt_update()
                sh(["apt-get", "download", pkg], cwd=tmp)
            deb = next(Path(tmp).glob("*.deb"))
            x = Path(tmp) / "x"
            sh(["dpkg-deb", "-x", str(deb), str(x)])
            vmlinuz = next(p for p in (x / "boot").glob("vmlinuz-*"))
            raw = vmlinuz.read_bytes()
            if arch == "x86_64":
                kfile.write_bytes(extract_vmlinux(raw))
            else:
                kfile.write_bytes(zlib.decompress(raw, 31) if raw[:2] == b"\x1f\x8b" else raw)
            mroot = next((p for p in [x / "lib" / "modules", x / "usr" / "lib" / "modules"]
                          if p.is_dir()), None)
            mdir = kdir / "modules"
            mdir.mkdir()
            if mroot:
                for name, data in resolve_modules(next(mroot.iterdir()) / "kernel"):
                    (mdir / f"{name}.ko").write_bytes(data)
        stamp.write_text(want)
    mods = sorted((kdir / "modules").glob("*.ko"))
    return kfile, mods


def resolve_modules(kdir: Path):
    """[(name, uncompressed .ko)] for MODULES plus their dependencies (from each
    module's own .modinfo "depends=", the .deb ships no modules.dep), dependencies
    first. Modules the package lacks are built in or not configured: skipped."""
    files = {}
    for p in kdir.rglob("*.ko*"):
        files[p.name.split(".ko")[0].replace("-", "_")] = p
    out, seen = [], set()

    def add(name, depth=0):
        if name in seen or name not in files or depth > 20:
            return
        seen.add(name)
        data = decompress_module(files[name])
        m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", data)
        for dep in (m.group(1).decode().split(",") if m and m.group(1) else []):
            add(dep.replace("-", "_"), depth + 1)
        out.append((name, data))
    for name in MODULES:
        add(name)
    return out


# ------------------------------------------------------------------ initramfs

def cpio_newc(entries):
    """entries: (name, mode, data, rdev_major, rdev_minor). Returns newc cpio bytes."""
    out = bytearray()
    ino = 1000

    def pad4():
        out.extend(b"\0" * (-len(out) % 4))
    for name, mode, data, rmaj, rmin in [*entries, ("TRAILER!!!", 0, b"", 0, 0)]:
        ino += 1
        nb = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 2 if mode & 0o040000 else 1, 0, len(data), 0, 0,
                  rmaj, rmin, len(nb), 0]
        out.extend(b"070701" + b"".join(b"%08x" % f for f in fields))
        out.extend(nb)
        pad4()
        out.extend(data)
        pad4()
    return bytes(out)


def build_initramfs(arch, init: Path, bins, mods, dest: Path, extra=()):
    """extra: more (path, bytes) files, in directories of their own (e.g. scripts/soak's
    plans)."""
    e = [(d, 0o040755, b"", 0, 0) for d in
         ("bin", "dev", "lib", "lib/modules", "proc", "sys", "tmp")]
    e += [(d, 0o040755, b"", 0, 0) for d in sorted({n.rsplit("/", 1)[0] for n, _ in extra
                                                    if "/" in n})]
    e.append(("dev/console", 0o020600, b"", 5, 1))
    e.append(("init", 0o100755, init.read_bytes(), 0, 0))
    e += [(f"bin/{b.name}", 0o100755, b.read_bytes(), 0, 0) for b in bins]
    e += [(f"lib/modules/{m.name}", 0o100644, m.read_bytes(), 0, 0) for m in mods]
    e += [(name, 0o100644, data, 0, 0) for name, data in extra]
    data = cpio_newc(e)
    # qemu's microvm loads the initrd at the very top of RAM, over the ACPI tables
    # the firmware keeps in the last page (it reserves no room for them). An
    # initrd whose size is 4 past a page multiple ends 4 bytes into that page,
    # below the tables (seen at 0x...cc0 and up). Other sizes overwrote the FACP
    # with module bytes and the kernel spent a minute checksumming a "table" of
    # hundreds of MB. Zeros after the cpio trailer are skipped by the kernel.
    data += b"\0" * ((4 - len(data)) % 4096)
    dest.write_bytes(data)


DIST = ROOT / "dist"


def stressors():
    """The stressor binaries: every crate under stressors/, the one list of them (as
    scripts/lib.sh's `stressors`)."""
    return sorted(d.name for d in (ROOT / "stressors").iterdir() if (d / "Cargo.toml").is_file())


def dist_bins(arch, dist=DIST):
    """The ELF files of dist/<target>/ (None where that folder is missing)."""
    d = dist / ARCHES[arch]["target"]
    if not d.is_dir():
        return None
    return sorted(p for p in d.iterdir()
                  if p.is_file() and p.open("rb").read(4) == b"\x7fELF")


def encode_arg(a: str) -> str:
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=+-@")
    return "".join(c if c in safe else "".join("%%%02X" % b for b in c.encode()) for c in a)
