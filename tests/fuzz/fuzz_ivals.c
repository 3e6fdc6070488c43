/*
 * fuzz_ivals.c - libFuzzer target: interval sets (cache/ivals.c) against a
 * model.
 *
 * The input is a program of 3-byte steps (operation, a, b).  Endpoints are
 * the bytes a and b mapped onto int64 by a strictly increasing table that
 * reaches INT64_MIN and INT64_MAX at its ends, so overflow at the extremes
 * is exercised while a 255-cell bitmap models the set exactly: cell k is
 * [v(k), v(k+1)).
 *
 * Properties checked after every step:
 *   - the set is normalised: sorted, no empty interval, no two touching or
 *     overlapping, n <= cap;
 *   - it is exactly the model's union (adding [a, b) sets cells a..b-1;
 *     a > b is EINVAL and changes nothing);
 *   - cache_ivals_subtract gives exactly the model's uncovered runs of
 *     [a, b), as maximal intervals, in order.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "fuzzutil.h"

#define NCELLS 255

/* Strictly increasing: INT64_MIN, INT64_MIN + 1, then around 0 in ms,
 * then INT64_MAX - 1, INT64_MAX. */
static int64_t v(unsigned k)
{
	if (k == 0)
		return INT64_MIN;
	if (k == 1)
		return INT64_MIN + 1;
	if (k == 254)
		return INT64_MAX - 1;
	if (k == 255)
		return INT64_MAX;
	return ((int64_t)k - 128) * 3600000;
}

static unsigned cell_of(int64_t x)
{
	for (unsigned k = 0; k <= NCELLS; k++)
		if (v(k) == x)
			return k;
	FUZZ_CHECK(0, "endpoint %lld is not one that was added", (long long)x);
	return 0;
}

/* Maximal runs of cells equal to 'want' within [a, b), against s. */
static void check_runs(const bool *cells, bool want, unsigned a, unsigned b,
		       const struct cache_ivals *s, const char *what)
{
	size_t i = 0;

	for (unsigned k = a; k < b;) {
		if (cells[k] != want) {
			k++;
			continue;
		}
		unsigned e = k;
		while (e < b && cells[e] == want)
			e++;
		FUZZ_CHECK(i < s->n, "%s: run [%u, %u) missing", what, k, e);
		FUZZ_CHECK(s->v[i].start == v(k) && s->v[i].end == v(e),
			   "%s: interval %zu is [%u, %u), the model says [%u, %u)", what, i,
			   cell_of(s->v[i].start), cell_of(s->v[i].end), k, e);
		i++;
		k = e;
	}
	FUZZ_CHECK(i == s->n, "%s: %zu intervals, the model has %zu", what, s->n, i);
}

static void check_normal(const struct cache_ivals *s)
{
	FUZZ_CHECK(s->n <= s->cap, "n %zu > cap %zu", s->n, s->cap);
	for (size_t i = 0; i < s->n; i++) {
		FUZZ_CHECK(s->v[i].start < s->v[i].end, "interval %zu empty or reversed", i);
		if (i > 0)
			FUZZ_CHECK(s->v[i - 1].end < s->v[i].start, "intervals %zu and %zu touch", i - 1, i);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cache_ivals s = {0}, out = {0};
	bool cells[NCELLS] = {0};

	for (size_t p = 0; p + 3 <= size && p < 3 * 128; p += 3) {
		unsigned op = data[p] % 4, a = data[p + 1], b = data[p + 2];
		int rc;

		switch (op) {
		case 0:
		case 1:	/* add */
			rc = cache_ivals_add(&s, v(a), v(b));
			if (a > b) {
				FUZZ_CHECK(rc == -EINVAL, "add [%u, %u) gave %d", a, b, rc);
			} else {
				FUZZ_CHECK(rc == 0, "add [%u, %u) gave %d", a, b, rc);
				for (unsigned k = a; k < b; k++)
					cells[k] = true;
			}
			break;
		case 2:	/* subtract */
			rc = cache_ivals_subtract(&s, v(a), v(b), &out);
			if (a > b) {
				FUZZ_CHECK(rc == -EINVAL, "subtract [%u, %u) gave %d", a, b, rc);
				break;
			}
			FUZZ_CHECK(rc == 0, "subtract [%u, %u) gave %d", a, b, rc);
			check_normal(&out);
			check_runs(cells, false, a, b, &out, "missing");
			break;
		case 3:	/* drop everything, keep going on the emptied set */
			cache_ivals_free(&s);
			memset(cells, 0, sizeof(cells));
			break;
		}
		check_normal(&s);
		check_runs(cells, true, 0, NCELLS, &s, "set");
	}
	cache_ivals_free(&s);
	cache_ivals_free(&out);
	return 0;
}
