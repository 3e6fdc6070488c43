/*
 * ivals.c - sets of half-open millisecond intervals.
 *
 * A set is kept normalised at all times: sorted by start, no two intervals
 * overlapping or touching ([0,5) and [5,9) are one interval [0,9)), none
 * empty.  cache_missing() builds one from coverage rows and subtracts it from
 * a query's range; the engine uses the same arithmetic to plan.  Sets are
 * small (a few hundred windows a day at most), so insertion finds its place
 * by binary search and shifts the tail: simple and O(n) a call.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arr.h"
#include "cache_i.h"

/* Room for one more interval; -ENOMEM leaves s as it was. */
static int ivals_grow(struct cache_ivals *s, size_t need)
{
	return arr_grow(&s->v, &s->cap, need, sizeof(*s->v));
}

/*
 * Add [start, end) and keep the set normalised.  An empty interval
 * (start == end) changes nothing; start > end is -EINVAL; -ENOMEM when the
 * array cannot grow.  On error the set is unchanged.
 */
int cache_ivals_add(struct cache_ivals *s, int64_t start, int64_t end)
{
	size_t lo = 0, hi = s->n, first, last;
	int rc;

	if (start > end)
		return -EINVAL;
	if (start == end)
		return 0;
	/* first: the first interval that ends at or after start (touching merges) */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->v[mid].end < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	first = lo;
	/* last: one past the last interval that starts at or before end */
	last = first;
	while (last < s->n && s->v[last].start <= end)
		last++;
	if (first == last) {
		rc = ivals_grow(s, s->n + 1);
		if (rc)
			return rc;
		memmove(s->v + first + 1, s->v + first, (s->n - first) * sizeof(*s->v));
		s->v[first].start = start;
		s->v[first].end = end;
		s->n++;
		return 0;
	}
	if (s->v[first].start < start)
		start = s->v[first].start;
	if (s->v[last - 1].end > end)
		end = s->v[last - 1].end;
	s->v[first].start = start;
	s->v[first].end = end;
	memmove(s->v + first + 1, s->v + last, (s->n - last) * sizeof(*s->v));
	s->n -= last - first - 1;
	return 0;
}

/*
 * out = [start, end) minus the union of s.  s must be normalised (as
 * cache_ivals_add leaves it); out is reset first and must not be s.
 * -EINVAL for start > end, -ENOMEM (out then holds a prefix of the answer).
 */
int cache_ivals_subtract(const struct cache_ivals *s, int64_t start, int64_t end,
			 struct cache_ivals *out)
{
	int64_t at = start;
	int rc;

	if (start > end || out == s)
		return -EINVAL;
	out->n = 0;
	for (size_t i = 0; i < s->n && at < end; i++) {
		const struct cache_ival *v = &s->v[i];
		if (v->end <= at)
			continue;
		if (v->start >= end)
			break;
		if (v->start > at) {
			rc = ivals_grow(out, out->n + 1);
			if (rc)
				return rc;
			out->v[out->n].start = at;
			out->v[out->n].end = v->start;
			out->n++;
		}
		at = v->end;
	}
	if (at < end) {
		rc = ivals_grow(out, out->n + 1);
		if (rc)
			return rc;
		out->v[out->n].start = at;
		out->v[out->n].end = end;
		out->n++;
	}
	return 0;
}

/* Free the array and leave an empty, reusable set; NULL is a no-op. */
void cache_ivals_free(struct cache_ivals *s)
{
	if (!s)
		return;
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}
