/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Four-level page tables the caretaker builds for itself: the runtime's
 * own address space and the guest's nested page table.
 */
#ifndef __CARETAKER_PGTABLE_H
#define __CARETAKER_PGTABLE_H

#include <linux/list.h>
#include <linux/types.h>

/* Entry bits, the same for host and nested (AMD NPT) tables. */
#define CT_PTE_P	BIT_ULL(0)
#define CT_PTE_RW	BIT_ULL(1)
#define CT_PTE_US	BIT_ULL(2)
#define CT_PTE_PWT	BIT_ULL(3)
#define CT_PTE_PCD	BIT_ULL(4)
#define CT_PTE_A	BIT_ULL(5)
#define CT_PTE_D	BIT_ULL(6)
#define CT_PTE_NX	BIT_ULL(63)
#define CT_PTE_ADDR	GENMASK_ULL(51, 12)

/**
 * struct ct_pgtable - a four-level page table and the pages it is made of
 * @root: the top-level table
 * @pages: every table page, @root included (page->lru)
 * @nr_pages: length of @pages
 * @table_flags: bits of non-leaf entries
 */
struct ct_pgtable {
	u64 *root;
	struct list_head pages;
	unsigned long nr_pages;
	u64 table_flags;
};

int ct_pgtable_init(struct ct_pgtable *pt, u64 table_flags);
void ct_pgtable_destroy(struct ct_pgtable *pt);
int ct_pgtable_map(struct ct_pgtable *pt, u64 va, phys_addr_t pa, u64 leaf_flags);
u64 *ct_pgtable_top_entry(struct ct_pgtable *pt, unsigned int slot);
phys_addr_t ct_pgtable_root_pa(struct ct_pgtable *pt);

#endif /* __CARETAKER_PGTABLE_H */
