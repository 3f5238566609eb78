#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Check the linked caretaker runtime: it must be self-contained.
#   rt_check.sh NM READELF rt.elf
# Fails if the image has an undefined symbol, a relocation, a global
# symbol outside the ctrt_ namespace, or a section other than those its
# linker script places.
nm=$1 readelf=$2 elf=$3
fail() { echo "$elf: $*" >&2; exit 1; }

undef=$($nm -u "$elf")
[ -z "$undef" ] || fail "refers to symbols outside the runtime: $undef"
$readelf -rW "$elf" | grep -q "^Relocation section" && fail "has relocations"
bad=$($nm -g "$elf" | awk '$3 !~ /^ctrt_/ { print $3 }')
[ -z "$bad" ] || fail "global symbols outside ctrt_: $bad"
secs=$($readelf -SW "$elf" | sed -n 's/^ *\[ *[0-9]*\] \([^ ]*\) .*/\1/p' | grep -v '^NULL$')
for s in $secs; do
	case $s in
	.header|.text|.rodata|.data|.bss|.symtab|.strtab|.shstrtab) ;;
	*) fail "unexpected section $s" ;;
	esac
done
exit 0
