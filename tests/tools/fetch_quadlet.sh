#!/bin/sh
# Fetch Debian trixie's podman package and unpack it (not install it) to get the Quadlet generator
# (podman >= 4.4; bookworm's 4.3 has none).  The binary needs only libc and runs on bookworm.
# The system's apt state is not touched: apt gets private lists/cache directories and a sources
# list of its own that names only trixie, on the mirror the system already uses.
#
# Usage: fetch_quadlet.sh [DIR]   (default .cache/quadlet).  Prints the path of the quadlet binary.
# Cached: a second run with the binary in place prints the path and does nothing else.
set -eu
D=$(realpath -m "${1:-.cache/quadlet}")
BIN="$D/root/usr/libexec/podman/quadlet"
if [ -x "$BIN" ] && "$BIN" -version >/dev/null 2>&1; then
    echo "$BIN"
    exit 0
fi
MIRROR=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
if [ -z "$MIRROR" ] && [ -f /etc/apt/sources.list ]; then
    MIRROR=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list)
fi
if [ -z "$MIRROR" ]; then
    echo "fetch_quadlet: no Debian mirror found in the apt sources" >&2
    exit 1
fi
rm -rf "$D"
mkdir -p "$D/lists/partial" "$D/cache/archives/partial" "$D/parts" "$D/pkg"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR trixie main" > "$D/sources.list"
set -- -o Dir::Etc::sourcelist="$D/sources.list" -o Dir::Etc::sourceparts="$D/parts" \
       -o Dir::State::Lists="$D/lists" -o Dir::Cache="$D/cache" -o APT::Sandbox::User=root
apt-get "$@" -qq update >&2
(cd "$D/pkg" && apt-get "$@" -qq download podman >&2)
dpkg-deb -x "$D"/pkg/podman_*.deb "$D/root"
rm -rf "$D/lists" "$D/cache" "$D/pkg"
"$BIN" -version >&2
echo "$BIN"
