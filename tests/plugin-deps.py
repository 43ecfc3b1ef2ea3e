#!/usr/bin/env python3
"""Fails when a plugin crate (under plugins/) or the fixture plugin's library depends on the
app crate `ferrobase`: plugins see the core only through `ferrobase-plugin` (plugins/api).
The fixture's package has a binary that links the app, so for it only the library's source
is checked (it must not name the `ferrobase` crate)."""
import json, pathlib, re, subprocess, sys

meta = json.loads(subprocess.check_output(
    ["cargo", "metadata", "--format-version", "1", "--no-deps", "--locked"]))
root = pathlib.Path(meta["workspace_root"])
bad = []
checked = 0
for pkg in meta["packages"]:
    rel = pathlib.Path(pkg["manifest_path"]).parent.relative_to(root)
    if rel.parts[:1] == ("plugins",):
        checked += 1
        for d in pkg["dependencies"]:
            if d["name"] == "ferrobase":
                bad.append(f"{pkg['name']} ({rel}) depends on the app crate")
lib = root / "tests/plugin-host/src/lib.rs"
if re.search(r"\bferrobase::", lib.read_text()):
    bad.append("the fixture plugin's library (tests/plugin-host/src/lib.rs) uses the app crate")
checked += 1
for b in bad:
    print("FAIL", b)
print(f"plugin dependencies: {checked} checked, {len(bad)} bad")
sys.exit(1 if bad else 0)
