#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Export the work as a git format-patch series on top of the pinned
# upstream: a throw-away git repository of the pristine tree, one commit
# per line of patches/series (the patch plus the overlay files it names),
# then git format-patch into build/series/.

. "$(dirname "$0")/lib.sh"

"$CT_TOP/scripts/prepare-tree.sh" >/dev/null
ver=$(cat "$CT_BUILD/linux-source.version")
G=$CT_BUILD/series-git
OUT=$CT_BUILD/series
rm -rf "$G" "$OUT"
timed "import pristine linux-source $ver" \
	cp -a "$CT_BUILD/linux-pristine" "$G"
rm -f "$G/.ct-version"
export GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"
# Debian's tarball ignores its whole top level in .gitignore: add with -f.
git -C "$G" init -q
git -C "$G" config user.name "Caretaker developers"
git -C "$G" config user.email caretaker-dev@lists.example.org
git -C "$G" add -f -A . >/dev/null
git -C "$G" commit -qm "Linux $ver (Debian linux-source-$CT_KVER_PIN)"
base=$(git -C "$G" rev-parse HEAD)

claimed=$CT_BUILD/series-claimed.list
: >"$claimed"
while read -r p files; do
	case $p in '' | '#'*) continue ;; esac
	git -C "$G" am -q --keep-cr "$CT_TOP/patches/$p" ||
		die "git am $p failed"
	for f in $files; do
		[ -e "$CT_TOP/$f" ] || die "patches/series: $p names $f, which does not exist"
		(cd "$CT_TOP" && find "$f" -type f) | while read -r x; do
			mkdir -p "$G/$(dirname "$x")"
			cp "$CT_TOP/$x" "$G/$x"
			echo "$x" >>"$claimed"
		done
	done
	git -C "$G" add -f -A .
	git -C "$G" commit -q --amend --no-edit
done < <(grep -v '^#' "$CT_TOP/patches/series")

orphans=$(sort -u "$claimed" | comm -13 - <(sort "$CT_BUILD/overlay.list"))
[ -z "$orphans" ] || die "overlay files in no commit of patches/series: $orphans"

git -C "$G" format-patch -q --cover-letter -o "$OUT" "$base"..HEAD
stage "series: $(ls "$OUT" | grep -vc cover) patches in $OUT"
