"""Writes one benchmark's section of BENCHMARKS.md, leaving the other sections as they are."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS_MD = os.path.join(ROOT, "BENCHMARKS.md")
_HEADER = (
    "# Benchmarks\n\nEach section is written by the script it names; re-run it to refresh the section.\n"
)


def machine() -> str:
    """CPU model, cores and memory of this machine, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = ""
    if hasattr(os, "sysconf"):
        mem = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    return f"{cpu}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}"


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_section(name: str, title: str, body: str) -> None:
    """Replaces (or appends) the section `name` of BENCHMARKS.md with `body` and run details."""
    stamp = datetime.date.today().isoformat()
    # The script that runs, not the section name: one script may write several sections.
    script = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    command = " ".join(["python", "-m", f"benchmarks.{script}"] + sys.argv[1:])
    section = (
        f"<!-- BEGIN {name} -->\n## {title}\n\n"
        f"Command: `{command}`  \nMachine: {machine()}  \nDate: {stamp}, commit {commit()}\n\n"
        f"{body.strip()}\n<!-- END {name} -->\n"
    )
    text = open(BENCHMARKS_MD, encoding="utf-8").read() if os.path.exists(BENCHMARKS_MD) else _HEADER
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(BENCHMARKS_MD, "w", encoding="utf-8") as handle:
        handle.write(text)
