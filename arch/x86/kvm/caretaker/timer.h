/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Local APIC timer and TSC arithmetic shared by caretaker.ko and the
 * caretaker runtime.
 *
 * Everything here is pure and static inline, and calls no kernel
 * function: the runtime is linked without the kernel and without libgcc,
 * so there is no 128-bit division.  Conversions between clocks therefore
 * use a multiplier and shift computed once, in the kernel, at PREPARE
 * time (caretaker_mult_shift()), and a 64x64->128 multiply at run time.
 *
 * Rounding rule: every conversion that yields the time at which to fire
 * rounds *up*, so that a guest never takes a timer interrupt before its
 * deadline; a late interrupt is a latency, an early one is a bug the guest
 * can see (Linux's TSC-deadline clockevent checks for it).
 */
#ifndef __ARCH_X86_KVM_CARETAKER_TIMER_H
#define __ARCH_X86_KVM_CARETAKER_TIMER_H

#include <linux/types.h>
#include <linux/errno.h>
#include <linux/limits.h>

/* Fixed-point fraction of the multipliers built by caretaker_mult_shift(). */
#define CARETAKER_MULT_SHIFT	32

/**
 * caretaker_apic_timer_divisor() - decode the APIC timer divide configuration
 * @tdcr: value of the Divide Configuration Register (APIC offset 0x3e0)
 *
 * SDM Vol. 3A 11.5.4, Figure 11-10: bits 0, 1 and 3 form a 3-bit field n;
 * the divisor is 2^(n + 1) for n < 7 and 1 for n == 7.  Bit 2 and the upper
 * bits are reserved and ignored, as KVM ignores them.
 *
 * Return: the divisor, a power of two from 1 to 128.
 */
static inline unsigned int caretaker_apic_timer_divisor(u32 tdcr)
{
	unsigned int n = (tdcr & 0x3) | ((tdcr & 0x8) >> 1);

	return 1u << ((n + 1) & 7);
}

/**
 * caretaker_apic_count_to_ns() - length of a guest APIC timer period
 * @count: initial count (TMICT) programmed by the guest
 * @divisor: decoded divide configuration, see caretaker_apic_timer_divisor()
 * @bus_cycle_ns: the VM's APIC bus cycle in ns (KVM_CAP_X86_APIC_BUS_CYCLES_NS)
 *
 * Cannot overflow: KVM_CAP_X86_APIC_BUS_CYCLES_NS refuses any bus cycle
 * for which U32_MAX * 128 * bus_cycle_ns would not fit in 64 bits.
 *
 * Return: the period in nanoseconds.
 */
static inline u64 caretaker_apic_count_to_ns(u32 count, unsigned int divisor,
					     u32 bus_cycle_ns)
{
	return (u64)count * divisor * bus_cycle_ns;
}

/**
 * caretaker_mult_shift() - build a multiplier converting one clock to another
 * @from_khz: frequency of the source clock, in kHz (non-zero)
 * @to_khz: frequency of the target clock, in kHz
 * @mult: the multiplier, scaled by 2^CARETAKER_MULT_SHIFT, rounded up
 *
 * The multiplier is rounded up so that caretaker_convert_up() never
 * under-estimates.  Runs in the kernel only (it divides).
 *
 * Any ratio fits: @to_khz << 32 cannot overflow 64 bits.
 *
 * Return: 0, or -EINVAL if @from_khz is zero.
 */
static inline int caretaker_mult_shift(u32 from_khz, u32 to_khz, u64 *mult)
{
	u64 num = (u64)to_khz << CARETAKER_MULT_SHIFT;

	if (!from_khz)
		return -EINVAL;
	*mult = num / from_khz + !!(num % from_khz);
	return 0;
}

/**
 * caretaker_convert_up() - convert a tick count between clocks, rounding up
 * @v: ticks of the source clock
 * @mult: multiplier from caretaker_mult_shift()
 *
 * Return: ceil(@v * @mult / 2^CARETAKER_MULT_SHIFT), or U64_MAX if the
 * result does not fit in 64 bits.
 */
static inline u64 caretaker_convert_up(u64 v, u64 mult)
{
	unsigned __int128 p = (unsigned __int128)v * mult;

	p += (1ULL << CARETAKER_MULT_SHIFT) - 1;
	p >>= CARETAKER_MULT_SHIFT;
	return p > U64_MAX ? U64_MAX : (u64)p;
}

/**
 * caretaker_host_to_guest_tsc() - the guest's TSC at a given host TSC
 * @host_tsc: host TSC value
 * @ratio: the vCPU's TSC scaling ratio (1 << @frac_bits is 1.0)
 * @frac_bits: fraction bits of @ratio (32 on AMD, 48 on Intel)
 * @offset: the vCPU's TSC offset, applied after scaling
 *
 * The same computation the CPU does, and kvm_scale_tsc() + offset.
 *
 * Return: the guest TSC, modulo 2^64 like the hardware's.
 */
static inline u64 caretaker_host_to_guest_tsc(u64 host_tsc, u64 ratio,
					      unsigned int frac_bits, u64 offset)
{
	unsigned __int128 p = (unsigned __int128)host_tsc * ratio;

	return (u64)(p >> frac_bits) + offset;
}

/**
 * caretaker_apic_oneshot_count() - physical APIC count for a host deadline
 * @now_tsc: current host TSC
 * @deadline_tsc: host TSC at or after which the interrupt may fire
 * @tsc_to_apic_mult: caretaker_mult_shift(tsc_khz, apic_khz)
 *
 * The physical APIC timer runs with divisor 1.  A deadline already reached
 * yields 1, the shortest count that still fires; a deadline beyond the
 * 32-bit counter's range yields U32_MAX, and the runtime re-arms when that
 * interrupt arrives and the deadline has not been reached.
 *
 * Return: the initial count to program, from 1 to U32_MAX.
 */
static inline u32 caretaker_apic_oneshot_count(u64 now_tsc, u64 deadline_tsc,
					       u64 tsc_to_apic_mult)
{
	u64 ticks;

	if ((s64)(deadline_tsc - now_tsc) <= 0)
		return 1;
	ticks = caretaker_convert_up(deadline_tsc - now_tsc, tsc_to_apic_mult);
	if (ticks > U32_MAX)
		return U32_MAX;
	return ticks ? ticks : 1;
}

/**
 * caretaker_apic_count_to_tsc() - a count of the guest's APIC timer, in host TSC cycles
 * @count: the count
 * @tdcr: the timer's divide configuration register
 * @bus_cycle_ns: the VM's APIC bus cycle
 * @ns_to_tsc: multiplier from caretaker_mult_shift(NSEC_PER_MSEC, tsc_khz)
 *
 * Rounded up, so that a timer armed from it never fires early.
 *
 * Return: TSC cycles.
 */
static inline u64 caretaker_apic_count_to_tsc(u32 count, u32 tdcr, u32 bus_cycle_ns,
					      u64 ns_to_tsc)
{
	u64 ns = caretaker_apic_count_to_ns(count, caretaker_apic_timer_divisor(tdcr),
					    bus_cycle_ns);

	return caretaker_convert_up(ns, ns_to_tsc);
}

/**
 * caretaker_apic_period_tsc() - a periodic timer's period, in host TSC cycles
 * @tmict: the initial count
 * @tdcr: the timer's divide configuration register
 * @bus_cycle_ns: the VM's APIC bus cycle
 * @min_ns: the shortest period KVM allows (min_timer_period_us)
 * @ns_to_tsc: multiplier from caretaker_mult_shift(NSEC_PER_MSEC, tsc_khz)
 *
 * Return: TSC cycles, at least @min_ns worth.
 */
static inline u64 caretaker_apic_period_tsc(u32 tmict, u32 tdcr, u32 bus_cycle_ns, u32 min_ns,
					    u64 ns_to_tsc)
{
	u64 period = caretaker_apic_count_to_tsc(tmict, tdcr, bus_cycle_ns, ns_to_tsc);
	u64 min = caretaker_convert_up(min_ns, ns_to_tsc);

	return period > min ? period : min;
}

/**
 * caretaker_apic_tsc_to_count() - host TSC cycles left, as the timer's current count
 * @left: TSC cycles until the timer expires
 * @tdcr: the timer's divide configuration register
 * @bus_cycle_ns: the VM's APIC bus cycle
 * @tsc_to_ns: multiplier from caretaker_mult_shift(tsc_khz, NSEC_PER_MSEC)
 * @tmict: the initial count, the largest current count there is
 *
 * Return: the current count (TMCCT), at most @tmict.
 */
static inline u32 caretaker_apic_tsc_to_count(u64 left, u32 tdcr, u32 bus_cycle_ns,
					      u64 tsc_to_ns, u32 tmict)
{
	u64 div = (u64)caretaker_apic_timer_divisor(tdcr) * bus_cycle_ns;
	u64 count = caretaker_convert_up(left, tsc_to_ns) / (div ? div : 1);

	return count > tmict ? tmict : count;
}

/**
 * caretaker_tscdl_to_host() - a guest TSC-deadline MSR value as a host TSC deadline
 * @guest: the MSR's value, 0 for none
 * @tsc_offset: guest TSC = host TSC + @tsc_offset
 *
 * Return: the host TSC deadline, never 0 for an armed timer; 0 for none.
 */
static inline u64 caretaker_tscdl_to_host(u64 guest, u64 tsc_offset)
{
	return guest ? (guest - tsc_offset) | 1 : 0;
}

#endif /* __ARCH_X86_KVM_CARETAKER_TIMER_H */
