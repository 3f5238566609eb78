#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Turn Debian's pristine linux-source tarball into the tree we build:
#   build/linux-pristine/  the unpacked upstream, never modified
#   build/linux/           pristine + patches/series + our overlay
#
# The overlay is every file below the directories in OVERLAY_DIRS: new
# files at their real in-tree paths.  Files are only rewritten when their
# content changes, so an unchanged tree rebuilds nothing and a changed
# .c file rebuilds only that file.  A file we touched before but touch no
# longer is put back to its pristine content.
#
# CT_VANILLA=1 builds the unpatched upstream: no patches, no overlay (make
# survey uses it, in its own build directory).

. "$(dirname "$0")/lib.sh"

OVERLAY_DIRS="arch virt include kernel tools Documentation"

tarball=$("$CT_TOP/scripts/fetch-source.sh" | tail -1)
ver=$(cat "$CT_BUILD/linux-source.version")
pristine=$CT_BUILD/linux-pristine

if [ "$(cat "$pristine/.ct-version" 2>/dev/null)" != "$ver" ]; then
	rm -rf "$pristine" "$CT_SRC" "$CT_BUILD/stage"
	mkdir -p "$pristine"
	timed "unpack $(basename "$tarball")" \
		tar -xf "$tarball" -C "$pristine" --strip-components=1
	echo "$ver" >"$pristine/.ct-version"
fi
if [ ! -f "$CT_SRC/Makefile" ]; then
	rm -rf "$CT_SRC"
	timed "copy pristine tree" cp -a "$pristine" "$CT_SRC"
	rm -f "$CT_SRC/.ct-version"
fi

# Stage: a sparse tree holding only the files we patch or add.
stage=$CT_BUILD/stage
rm -rf "$stage"
mkdir -p "$stage"

series=$CT_TOP/patches/series
patches=()
if [ "${CT_VANILLA:-0}" = 1 ]; then
	stage "vanilla tree: no patches, no overlay"
elif [ -f "$series" ]; then
	while read -r p _; do
		case $p in '' | '#'*) continue ;; esac
		[ -f "$CT_TOP/patches/$p" ] || die "patches/series names missing patch $p"
		patches+=("$p")
	done <"$series"
fi

# Overlay first: a patch may edit an overlaid file's neighbour, never the
# overlaid file itself (that file is ours; edit it directly).
(cd "$CT_TOP" && [ "${CT_VANILLA:-0}" != 1 ] && for d in $OVERLAY_DIRS; do
	if [ -d "$d" ]; then
		find "$d" -type f ! -name '*.orig' ! -name '*.rej'
	fi
done || true) >"$CT_BUILD/overlay.list"
while read -r f; do
	if [ -e "$pristine/$f" ]; then
		die "overlay file $f exists upstream: change it with a patch in patches/, not by overlay"
	fi
	mkdir -p "$stage/$(dirname "$f")"
	cp "$CT_TOP/$f" "$stage/$f"
done <"$CT_BUILD/overlay.list"

: >"$CT_BUILD/patched.list"
for p in "${patches[@]}"; do
	# Files a patch touches: the "+++ b/path" lines (new files included).
	sed -n 's,^+++ b/\([^[:space:]]*\).*,\1,p' "$CT_TOP/patches/$p" |
		while read -r f; do
			echo "$f" >>"$CT_BUILD/patched.list"
			if [ ! -e "$stage/$f" ] && [ -e "$pristine/$f" ]; then
				mkdir -p "$stage/$(dirname "$f")"
				cp "$pristine/$f" "$stage/$f"
			fi
		done
	if ! out=$(patch -d "$stage" -p1 -N -F0 --batch --no-backup-if-mismatch \
		-i "$CT_TOP/patches/$p" 2>&1); then
		echo "$out" >&2
		die "patch $p does not apply to linux-source $ver (see the rejects above)"
	fi
done
find "$stage" -name '*.rej' -o -name '*.orig' | grep -q . &&
	die "stray .rej/.orig files in the staged tree"

# Sync: copy only files whose content differs.
changed=0
while read -r f; do
	if ! cmp -s "$stage/$f" "$CT_SRC/$f"; then
		mkdir -p "$CT_SRC/$(dirname "$f")"
		cp "$stage/$f" "$CT_SRC/$f"
		changed=$((changed + 1))
	fi
done < <(cd "$stage" && find . -type f | sed 's,^\./,,' | sort)

# Restore files we no longer touch.
sort -u "$CT_BUILD/overlay.list" "$CT_BUILD/patched.list" >"$CT_BUILD/touched.new"
if [ -f "$CT_BUILD/touched.list" ]; then
	comm -23 "$CT_BUILD/touched.list" "$CT_BUILD/touched.new" |
		while read -r f; do
			if [ -e "$pristine/$f" ]; then
				cp "$pristine/$f" "$CT_SRC/$f"
			else
				rm -f "$CT_SRC/$f"
			fi
		done
fi
mv "$CT_BUILD/touched.new" "$CT_BUILD/touched.list"
stage "tree ready: linux $ver, ${#patches[@]} patches, $(wc -l <"$CT_BUILD/overlay.list") overlay files, $changed updated"
