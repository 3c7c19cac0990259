# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check the import rule of every runtime package (docs/architecture.md): what a file may import follows from its path.

Usage: check_imports.py [ROOT]   (default: the checkout this file is in); exit 1 and one line per break.

A package may import the standard library, the third-party libraries named for it, and the shared
packages named for it; inside itself only relatively (so the generated module_utils copies of
``common/`` are the same code).  The controller side (``plugins/``) must not import the shared
packages by their own names: Ansible ships modules with module_utils only, so it uses the copies.
Every package but the lab must also parse as Python 3.9 (their floor).
"""

from __future__ import annotations

import ast
import sys
import typing as t
from pathlib import Path

SHARED = {'l3metal_contract', 'l3metal_oci'}
RUNTIME_PACKAGES = SHARED | {'l3metal_receiver', 'provisioner', 'l3mtools', 'l3metal_lab'}


class Rule(t.NamedTuple):
    root: str              # directory, relative to the checkout
    package: str | None    # the package name it is imported as (relative imports only inside it)
    allowed: frozenset[str]  # top-level modules allowed besides the standard library
    forbidden: frozenset[str] = frozenset()  # when set: anything but these (and the stdlib) is allowed
    floor: tuple[int, int] | None = (3, 9)


RULES = (
    Rule('common/l3metal_contract', 'l3metal_contract', frozenset({'jsonschema', 'fastjsonschema', 'yaml'})),
    Rule('common/l3metal_oci', 'l3metal_oci', frozenset({'requests', 'zstandard'})),
    Rule('receiver/l3metal_receiver', 'l3metal_receiver', frozenset({'aiohttp', 'l3metal_contract', 'bcrypt', 'psycopg'})),  # optional: bcrypt, psycopg
    Rule('maintenance_os/dispatcher/provisioner', 'provisioner', frozenset({'l3metal_contract', 'pycdlib'})),
    Rule('maintenance_os/tools/l3mtools', 'l3mtools', frozenset({'l3metal_oci', 'l3metal_contract'})),
    # the controller side: Ansible and its libraries, but none of the runtime packages by name
    Rule('plugins', None, frozenset(), forbidden=frozenset(RUNTIME_PACKAGES), floor=None),
)


def _imports(tree: ast.AST) -> t.Iterator[tuple[int, str, int]]:
    """(line, top-level module, relative level) of every import."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split('.')[0], 0
        elif isinstance(node, ast.ImportFrom):
            yield node.lineno, (node.module or '').split('.')[0], node.level


def check_file(path: Path, rule: Rule, shown: str) -> list[str]:
    source = path.read_text(encoding='utf-8')
    problems = []
    try:
        tree = ast.parse(source, str(path), feature_version=rule.floor) if rule.floor else ast.parse(source, str(path))
    except SyntaxError as exc:
        floor = ' as Python %d.%d' % rule.floor if rule.floor else ''
        return ['%s:%s: does not parse%s: %s' % (shown, exc.lineno, floor, exc.msg)]
    stdlib = set(sys.stdlib_module_names)
    for line, module, level in _imports(tree):
        if level or module == '__future__':
            continue
        if module == rule.package:
            problems.append('%s:%d: imports its own package %s by name; use a relative import' % (shown, line, module))
        elif rule.forbidden:
            if module in rule.forbidden:
                problems.append('%s:%d: imports %s, which does not exist where Ansible runs modules; use the module_utils copy' % (shown, line, module))
        elif module not in stdlib and module not in rule.allowed:
            problems.append('%s:%d: imports %s; %s may import the standard library and %s only (docs/architecture.md)'
                            % (shown, line, module, rule.root, ', '.join(sorted(rule.allowed)) or 'nothing else'))
    return problems


def main(argv: t.Sequence[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[2]
    problems = []
    checked = 0
    for rule in RULES:
        base = root / rule.root
        if not base.is_dir():
            problems.append('%s: missing' % rule.root)
            continue
        for path in sorted(base.rglob('*.py')):
            checked += 1
            problems += check_file(path, rule, str(path.relative_to(root)))
    for problem in problems:
        print(problem)
    print('check_imports: %d files, %d problem(s)' % (checked, len(problems)))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
