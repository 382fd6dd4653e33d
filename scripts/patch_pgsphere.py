#!/usr/bin/env python3
"""Make Debian 12's pgsphere 1.1.1 install on PostgreSQL >= 15.20.

PostgreSQL 15.20 refuses an operator whose COMMUTATOR is already the commutator of another
operator. pgsphere's extension script declares the deprecated smoc operators `@` and `~` with the
same commutators as `<@`/`@>`, so `CREATE EXTENSION pg_sphere` (run by `dachs init`) fails with
"commutator operator @> is already the commutator of operator <@". Dropping COMMUTATOR/NEGATOR
from those two deprecated declarations only removes optimiser hints. Idempotent; keeps a .orig.

Usage: patch_pgsphere.py /usr/share/postgresql/15/extension/pg_sphere--1.2.0.sql
"""

import re
import shutil
import sys
from pathlib import Path


def patch(text: str) -> str:
    def fix(match):
        block = match.group(0)
        if "smoc" in block:
            block = re.sub(r"\n\s*(COMMUTATOR|NEGATOR)\s*=\s*'?[^,\n]*'?,", "", block)
        return block

    return re.sub(r"CREATE OPERATOR (@|~) \(.*?\);", fix, text, flags=re.S)


def main(path: str) -> int:
    target = Path(path)
    if not target.exists():
        print(f"{target}: not present, nothing to patch")
        return 0
    text = target.read_text()
    patched = patch(text)
    if patched == text:
        print(f"{target}: already compatible")
        return 0
    backup = target.with_name(target.name + ".orig")
    if not backup.exists():
        shutil.copy2(target, backup)
    target.write_text(patched)
    print(f"{target}: dropped COMMUTATOR/NEGATOR of the deprecated smoc @ and ~ operators")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
