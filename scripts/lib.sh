# Shared by the scripts in this folder: installs what they need, on a fresh machine too.
# Source it; it defines functions only.

# The stressor binaries: every crate under stressors/.
stressors() {
    local d
    for d in "$ROOT"/stressors/*/; do
        [ -f "$d/Cargo.toml" ] && basename "$d"
    done
}

step() { printf '\n==> %s\n' "$*" >&2; }

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

# On these machines qemu-utils comes from bookworm-backports; every other qemu package must
# come from there too, or apt refuses the mix.
qemu_from_backports() {
    dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null | grep -q bpo
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
    if [ ${#qemu[@]} -gt 0 ] && qemu_from_backports; then
        local codename
        codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
        if ! grep -rqs "$codename-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
            echo "deb http://deb.debian.org/debian $codename-backports main" \
                >/etc/apt/sources.list.d/misbehave-backports.list
            APT_UPDATED=
            apt_update_once
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t "$codename-backports" "${qemu[@]}" >&2
    elif [ ${#qemu[@]} -gt 0 ]; then
        pkgs+=("${qemu[@]}")
    fi
    if [ ${#pkgs[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >&2
    fi
}
