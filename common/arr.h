/*
 * arr.h - the one growable array of the tree: make room for at least
 * 'need' elements of 'size' bytes in *v, whose room is *cap elements,
 * doubling (from ARR_MIN) so that n appends cost O(n) copies.
 *
 *	if (arr_grow(&v, &cap, n + 1, sizeof(*v)))
 *		return -ENOMEM;
 *	v[n++] = x;
 *
 * Returns 0 with *cap >= need (v moved by realloc, or untouched when the
 * room was there), or -ENOMEM with v and *cap as they were: out of
 * memory, or a room of need x size bytes that size_t cannot count (an
 * overflow is refused, never wrapped).  Header only: every room uses it.
 */
#ifndef FLOWFS_ARR_H
#define FLOWFS_ARR_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARR_MIN 16

/* vp: the address of the array's pointer (any T **). */
static inline int arr_grow(void *vp, size_t *cap, size_t need, size_t size)
{
	void *v, *nv;
	size_t nc = *cap ? *cap : ARR_MIN;

	if (need <= *cap)
		return 0;
	if (size == 0)
		return -ENOMEM;
	while (nc < need) {
		if (nc > SIZE_MAX / 2)
			return -ENOMEM;
		nc *= 2;
	}
	if (nc > SIZE_MAX / size)
		return -ENOMEM;
	memcpy(&v, vp, sizeof(v));
	nv = realloc(v, nc * size);
	if (!nv)
		return -ENOMEM;
	memcpy(vp, &nv, sizeof(nv));
	*cap = nc;
	return 0;
}

#endif
