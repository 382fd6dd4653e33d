"""Write one section of benchmarks/RESULTS.md, keeping the others."""

from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = ("# Benchmark results\n\nWritten by the scripts in this folder (`--write`). Absolute "
          "figures drift between runs and machines; compare the ratios, each measured against a "
          "baseline in the same run.\n")


def machine_line() -> str:
    return (f"{datetime.date.today().isoformat()}, {os.cpu_count()} cores, "
            f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
            f"numpy {np.__version__}")


def replace_section(title: str, lines: list[str]) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    body = f"## {title}\n\n_{machine_line()}_\n\n" + "\n".join(lines).rstrip() + "\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: body + "\n", text)
    else:
        text = text.rstrip() + "\n\n" + body
    RESULTS.write_text(text.rstrip() + "\n")
