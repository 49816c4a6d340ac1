# Shared by the scripts in this folder: installs what they need, on a fresh machine too.
# Source it; it defines functions only.

# The stressor binaries: every crate under stressors/. That folder is the one list of them:
# the workspace members (a glob), scripts/dist, packaging, gen-docs' test and guest-test read it.
stressors() {
    local d
    for d in "$ROOT"/stressors/*/; do
        [ -f "$d/Cargo.toml" ] && basename "$d"
    done
}

step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*" >&2; }

ensure_targets() {
    local have t missing=()
    have=$(rustup target list --installed 2>/dev/null || true)
    for t in "$@"; do
        grep -qx "$t" <<<"$have" || missing+=("$t")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        step "rustup target add ${missing[*]}"
        rustup target add "${missing[@]}" >&2
    fi
}

APT_UPDATED=
apt_update_once() {
    [ -n "$APT_UPDATED" ] && return 0
    apt-get update -qq >&2
    APT_UPDATED=1
}

# The mirror of the Debian archive this machine's apt already uses for CODENAME (deb822
# .sources files or one-line lists), so no host name is written down here.
debian_mirror() {
    local codename=$1 uri=""
    uri=$(awk -v c="$codename" '
        BEGIN { RS = ""; FS = "\n" }
        {
            u = ""; hit = 0; off = 0
            for (i = 1; i <= NF; i++) {
                if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); u = a[2] }
                if ($i ~ /^Suites:/) { n = split($i, b, /[ \t]+/); for (j = 2; j <= n; j++) if (b[j] == c) hit = 1 }
                if ($i ~ /^Enabled:[ \t]*no/) off = 1
            }
            if (hit && !off && u != "") { print u; exit }
        }' /etc/apt/sources.list.d/*.sources 2>/dev/null)
    if [ -z "$uri" ]; then
        uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk -v c="$codename" '
            $1 == "deb" {
                i = 2
                if ($2 ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
                if ($(i + 1) == c) { print $i; exit }
            }')
    fi
    printf '%s\n' "$uri"
}

# Adds <codename>-backports from the machine's own Debian mirror where no source has it.
# Fails (with a line saying why) where no Debian mirror is configured.
ensure_backports_source() {
    local codename mirror
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    if grep -rqs -- "$codename-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
        return 0
    fi
    mirror=$(debian_mirror "$codename")
    if [ -z "$mirror" ]; then
        echo "no Debian mirror for $codename in the apt sources: cannot add $codename-backports" >&2
        return 1
    fi
    echo "deb $mirror $codename-backports main" >/etc/apt/sources.list.d/misbehave-backports.list
    APT_UPDATED=
    apt_update_once
}

# Where qemu packages come from: "backports" where qemu-utils already comes from there (apt
# refuses to mix qemu suites), or where no qemu is installed and backports can be had (its
# qemu-user runs what Debian 12's 7.2 aborts on); else "stable".
qemu_suite() {
    local v
    v=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)
    case "$v" in
        # Installed from backports by hand, perhaps with no backports source left behind.
        *bpo*) if ensure_backports_source; then echo backports; else echo stable; fi; return ;;
        "") ;;
        *) echo stable; return ;;
    esac
    if ensure_backports_source; then echo backports; else echo stable; fi
}

# ensure_apt CMD PACKAGE [CMD PACKAGE ...]: installs PACKAGE where CMD is not on PATH.
ensure_apt() {
    local pkgs=() qemu=()
    while [ $# -ge 2 ]; do
        if ! command -v "$1" >/dev/null 2>&1; then
            case "$2" in qemu-*) qemu+=("$2") ;; *) pkgs+=("$2") ;; esac
        fi
        shift 2
    done
    [ ${#pkgs[@]} -eq 0 ] && [ ${#qemu[@]} -eq 0 ] && return 0
    step "apt-get install ${pkgs[*]} ${qemu[*]}"
    apt_update_once
    if [ ${#qemu[@]} -gt 0 ] && [ "$(qemu_suite)" = backports ]; then
        local codename
        codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t "$codename-backports" "${qemu[@]}" >&2
    elif [ ${#qemu[@]} -gt 0 ]; then
        pkgs+=("${qemu[@]}")
    fi
    if [ ${#pkgs[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >&2
    fi
}

qemu_user_version() {
    qemu-aarch64-static --version 2>/dev/null | head -1 | awk '{print $3}'
}

# qemu-aarch64-static for the aarch64 tests, one that runs them where one can be had:
# installed where missing; where it is older than 8 (Debian 12's own 7.2 aborts on some
# fork-heavy tests) and the machine takes qemu from backports, upgraded from there.
ensure_qemu_user() {
    ensure_apt qemu-aarch64-static qemu-user-static
    local ver codename
    ver=$(qemu_user_version)
    if [ -n "$ver" ] && [ "${ver%%.*}" -lt 8 ] 2>/dev/null && [ "$(qemu_suite)" = backports ]; then
        codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
        step "qemu-user $ver is older than 8: apt-get install -t $codename-backports qemu-user-static"
        apt_update_once
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t "$codename-backports" qemu-user-static >&2 ||
            echo "  could not upgrade; the tests qemu-user $ver cannot run are skipped" >&2
    fi
}

# Says which qemu-user runs the aarch64 tests, and exports MISBEHAVE_QEMU_USER_OLD when it is
# older than 8 (Debian 12's 7.2 aborts in cpu_exec on some fork-heavy tests; they skip).
qemu_user_report() {
    local path ver major
    path=$(command -v qemu-aarch64-static || true)
    ver=$(qemu_user_version)
    major=${ver%%.*}
    echo "qemu-user for the aarch64 tests: $path, version ${ver:-unknown}" >&2
    if [ -n "$major" ] && [ "$major" -lt 8 ] 2>/dev/null; then
        export MISBEHAVE_QEMU_USER_OLD="$ver"
        echo "  qemu-user $ver is older than 8: the forkbomb tests it aborts on (cpu_exec assertion) are skipped, each with a SKIP line" >&2
    fi
}

# ensure_ansible_venv DIR SPEC...: a venv in DIR holding the pip requirements SPEC... (e.g.
# 'ansible-core>=2.19,<2.20'), python3-venv from apt where missing. DIR is made anew when
# what it was made with (DIR/.misbehave-specs) differs, so a changed pin takes effect.
ensure_ansible_venv() {
    local dir=$1
    shift
    if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.misbehave-specs" 2>/dev/null)" = "$*" ]; then
        return 0
    fi
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        step "apt-get install python3-venv"
        apt_update_once
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
    fi
    step "pip install $* into $dir"
    rm -rf "$dir"
    if ! { python3 -m venv "$dir" && "$dir/bin/pip" install -q "$@" >&2; }; then
        echo "could not install $* into $dir" >&2
        rm -rf "$dir"
        return 1
    fi
    printf '%s\n' "$*" >"$dir/.misbehave-specs"
}

# fleet_ansible_specs oldest|newest: the pip requirement for the oldest or the newest
# ansible-core series that the collection's meta/runtime.yml claims (requires_ansible
# ">=X.Y.Z,<A.B.0": X.Y and A.B-1), so that what is tested follows what is claimed.
fleet_ansible_specs() {
    local req lo hi
    req=$(awk -F'"' '/^requires_ansible:/ {print $2}' "$ROOT/packaging/ansible/ansible_collections/misbehave/fleet/meta/runtime.yml")
    lo=$(sed -n 's/.*>=\([0-9]*\.[0-9]*\).*/\1/p' <<<"$req")
    hi=$(sed -n 's/.*<\([0-9]*\.[0-9]*\).*/\1/p' <<<"$req")
    if [ -z "$lo" ] || [ -z "$hi" ] || [ "${hi#*.}" -eq 0 ]; then
        echo "requires_ansible '$req' is not of the form >=X.Y.Z,<A.B.0" >&2
        return 1
    fi
    case $1 in
        oldest) echo "ansible-core>=$lo,<${lo%.*}.$((${lo#*.} + 1))" ;;
        newest) echo "ansible-core>=${hi%.*}.$((${hi#*.} - 1)),<$hi" ;;
    esac
}
