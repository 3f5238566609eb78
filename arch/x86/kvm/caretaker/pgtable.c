// SPDX-License-Identifier: GPL-2.0-only
/*
 * Four-level page tables for the caretaker runtime and its guest.
 *
 * Built once, at PREPARE, from pages the caretaker owns, and only read
 * by the hardware afterwards: no locking, no freeing of single levels.
 */
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/mm.h>

#include "pgtable.h"

static u64 *ct_pgtable_alloc(struct ct_pgtable *pt)
{
	/* Unmovable: the runtime uses these pages through their address. */
	struct page *page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);

	if (!page)
		return NULL;
	list_add_tail(&page->lru, &pt->pages);
	pt->nr_pages++;
	return page_address(page);
}

/**
 * ct_pgtable_init() - start an empty page table
 * @pt: the table
 * @table_flags: bits of its non-leaf entries (CT_PTE_*, CT_PTE_P implied)
 *
 * Context: process context, may sleep.
 * Return: 0 or -ENOMEM.
 */
int ct_pgtable_init(struct ct_pgtable *pt, u64 table_flags)
{
	INIT_LIST_HEAD(&pt->pages);
	pt->nr_pages = 0;
	pt->table_flags = table_flags | CT_PTE_P;
	pt->root = ct_pgtable_alloc(pt);
	return pt->root ? 0 : -ENOMEM;
}

/**
 * ct_pgtable_destroy() - free every page of a table
 * @pt: the table; the hardware must not use it any more
 *
 * Context: any context that may free pages.
 */
void ct_pgtable_destroy(struct ct_pgtable *pt)
{
	struct page *page, *tmp;

	list_for_each_entry_safe(page, tmp, &pt->pages, lru) {
		list_del(&page->lru);
		__free_page(page);
	}
	pt->nr_pages = 0;
	pt->root = NULL;
}

/**
 * ct_pgtable_root_pa() - physical address of the top level
 * @pt: the table
 *
 * Return: the value for CR3 or the VMCB's nCR3.
 */
phys_addr_t ct_pgtable_root_pa(struct ct_pgtable *pt)
{
	return virt_to_phys(pt->root);
}

/**
 * ct_pgtable_top_entry() - an entry of the top level
 * @pt: the table
 * @slot: 0-511
 *
 * Return: a pointer to the entry, to copy or fill whole.
 */
u64 *ct_pgtable_top_entry(struct ct_pgtable *pt, unsigned int slot)
{
	return &pt->root[slot & 511];
}

/**
 * ct_pgtable_map() - map one 4 KiB page
 * @pt: the table
 * @va: virtual (or guest-physical) address, page aligned, canonical
 * @pa: physical address, page aligned
 * @leaf_flags: bits of the leaf entry (CT_PTE_*, CT_PTE_P implied)
 *
 * Context: process context, may sleep.
 * Return: 0, -ENOMEM, or -EEXIST if @va is mapped already.
 */
int ct_pgtable_map(struct ct_pgtable *pt, u64 va, phys_addr_t pa, u64 leaf_flags)
{
	u64 *table = pt->root;
	int shift;

	for (shift = 39; shift > 12; shift -= 9) {
		u64 *e = &table[(va >> shift) & 511];

		if (!(*e & CT_PTE_P)) {
			u64 *next = ct_pgtable_alloc(pt);

			if (!next)
				return -ENOMEM;
			*e = virt_to_phys(next) | pt->table_flags;
		}
		table = phys_to_virt(*e & CT_PTE_ADDR);
	}
	table = &table[(va >> 12) & 511];
	if (*table & CT_PTE_P)
		return -EEXIST;
	*table = (pa & CT_PTE_ADDR) | leaf_flags | CT_PTE_P;
	return 0;
}
