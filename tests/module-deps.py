#!/usr/bin/env python3
"""Lists each crate's top-level modules with the modules they use, and fails on a cycle.

A module is a top-level `mod` of a crate (`src/x.rs` or `src/x/`, its submodules included);
`use crate::y` or a `crate::y::` path in its non-test code is an edge x -> y. Imports must flow
one way, so the graph must be acyclic. Usage: tests/module-deps.py [--list] [crate-dir ...]
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRATES = ["consensus", "chaincode", "node", "cli"]
REF = re.compile(r"\bcrate::(?:\{([^}]*)\}|([a-z_0-9]+))")


def module_of(src: pathlib.Path, path: pathlib.Path) -> str:
    rel = path.relative_to(src)
    return rel.parts[0].removesuffix(".rs")


def strip_tests(text: str) -> str:
    """Drops `#[cfg(test)] mod ... { ... }` blocks (tests may reach anywhere)."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while depth and j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def graph(crate: str) -> dict:
    src = ROOT / crate / "src"
    edges: dict = {}
    for path in sorted(src.rglob("*.rs")):
        mod = module_of(src, path)
        if mod in ("lib", "main"):
            continue
        text = strip_tests(path.read_text())
        text = re.sub(r"//[^\n]*", "", text)
        targets = edges.setdefault(mod, set())
        for group, single in REF.findall(text):
            names = [single] if single else [n.strip().split("::")[0] for n in group.split(",")]
            for name in names:
                name = name.strip()
                if name and name not in ("self", mod) and ((src / f"{name}.rs").exists() or (src / name).is_dir()):
                    targets.add(name)
    return edges


def cycles(edges: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    listing = "--list" in sys.argv
    failed = False
    for crate in args or CRATES:
        edges = graph(crate)
        if listing:
            print(f"{crate}:")
            for mod in sorted(edges):
                print(f"  {mod} -> {', '.join(sorted(edges[mod])) or '-'}")
        for comp in cycles(edges):
            failed = True
            print(f"{crate}: module cycle: {' <-> '.join(comp)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
