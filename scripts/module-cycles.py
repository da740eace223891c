#!/usr/bin/env python3
"""Finds import circles between the modules of a crate's src/ (ARCHITECTURE.md: none in server/src).

A module is a file (or a directory's mod.rs); an edge A -> B is a `crate::B...` or `super::B...`
path written in A (in `use` lines or inline), resolved to the longest module path that exists. A
module's own submodules and its ancestors are not edges (a parent declares its children). Prints
every strongly connected component of more than one module and exits 1 if there is one.

    python3 scripts/module-cycles.py server/src
"""
import pathlib
import re
import sys


def modules(src: pathlib.Path) -> dict[str, pathlib.Path]:
    found = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "mod":
            parts = parts[:-1]
        if parts in (["lib"], ["main"]):
            continue
        found["::".join(parts)] = f
    return found


def main() -> int:
    src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "server/src")
    mods = modules(src)
    path_re = re.compile(r"crate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)")
    group_re = re.compile(r"use crate::\{([^;]*)\};", re.S)
    edges: dict[str, set[str]] = {m: set() for m in mods}

    def resolve(path: str) -> str | None:
        parts = path.split("::")
        for n in range(len(parts), 0, -1):
            cand = "::".join(parts[:n])
            if cand in mods:
                return cand
        return None

    for m, f in mods.items():
        text = f.read_text()
        # Comments and doc comments name modules without depending on them.
        text = "\n".join(line.split("//", 1)[0] for line in text.splitlines())
        paths = path_re.findall(text)
        for group in group_re.findall(text):
            paths += [p.strip().split("::{")[0] for p in re.split(r",(?![^{]*\})", group) if p.strip()]
        # `super::x` from a::b is a::x (a sibling, or the parent itself).
        parent = m.rsplit("::", 1)[0] if "::" in m else ""
        for rel in re.findall(r"(?<![:\w])super::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)", text):
            paths.append(f"{parent}::{rel}" if parent else rel)
        for p in paths:
            target = resolve(p)
            if target and target != m and not target.startswith(m + "::") and not m.startswith(target + "::"):
                edges[m].add(target)

    # Tarjan's strongly connected components.
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(mods):
        if v not in index:
            visit(v)
    for comp in out:
        inner = {a: sorted(b for b in edges[a] if b in comp) for a in comp}
        print("import circle: " + "; ".join(f"{a} -> {', '.join(bs)}" for a, bs in inner.items()))
    if not out:
        print(f"no import circles among {len(mods)} modules of {src}")
    return 1 if out else 0


if __name__ == "__main__":
    sys.exit(main())
