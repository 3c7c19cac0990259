#!/bin/sh
# Build a minimal Debian root filesystem with debootstrap and keep it as a tar file (a cache: a
# second run with the file in place only prints its path).  Used by tests that need a real Linux
# system to chroot into, e.g. the GRUB step.  The mirror is the one the system's apt sources use.
#
# Usage: debootstrap_rootfs.sh OUT.tar SUITE [PACKAGE...]    Prints OUT.tar.  Exit 3: mirror unreachable.
set -eu
OUT=$(realpath -m "$1")
SUITE=$2
shift 2
if [ -s "$OUT" ]; then
    echo "$OUT"
    exit 0
fi
MIRROR=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
if [ -z "$MIRROR" ] && [ -f /etc/apt/sources.list ]; then
    MIRROR=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list)
fi
if [ -z "$MIRROR" ] || ! command -v debootstrap >/dev/null 2>&1; then
    echo "debootstrap_rootfs: no Debian mirror in the apt sources, or no debootstrap" >&2
    exit 3
fi
if ! wget -q -T 20 -O /dev/null "$MIRROR/dists/$SUITE/Release" 2>/dev/null && ! curl -fsS -m 20 -o /dev/null "$MIRROR/dists/$SUITE/Release" 2>/dev/null; then
    echo "debootstrap_rootfs: mirror $MIRROR is unreachable" >&2
    exit 3
fi
mkdir -p "$(dirname "$OUT")"
WORK=$(mktemp -d "$(dirname "$OUT")/debootstrap.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
INCLUDE=$(echo "$*" | tr ' ' ',')
debootstrap --variant=minbase ${INCLUDE:+--include="$INCLUDE"} "$SUITE" "$WORK/root" "$MIRROR" >&2
rm -rf "$WORK/root/var/cache/apt/archives/"*.deb "$WORK/root/var/lib/apt/lists/"*_Packages
tar -C "$WORK/root" -cf "$OUT.tmp" .
mv "$OUT.tmp" "$OUT"
echo "$OUT"
