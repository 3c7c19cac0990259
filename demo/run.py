# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make demo`: run the demo playbook(s) against localhost with this checkout's collection."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / '.build'


def main() -> int:
    env = dict(os.environ)
    env.update({
        'ANSIBLE_COLLECTIONS_PATH': str(BUILD),
        'ANSIBLE_PYTHON_INTERPRETER': sys.executable,
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_RETRY_FILES_ENABLED': 'false',
        'L3METAL_DEMO_DIR': str(ROOT / 'demo-output'),
        'PATH': os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', ''),
    })
    playbook = ROOT / 'demo' / 'task_media.yml'
    print('demo: ansible-playbook %s (output in demo-output/)' % playbook.relative_to(ROOT), flush=True)
    return subprocess.call([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,', str(playbook)], env=env)


if __name__ == '__main__':
    sys.exit(main())
