#!/bin/sh
# Install the Debian packages listed in the given file(s) when any is missing (apt-get update first).
# Set L3METAL_SKIP_APT=1 to skip, e.g. on a machine that is already set up or is not Debian-based.
set -eu
[ "${L3METAL_SKIP_APT:-0}" = 1 ] && exit 0
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "system packages: not a Debian-based system; install the equivalents of: $(grep -hv '^#' "$@" | tr '\n' ' ')" >&2
    exit 0
fi
missing=""
packages=$(sed -e 's/#.*//' "$@" | tr -s ' \t\n' ' ')
for pkg in $packages; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $pkg"
    fi
done
[ -z "$missing" ] && exit 0
echo "system packages: installing$missing"
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "system packages: missing$missing; run as root or install them first" >&2
    exit 1
fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
