/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Local APIC interrupt priority logic for the caretaker runtime.
 *
 * Pure and static inline, calling no kernel function, like timer.h: the
 * runtime links against nothing.  The runtime keeps the guest's IRR and
 * ISR as the APIC lays them out, eight 32-bit words of 256 bits, and
 * decides from them, the TPR and the processor priority which vector, if
 * any, the guest can be given next (SDM Vol. 3A 11.8.3.1 and 11.8.4).
 */
#ifndef __ARCH_X86_KVM_CARETAKER_APIC_H
#define __ARCH_X86_KVM_CARETAKER_APIC_H

#include <linux/bitops.h>
#include <linux/types.h>

#define CARETAKER_APIC_WORDS	8	/* 256 vectors, 32 per register */

/**
 * caretaker_apic_set_vector() - mark a vector in an IRR or ISR image
 * @reg: the register image
 * @vec: the vector
 */
static inline void caretaker_apic_set_vector(u32 reg[CARETAKER_APIC_WORDS], u8 vec)
{
	reg[vec >> 5] |= 1U << (vec & 31);
}

/**
 * caretaker_apic_clear_vector() - unmark a vector in an IRR or ISR image
 * @reg: the register image
 * @vec: the vector
 */
static inline void caretaker_apic_clear_vector(u32 reg[CARETAKER_APIC_WORDS], u8 vec)
{
	reg[vec >> 5] &= ~(1U << (vec & 31));
}

/**
 * caretaker_apic_lvt_fire() - an LVT entry's source fires: its vector into IRR
 * @irr: the interrupt request register image
 * @lvt: the LVT entry; nothing if it is masked (bit 16) or its vector illegal
 */
static inline void caretaker_apic_lvt_fire(u32 irr[CARETAKER_APIC_WORDS], u32 lvt)
{
	if (!(lvt & BIT(16)) && (lvt & 0xff) >= 16)
		caretaker_apic_set_vector(irr, lvt & 0xff);
}

/**
 * caretaker_apic_highest_vector() - the highest vector set in a register
 * @reg: an IRR or ISR image
 *
 * Return: the vector, or -1 if none is set.
 */
static inline int caretaker_apic_highest_vector(const u32 reg[CARETAKER_APIC_WORDS])
{
	int i;

	for (i = CARETAKER_APIC_WORDS - 1; i >= 0; i--)
		if (reg[i])
			return i * 32 + fls(reg[i]) - 1;
	return -1;
}

/**
 * caretaker_apic_ppr() - the processor priority
 * @tpr: the task priority register
 * @isrv: the highest vector in service, or -1
 *
 * SDM Vol. 3A 11.8.3.1: the PPR is the TPR if its class (bits 7:4) is at
 * least that of the highest in-service vector, else that vector's class
 * with a zero sub-class.
 *
 * Return: the PPR.
 */
static inline u8 caretaker_apic_ppr(u8 tpr, int isrv)
{
	u8 isr_class = isrv < 0 ? 0 : (isrv & 0xf0);

	return (tpr & 0xf0) >= isr_class ? tpr : isr_class;
}

/**
 * caretaker_apic_next_vector() - the vector the APIC would deliver next
 * @irr: the interrupt request register image
 * @isr: the in-service register image
 * @tpr: the task priority register (CR8 << 4 in 64-bit mode)
 *
 * SDM Vol. 3A 11.8.4: the highest pending vector is delivered only if its
 * priority class is above the processor priority's class.  Whether the
 * guest can take it now (RFLAGS.IF, an interrupt shadow, GIF) is the
 * caller's business.
 *
 * Return: the vector, or -1 if nothing is pending or everything pending is
 * masked by the processor priority.
 */
static inline int caretaker_apic_next_vector(const u32 irr[CARETAKER_APIC_WORDS],
					     const u32 isr[CARETAKER_APIC_WORDS],
					     u8 tpr)
{
	int irrv = caretaker_apic_highest_vector(irr);
	u8 ppr = caretaker_apic_ppr(tpr, caretaker_apic_highest_vector(isr));

	if (irrv < 0 || (irrv & 0xf0) <= (ppr & 0xf0))
		return -1;
	return irrv;
}

#endif /* __ARCH_X86_KVM_CARETAKER_APIC_H */
