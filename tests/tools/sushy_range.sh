#!/usr/bin/env bash
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Run the Redfish unit tests (replayed vendor JSON) and the Redfish integration tests (sushy-tools
# emulator, ansible-playbook) against the lowest and the highest sushy that meta/requirements.txt allows,
# each in a virtualenv of its own under .cache/sushy-range/<version>.
#
# The two versions are pinned here and must match the range in meta/requirements.txt (checked below):
#   LOW   the floor: 4.8.0 is the first release whose connector takes server_side_retries_left and
#         allow_reauth, which the backend's retry loop passes (4.0-4.4 take neither, 4.5-4.7 no allow_reauth;
#         sushy would hand the unknown keyword on to requests, which refuses it).
#   HIGH  the newest release below the ceiling that was tested.
# Usage: tests/tools/sushy_range.sh [VERSION...]   (default: LOW and HIGH, but not the main virtualenv's version,
#        which make units and make integration test; versions given on the command line always run)
# Needs: python3 with venv, the package index; the checkout's .build layout (make layout).
set -euo pipefail

LOW=4.8.0
HIGH=5.14.0
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-python3}
BUILD=$ROOT/.build
COLL=$BUILD/ansible_collections/l3metal/provision
CACHE=$ROOT/.cache/sushy-range

range=$(grep -E '^sushy[<>=]' "$ROOT/meta/requirements.txt")
if [ "$range" != "sushy>=${LOW%.0},<6" ]; then
    echo "sushy_range.sh: meta/requirements.txt says '$range' but LOW=$LOW: update one of them" >&2
    exit 2
fi
if [ ! -d "$COLL" ]; then
    echo "sushy_range.sh: no layout in $BUILD: run 'make layout' first" >&2
    exit 2
fi

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=("$LOW" "$HIGH")

# everything the Redfish tests import, without the linters; sushy itself is pinned per venv
requirements=$CACHE/requirements.txt
mkdir -p "$CACHE"
grep -vE '^(-r |ruff|ansible-lint|mypy|types-|antsibull)' "$ROOT/requirements-dev.txt" > "$requirements"
grep -vE '^sushy[<>=]' "$ROOT/meta/requirements.txt" >> "$requirements"

# The sushy of the main virtualenv (make venv): make units and make integration have just run every Redfish test on it,
# so a pinned version equal to it is not run a second time (MAIN_PYTHON=none runs every pinned version).
MAIN_PYTHON=${MAIN_PYTHON:-$ROOT/.venv/bin/python}
main_sushy=$("$MAIN_PYTHON" -c 'import importlib.metadata as m; print(m.version("sushy"))' 2>/dev/null || true)

summary=()
status=0
for version in "${versions[@]}"; do
    if [ "$version" = "$main_sushy" ] && [ $# -eq 0 ]; then
        echo "== sushy $version: the main virtualenv's version ($MAIN_PYTHON): its Redfish tests ran in make units and make integration"
        summary+=("sushy $version: tested in the main virtualenv (make units, make integration)")
        continue
    fi
    venv=$CACHE/$version
    if [ ! -x "$venv/bin/python" ] || [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("sushy"))' 2>/dev/null)" != "$version" ]; then
        echo "== sushy $version: creating $venv"
        rm -rf "$venv"
        "$PYTHON" -m venv "$venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" "sushy==$version"
        # the runtime packages and the lab, as make venv installs them (docs/architecture.md)
        (cd "$ROOT" && "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
            -e ./common -e ./receiver -e ./maintenance_os/dispatcher -e ./maintenance_os/tools -e ./lab)
    fi
    installed=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("sushy"))')
    [ "$installed" = "$version" ] || { echo "sushy_range.sh: $venv has sushy $installed, not $version" >&2; exit 1; }
    echo "== sushy $installed: Redfish unit tests"
    unit=0
    (cd "$COLL" && PYTHONPATH=$BUILD "$venv/bin/python" "$ROOT/tests/tools/require_tests.py" "units sushy $version" \
        --junit "$CACHE/units-$version.xml" --partial -- \
        "$venv/bin/python" -m pytest tests/unit/plugins/module_utils/_redfish -q -p no:cacheprovider --junitxml="$CACHE/units-$version.xml") || unit=$?
    echo "== sushy $installed: Redfish integration tests"
    integration=0
    (cd "$COLL" && PATH=$venv/bin:$PATH PYTHONPATH=$BUILD "$venv/bin/python" "$ROOT/tests/tools/require_tests.py" "integration sushy $version" \
        --junit "$CACHE/integration-$version.xml" --prefix tests/integration --partial -- \
        "$venv/bin/python" -m pytest tests/integration -k redfish -q -p no:cacheprovider --junitxml="$CACHE/integration-$version.xml") || integration=$?
    summary+=("sushy $installed: units exit $unit, integration exit $integration")
    [ $unit -eq 0 ] && [ $integration -eq 0 ] || status=1
done
printf '%s\n' "${summary[@]}"
exit $status
