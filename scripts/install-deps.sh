#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install the host packages the build and the nested test host need: the
# kernel build toolchain from bookworm and QEMU 10 from bookworm-backports
# (bookworm's QEMU 7.2 oopses L1 guests under multi-threaded TCG).  Only a
# private sources list is used; the system's apt configuration is untouched.
# Idempotent: does nothing when everything is already there.

. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (apt-get install)"

BUILD_PKGS="build-essential flex bison bc cpio kmod libelf-dev libssl-dev openssl patch
	busybox-static ccache dwarves rsync python3 perl xz-utils
	zstd git python3-ply python3-git"
QEMU_MIN=10

need=
for p in $BUILD_PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		need="$need $p"
done

qemu_major() {
	qemu-system-x86_64 --version 2>/dev/null |
		sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p'
}

qv=$(qemu_major || true)
if [ -z "$need" ] && [ "${qv:-0}" -ge "$QEMU_MIN" ]; then
	stage "host packages present (QEMU $qv)"
	exit 0
fi

mkdir -p "$CT_APT"
cat >"$CT_APT/host.sources.list" <<EOL
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
EOL

timed "apt update (bookworm + backports, private list)" \
	apt_private host update
export DEBIAN_FRONTEND=noninteractive
if [ -n "$need" ]; then
	timed "install build packages:$need" \
		apt_private host install -y --no-install-recommends $need
fi
if [ "${qv:-0}" -lt "$QEMU_MIN" ]; then
	timed "install QEMU from bookworm-backports" \
		apt_private host install -y --no-install-recommends \
		-t bookworm-backports qemu-system-x86
fi
qv=$(qemu_major || true)
[ "${qv:-0}" -ge "$QEMU_MIN" ] ||
	die "QEMU >= $QEMU_MIN needed, have '${qv:-none}'"
stage "QEMU $(qemu-system-x86_64 --version | head -1)"
