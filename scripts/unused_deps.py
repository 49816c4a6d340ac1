#!/usr/bin/env python3
"""Names every dependency of a workspace crate that no Rust source file of that crate refers
to: no `use dep`, no `dep::` path, no `extern crate dep`. Exit status 1 if there is one.

The check cargo-machete makes, without building it (cargo install compiles it from source,
about 80 s of every CI run): the crates and their dependencies come from `cargo metadata`,
the sources are every .rs file under a crate's folder (its tests, examples and build script
included; the folders of other crates and target/ left out), and a dependency counts as used
whatever cfg the reference sits under, as with machete. A dependency renamed in Cargo.toml
goes by its new name; a workspace crate by the name of its library.
"""

import json
import re
import subprocess
import sys
from pathlib import Path


def main():
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        check=True, capture_output=True, text=True).stdout)
    pkgs = meta["packages"]
    # The library name a workspace crate is imported by ([lib] name = ...).
    lib_of = {p["name"]: t["name"] for p in pkgs for t in p["targets"] if "lib" in t["kind"]}
    roots = [Path(p["manifest_path"]).parent for p in pkgs]
    unused = []
    for p in pkgs:
        root = Path(p["manifest_path"]).parent
        others = [r for r in roots if r != root and r.is_relative_to(root)]
        text = "\n".join(
            f.read_text(errors="replace") for f in sorted(root.rglob("*.rs"))
            if not f.is_relative_to(root / "target") and not any(f.is_relative_to(o) for o in others))
        for d in p["dependencies"]:
            name = (d["rename"] or lib_of.get(d["name"], d["name"])).replace("-", "_")
            if not re.search(rf"\b(?:use\s+{name}\b|extern\s+crate\s+{name}\b|{name}\s*::)", text):
                unused.append(f"{p['name']}: {d['name']} ({d['kind'] or 'normal'})")
    for u in sorted(set(unused)):
        print(f"unused dependency {u}")
    if unused:
        print("remove it from that crate's Cargo.toml, or name it where it is used")
        return 1
    print(f"no unused dependency in {len(pkgs)} crates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
