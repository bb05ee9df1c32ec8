"""Keeps template.yaml's SchemaMigrations.MigrationsHash equal to the migrations' hash.

    python -m pilot_dev.migrations_hash           # exit 1 when the template is stale
    python -m pilot_dev.migrations_hash --write   # update the template

The hash is a literal in the template (not a deploy-time parameter) so that a plain
`sam deploy` is right; tests/unit/test_migrations_deploy.py fails while it is stale.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from amazon_pilot.platform.migrate import migrations_hash
from pilot_dev.runtime.template import default_template_path, load_template

_LINE = re.compile(r"^(\s+MigrationsHash:\s*)\"?([^\"\s]*)\"?[ \t]*$", re.MULTILINE)


def template_hash(path: Path | None = None) -> str:
    template = load_template(path)
    resource = template.resources.get("SchemaMigrations") or {}
    return str((resource.get("Properties") or {}).get("MigrationsHash", ""))


def write(path: Path | None = None) -> bool:
    path = path or default_template_path()
    text = path.read_text()
    if len(_LINE.findall(text)) != 1:
        raise SystemExit(f"{path}: expected exactly one MigrationsHash line")
    updated = _LINE.sub(lambda m: f'{m.group(1)}"{migrations_hash()}"', text)
    if updated != text:
        path.write_text(updated)
    return updated != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update template.yaml")
    args = parser.parse_args(argv)
    if args.write:
        print("updated" if write() else "up to date")
        return 0
    current, wanted = template_hash(), migrations_hash()
    if current != wanted:
        print(f"template.yaml MigrationsHash {current[:12] or '(none)'} != migrations "
              f"{wanted[:12]}: run python -m pilot_dev.migrations_hash --write", file=sys.stderr)
        return 1
    print("up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
