#!/usr/bin/env python3
"""Checks that the docs still say what is true, so a newcomer's copy-paste works:

- every relative link of every Markdown page resolves to a file, and its #anchor to a heading;
- every `chat-server <subcommand>` the docs show exists, and every `--flag` shown with it is one
  of that subcommand's (read from the binary's own --help);
- every CHAT_* setting the docs name is read somewhere in the code, and every one the server
  reads is documented;
- every repository path the docs name in backticks exists;
- the figures that drift are the build's: the `chat-server --version` example, and the npm
  binary sizes (when npm/build.sh has built them).

Usage: python3 scripts/check-docs.py [CHAT_SERVER_BIN]   (default $CARGO_TARGET_DIR/debug/chat-server,
       else target/debug/chat-server)
Prints one line per problem and exits 1 if there is any.
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(ROOT)
BIN = (
    sys.argv[1]
    if len(sys.argv) > 1
    else os.environ.get("CHAT_SERVER_BIN")
    or os.path.join(os.environ.get("CARGO_TARGET_DIR") or "target", "debug", "chat-server")
)

PAGES = sorted(
    set(
        ["README.md", "ARCHITECTURE.md", "BENCHMARKS.md", "RELIABILITY.md", "ACCESSIBILITY.md"]
        + glob.glob("docs/*.md")
        + ["pkg/README.md", "examples/nextjs/README.md"]
        + glob.glob("npm/*/README.md")
    )
)
PAGES = [p for p in PAGES if os.path.exists(p)]
problems = []


def problem(page, what):
    problems.append(f"{page}: {what}")


def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    found, counts, fenced = set(), {}, False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not line.startswith("#"):
            continue
        base = slug(line.lstrip("#"))
        n = counts.get(base, 0)
        counts[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def prose(text):
    """The text outside fenced code blocks."""
    return re.sub(r"```.*?```", "", text, flags=re.S)


# ---- links -----------------------------------------------------------------------------------
for page in PAGES:
    text = prose(open(page, encoding="utf-8").read())
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        if not os.path.exists(resolved):
            problem(page, f"link to {target}: {resolved} does not exist")
            continue
        if anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
            problem(page, f"link to {target}: no heading with the anchor #{anchor} in {resolved}")

# ---- chat-server subcommands and flags --------------------------------------------------------
def help_of(*args):
    out = subprocess.run([BIN, *args, "--help"], capture_output=True, text=True, check=False)
    return out.stdout + out.stderr


if not os.path.exists(BIN):
    problem("check-docs", f"no chat-server binary at {BIN} (build it, or pass its path)")
else:
    top = help_of()
    subcommands = set(re.findall(r"^\s{2}([a-z][a-z-]+)\s", top, flags=re.M)) - {"help"}
    # Subcommands with subcommands of their own (users, hold): their words, from their help.
    nested = {}
    for sub in subcommands:
        sub_help = help_of(sub)
        if "\nCommands:" in sub_help:
            commands_part = sub_help.split("\nCommands:", 1)[1].split("\n\n", 1)[0]
            nested[sub] = set(re.findall(r"^\s{2}([a-z][a-z-]+)\s", commands_part, flags=re.M)) - {"help"}
    global_flags = set(re.findall(r"(--[a-z][a-z-]+)", top))
    flag_cache = {}
    for page in PAGES:
        text = open(page, encoding="utf-8").read()
        spans = re.findall(r"`([^`\n]+)`", prose(text)) + [
            line for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S) for line in block.split("\n")
        ]
        for span in spans:
            for m in re.finditer(r"(?:^|[\s(])(?:npx )?chat-server ([a-z][a-z-]+)((?: [^|;&#]*)?)", span):
                sub, rest = m.group(1), m.group(2)
                if sub not in subcommands:
                    # "chat-server on npm", "chat-server binary"... are prose, not commands.
                    if re.match(r"^(setup|serve|check|demo|users|export|purge|erase|check-db)", sub) or span.startswith(("chat-server ", "npx chat-server ")):
                        problem(page, f"`{span.strip()}`: chat-server has no subcommand {sub!r}")
                    continue
                if sub in nested:
                    words = rest.split()
                    if words and not words[0].startswith("-") and words[0] not in nested[sub] and re.match(r"^[a-z]+$", words[0]):
                        problem(page, f"`{span.strip()}`: chat-server {sub} has no subcommand {words[0]!r}")
                words = rest.split()
                inner = words[0] if sub in nested and words and words[0] in nested[sub] else None
                key = (sub, inner)
                if key not in flag_cache:
                    found = set(re.findall(r"(--[a-z][a-z-]+)", help_of(sub))) | global_flags
                    if inner:
                        found |= set(re.findall(r"(--[a-z][a-z-]+)", help_of(sub, inner)))
                    flag_cache[key] = found
                flags = flag_cache[key]
                for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", rest):
                    if flag not in flags:
                        problem(page, f"`{span.strip()}`: chat-server {sub} has no flag {flag}")

# ---- settings ---------------------------------------------------------------------------------
code_files = [
    f
    for pattern in ("server/src/**/*.rs", "client-wasm/src/**/*.rs", "bench/src/**/*.rs", "faults/src/**/*.rs",
                    "npm/**/*.js", "npm/**/*.sh", "scripts/*", "examples/nextjs/app/**/*.ts*",
                    "examples/nextjs/lib/*.ts", "examples/nextjs/scripts/*", "pkg/src/*.ts", "bench/*.sh",
                    "tests/**/*.sh", ".ci/run")
    for f in glob.glob(pattern, recursive=True)
    if "node_modules" not in f
]
code = "\n".join(open(f, encoding="utf-8", errors="replace").read() for f in code_files)
in_code = set(re.findall(r"\bCHAT_[A-Z0-9_]*[A-Z0-9]\b", code))
server_reads = set(
    re.findall(
        r'"(CHAT_[A-Z0-9_]+)"',
        "\n".join(open(f, encoding="utf-8").read() for f in glob.glob("server/src/**/*.rs", recursive=True)),
    )
)
# Read at build time, or only to say it is no longer read.
NOT_SETTINGS = {"CHAT_BUILD_COMMIT", "CHAT_OUTBOUND_QUEUE"}
documented = set()
for page in PAGES:
    names = set(re.findall(r"\bCHAT_[A-Z0-9_]*[A-Z0-9]\b", open(page, encoding="utf-8").read()))
    documented |= names
    for name in sorted(names - in_code - NOT_SETTINGS):
        problem(page, f"{name} is not read anywhere in the code")
for name in sorted(server_reads - documented - NOT_SETTINGS):
    problem("docs", f"chat-server reads {name}, and no page documents it")

# ---- repository paths -------------------------------------------------------------------------
TOP = ("server/", "protocol/", "client-wasm/", "pkg/", "examples/", "migrations/", "bench/", "faults/", "fuzz/",
       "scripts/", "npm/", "tests/", "docs/", ".ci/")
for page in PAGES:
    for span in re.findall(r"`([^`\n]+)`", prose(open(page, encoding="utf-8").read())):
        path = span.split()[0] if span.split() else ""
        path = path.split(":")[0].rstrip(".,;")
        if not path.startswith(TOP) or any(c in path for c in "*<>{}$") or "..." in path:
            continue
        if path.endswith("/dist") or "/dist/" in path or path.startswith(("npm/dist", "pkg/dist")):
            continue  # build output
        # Short paths name a crate's own folder (`tests/store.rs` of server/): any crate's will do.
        here = os.path.exists(path) or os.path.exists(os.path.join(os.path.dirname(page), path)) or glob.glob(f"*/{path}") or glob.glob(f"*/*/{path}")
        if not here and not glob.glob(path + "*"):
            problem(page, f"`{span}` names {path}, which does not exist")

# ---- figures that drift -----------------------------------------------------------------------
if os.path.exists(BIN):
    version = subprocess.run([BIN, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    speaks = re.search(r"\(protocol (\d+-\d+)", version)
    for page in PAGES:
        for shown in re.findall(r"chat-server \d+\.\d+\.\d+ \(protocol (\d+-\d+)", open(page, encoding="utf-8").read()):
            if speaks and shown != speaks.group(1):
                problem(page, f"shows `chat-server --version` speaking protocol {shown}; it says {version!r}")
for arch in ("x64", "arm64"):
    binary = f"npm/chat-server-linux-{arch}/bin/chat-server"
    if not os.path.exists(binary):
        continue
    size = os.path.getsize(binary)
    for page in PAGES:
        for shown in re.findall(rf"`chat-server-linux-{arch}` \| [\d.]+ MB \(([\d,]+) B\)", open(page, encoding="utf-8").read()):
            said = int(shown.replace(",", ""))
            if abs(said - size) > size * 0.05:
                problem(page, f"says the {arch} binary is {said:,} B; npm/build.sh built {size:,} B (update the table)")

for line in problems:
    print(line)
print(f"docs: {len(PAGES)} pages checked, {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
