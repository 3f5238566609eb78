#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Fetch Debian's linux-source-$CT_KVER_PIN package into the cache.  The
# major.minor is pinned; whatever patch level the archive serves is accepted
# and printed.  CT_LINUX_SOURCE=/path/to/linux-source-*.deb or a
# linux-source-*.tar.xz overrides the download (offline rebuilds).
#
# Prints the path of the tarball on its last line of stdout.

. "$(dirname "$0")/lib.sh"

pkg=linux-source-$CT_KVER_PIN
if [ -n "${CT_LINUX_SOURCE:-}" ]; then
	[ -f "$CT_LINUX_SOURCE" ] || die "CT_LINUX_SOURCE=$CT_LINUX_SOURCE: no such file"
	src=$CT_LINUX_SOURCE
	stage "using local source $src" >&2
else
	mkdir -p "$CT_APT"
	cat >"$CT_APT/src.sources.list" <<EOL
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian experimental main
EOL
	ver=
	if timed "apt update (sid, trixie-backports, experimental)" \
		apt_private src update >&2; then
		# Highest version of the pinned major.minor, any suite.
		ver=$(apt_private src apt-cache madison "$pkg" 2>/dev/null |
			awk -F' *[|] *' '{print $2}' |
			sort -V | tail -1)
	fi
	cached=$(ls -1 "$CT_CACHE"/${pkg}_*.deb 2>/dev/null | sort -V | tail -1 || true)
	if [ -z "$ver" ]; then
		[ -n "$cached" ] ||
			die "$pkg is not available from Debian's archive (sid, trixie-backports, experimental) and no cached copy exists; set CT_LINUX_SOURCE to a local .deb or tarball"
		stage "archive unreachable: using cached $cached" >&2
		src=$cached
	else
		fver=${ver//:/%3a}
		src=$CT_CACHE/${pkg}_${fver}_all.deb
		if [ ! -s "$src" ]; then
			(cd "$CT_CACHE" && timed "download $pkg=$ver" \
				apt_private src download "$pkg=$ver" >&2) ||
				die "download of $pkg=$ver failed"
		fi
	fi
fi

case $src in
*.deb)
	tarball=$CT_CACHE/$(basename "$src" .deb).tar.xz
	if [ ! -s "$tarball" ]; then
		tmp=$(mktemp -d "$CT_BUILD/deb.XXXXXX")
		dpkg-deb -x "$src" "$tmp"
		t=$(ls "$tmp"/usr/src/linux-source-*.tar.* | head -1)
		[ -n "$t" ] || die "$src holds no linux-source tarball"
		mv "$t" "$tarball"
		rm -rf "$tmp"
	fi
	ver=$(dpkg-deb -f "$src" Version)
	;;
*.tar.*)
	tarball=$src
	ver=$(basename "$src")
	;;
*) die "unknown source format: $src" ;;
esac
stage "kernel source: $pkg $ver" >&2
echo "$ver" >"$CT_BUILD/linux-source.version"
echo "$tarball"
