#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Linux 7.3 needs a sparse that knows __typeof_unqual__ (see
# scripts/checker-valid.sh); bookworm's 0.6.4 does not.  Build Debian's
# newer sparse from its source package (sid, through a private deb-src
# list) into the cache; a binary package from sid would drag in sid's libc.
# Prints the path of the sparse binary on its last line.

. "$(dirname "$0")/lib.sh"

tooldir=$CT_CACHE/tools
mkdir -p "$tooldir" "$CT_APT"
have=$(ls -d "$tooldir"/sparse-*/sparse 2>/dev/null | sort -V | tail -1 || true)
if [ -n "$have" ] && [ -x "$have" ]; then
	echo "$have"
	exit 0
fi
cat >"$CT_APT/srcpkg.sources.list" <<EOL
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main
EOL
apt_private srcpkg update >&2
tmp=$(mktemp -d "$CT_BUILD/sparse.XXXXXX")
(cd "$tmp" && apt_private srcpkg -o APT::Sandbox::User=root source --download-only sparse >&2)
tarball=$(ls "$tmp"/sparse_*.orig.tar.* | head -1)
[ -n "$tarball" ] || die "no sparse source package in Debian's archive"
tar -xf "$tarball" -C "$tmp"
src=$(ls -d "$tmp"/sparse-*/ | head -1)
ver=$(basename "$src")
timed "build $ver" make -s -C "$src" -j"$CT_JOBS" HAVE_LLVM=no HAVE_GTK=no \
	HAVE_SQLITE=no sparse >&2
mkdir -p "$tooldir/$ver"
cp "$src/sparse" "$tooldir/$ver/sparse"
rm -rf "$tmp"
echo "$tooldir/$ver/sparse"
