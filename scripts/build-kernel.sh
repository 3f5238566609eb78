#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Configure and build the test kernel out of tree (O=build/obj) with ccache:
# x86_64_defconfig, then every fragment in configs/ in name order, then
# olddefconfig; every option a fragment asks for is verified afterwards.
#
# CT_NEXT=1 builds the "next" kernel the kexec test host updates into: the
# same tree, plus configs/next/ (another LOCALVERSION and a config tweak),
# in build/obj-next, its modules in build/modules-next.  It expects the
# tree prepared already (a plain build-kernel.sh first).

. "$(dirname "$0")/lib.sh"

MODS=$CT_BUILD/modules
if [ "${CT_NEXT:-0}" = 1 ]; then
	CT_OBJ=$CT_BUILD/obj-next
	MODS=$CT_BUILD/modules-next
	[ -f "$CT_SRC/Makefile" ] || die "no kernel tree: run scripts/build-kernel.sh first"
else
	"$CT_TOP/scripts/prepare-tree.sh"
fi

# Stable build identity: keeps ccache hits across clones and rebuilds.
export KBUILD_BUILD_TIMESTAMP="2026-01-01"
export KBUILD_BUILD_USER=caretaker KBUILD_BUILD_HOST=ci
KMAKE=(make -s -C "$CT_SRC" O="$CT_OBJ" ARCH=x86_64 CC="ccache gcc"
	HOSTCC="ccache gcc" -j"$CT_JOBS")

mkdir -p "$CT_OBJ"
frags=("$CT_TOP"/configs/*.config)
[ "${CT_NEXT:-0}" = 1 ] && frags+=("$CT_TOP"/configs/next/*.config)
if [ "${CT_VANILLA:-0}" = 1 ]; then
	# The unpatched kernel has no caretaker options.
	mkdir -p "$CT_BUILD/configs"
	for f in "${frags[@]}"; do
		grep -v CARETAKER "$f" >"$CT_BUILD/configs/${f##*/}"
	done
	frags=("$CT_BUILD"/configs/*.config)
fi
want=$(cat "${frags[@]}" | sha256sum | cut -c1-16)
if [ "$(cat "$CT_OBJ/.ct-config" 2>/dev/null)" != "$want" ] ||
	[ ! -f "$CT_OBJ/.config" ]; then
	stage "configure: x86_64_defconfig + ${frags[*]##*/}"
	"${KMAKE[@]}" x86_64_defconfig >/dev/null
	(cd "$CT_OBJ" && KCONFIG_CONFIG=.config \
		"$CT_SRC/scripts/kconfig/merge_config.sh" -m -O "$CT_OBJ" \
		.config "${frags[@]}" >/dev/null)
	"${KMAKE[@]}" olddefconfig >/dev/null
	echo "$want" >"$CT_OBJ/.ct-config"
fi

# Verify: everything a fragment set is set, everything it unset is unset.
missing=0
while IFS= read -r line; do
	case $line in
	CONFIG_*=*)
		opt=${line%%=*}
		if ! grep -qxF "$line" "$CT_OBJ/.config"; then
			have=$(grep -E "^($opt=|# $opt is not set)" "$CT_OBJ/.config" || echo "absent")
			echo "config: asked for $line, got: $have" >&2
			missing=1
		fi
		;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }
		opt=${opt%% *}
		if grep -qE "^$opt=" "$CT_OBJ/.config"; then
			echo "config: asked to unset $opt, got: $(grep -E "^$opt=" "$CT_OBJ/.config")" >&2
			missing=1
		fi
		;;
	esac
done < <(cat "${frags[@]}")
[ $missing = 0 ] || die "the kernel configuration lacks options asked for in configs/ (see above)"
stage "config verified: $(grep -c '^CONFIG_' "$CT_OBJ/.config") options set"

timed "build bzImage and modules (-j$CT_JOBS)" "${KMAKE[@]}" bzImage modules
timed "install uAPI headers" "${KMAKE[@]}" headers_install INSTALL_HDR_PATH="$CT_OBJ/usr" >/dev/null
rm -rf "$MODS"
timed "install modules" "${KMAKE[@]}" modules_install \
	INSTALL_MOD_PATH="$MODS" INSTALL_MOD_STRIP=1 >/dev/null
stage "kernel: $(cat "$CT_OBJ/include/config/kernel.release") $(du -h "$CT_OBJ/arch/x86/boot/bzImage" | cut -f1)"
ccache -s 2>/dev/null | grep -Ei 'hits|misses' | head -3 || true
