/*
 * query.c - which flows a request matches, and which of them it gets.
 *
 * A stream whose subject lies in the query's address (and whose peer range
 * lies in the query's peer) matches on every flow, so its flows in a time
 * window are one contiguous run of its sorted chunk, found by binary search
 * and never walked.  Everything else (a query for a peer address, the
 * overlap margin, the live edge where flows are still being exported) is
 * tested flow by flow, but only inside the window.  The cost of a query is
 * therefore bounded by the flows of the streams it can touch in its window.
 *
 * Sampling a saturated answer uses Floyd's algorithm over the virtual
 * concatenation of the matches: O(limit), whatever the number matched.
 *
 * The --foreign fault adds to an answer flows drawn at random from the
 * streams and days around its window, kept only when the query does not
 * select them: a handful of draws, whatever the dataset.
 */
#include "arr.h"
#include "sim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct sim_prefix any_of_family(bool v4)
{
	struct sim_prefix p;

	memset(&p, 0, sizeof(p));
	p.v4 = v4;
	if (v4) {
		p.addr.b[10] = p.addr.b[11] = 0xff;
		p.len = 96;
	}
	return p;
}

bool sim_query_peer_contains(const struct sim_query *q, const struct sim_addr *a)
{
	if (!q->has_peer)
		return false;
	if (sim_prefix_contains(&q->peer, a))
		return true;
	for (int i = 0; i < q->nmore; i++)
		if (sim_prefix_contains(&q->more_peers[i], a))
			return true;
	return false;
}

bool sim_query_match_flow(const struct sim_query *q, const struct sim_flow *f)
{
	bool src_ip = sim_prefix_contains(&q->ip, &f->src);
	bool dst_ip = sim_prefix_contains(&q->ip, &f->dst);

	if (!q->has_peer)
		return src_ip || dst_ip;
	return (src_ip && sim_query_peer_contains(q, &f->dst)) ||
	       (dst_ip && sim_query_peer_contains(q, &f->src));
}

/* Any prefix of the query's peer filter intersects / the one covers pp. */
static bool peer_intersects(const struct sim_query *q, const struct sim_prefix *peer,
			    const struct sim_prefix *pp)
{
	if (sim_prefix_intersects(peer, pp))
		return true;
	for (int i = 0; q->has_peer && i < q->nmore; i++)
		if (sim_prefix_intersects(&q->more_peers[i], pp))
			return true;
	return false;
}

uint64_t sim_chunk_lower(const struct sim_chunk *c, int64_t t)
{
	uint64_t lo = 0, hi = c->n;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (c->start[mid] < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int add_run(struct sim_matches *m, int stream, int day, uint64_t lo,
		   uint64_t hi)
{
	if (lo >= hi)
		return 0;
	if (arr_grow(&m->runs, &m->caprun, m->nruns + 1, sizeof(*m->runs)))
		return -ENOMEM;
	m->runs[m->nruns++] = (struct sim_run){stream, day, lo, hi};
	m->total += hi - lo;
	return 0;
}

static int add_ref(struct sim_matches *m, int stream, int day, uint64_t pos)
{
	if (arr_grow(&m->refs, &m->capref, m->nrefs + 1, sizeof(*m->refs)))
		return -ENOMEM;
	m->refs[m->nrefs++] = (struct sim_ref){stream, day, pos};
	m->total++;
	return 0;
}

/* Is a flow with this id exported by 'visible_before'? */
static bool visible(const struct sim_query *q, uint64_t id, int64_t start)
{
	int64_t lag = q->export_delay_ms > 0 ?
		(int64_t)(sim_mix(id ^ 0x1a9) % (uint64_t)q->export_delay_ms) : 0;
	return start + lag <= q->visible_before;
}

/* Test flows [lo, hi) of a chunk one by one. */
static int scan_range(struct sim_dataset *ds, const struct sim_query *q,
		      struct sim_matches *m, int si, int di,
		      const struct sim_chunk *c, uint64_t lo, uint64_t hi)
{
	struct sim_flow f;

	for (uint64_t i = lo; i < hi; i++) {
		sim_flow_make(ds, si, di, i, c->start[i], &f);
		if (f.start >= q->end)
			break;
		if (q->match == SIM_MATCH_START ? f.start < q->start : f.end < q->start)
			continue;
		if (!visible(q, f.id, f.start) || !sim_query_match_flow(q, &f))
			continue;
		if (add_ref(m, si, di, i))
			return -ENOMEM;
	}
	return 0;
}

int sim_query_collect(struct sim_dataset *ds, const struct sim_query *q,
		      struct sim_matches *m)
{
	struct sim_prefix peer = q->has_peer ? q->peer : any_of_family(q->ip.v4);
	int64_t safe = q->visible_before - q->export_delay_ms;	/* all exported up to here */

	memset(m, 0, sizeof(*m));
	for (int si = 0; si < ds->sc.nstreams; si++) {
		const struct sim_stream *st = &ds->sc.streams[si];
		bool fwd = sim_prefix_intersects(&q->ip, &st->subject) &&
			   peer_intersects(q, &peer, &st->peers);
		bool rev = sim_prefix_intersects(&q->ip, &st->peers) &&
			   peer_intersects(q, &peer, &st->subject);
		bool whole = q->nmore == 0 && sim_prefix_covers(&q->ip, &st->subject) &&
			     sim_prefix_covers(&peer, &st->peers);
		int64_t from = q->start - (q->match == SIM_MATCH_OVERLAP ? st->max_dur_ms : 0);
		int64_t d0, d1;

		if (!fwd && !rev)
			continue;
		d0 = (from - ds->first_day_ms) / SIM_DAY_MS - (from < ds->first_day_ms);
		d1 = (q->end - 1 - ds->first_day_ms) / SIM_DAY_MS;
		if (d0 < 0)
			d0 = 0;
		if (d1 >= ds->ndays)
			d1 = ds->ndays - 1;
		for (int64_t d = d0; d <= d1; d++) {
			const struct sim_chunk *c = sim_dataset_chunk(ds, si, (int)d);
			uint64_t lo_x, lo, hi, v;

			if (!c)
				goto nomem;
			if (c->n == 0)
				continue;
			lo_x = sim_chunk_lower(c, from);
			lo = sim_chunk_lower(c, q->start);
			hi = sim_chunk_lower(c, q->end);
			v = sim_chunk_lower(c, safe + 1);
			if (!whole) {
				if (scan_range(ds, q, m, si, (int)d, c, lo_x, hi))
					goto nomem;
				continue;
			}
			/* overlap margin: flows that began before the window */
			if (scan_range(ds, q, m, si, (int)d, c, lo_x, lo))
				goto nomem;
			if (add_run(m, si, (int)d, lo, hi < v ? hi : v))
				goto nomem;
			/* the live edge: flows that may not be exported yet */
			if (scan_range(ds, q, m, si, (int)d, c, lo > v ? lo : v, hi))
				goto nomem;
		}
	}
	return 0;
nomem:
	sim_matches_free(m);
	return -ENOMEM;
}

void sim_matches_free(struct sim_matches *m)
{
	free(m->runs);
	free(m->refs);
	memset(m, 0, sizeof(*m));
}

struct sim_ref sim_matches_at(const struct sim_matches *m, uint64_t i)
{
	for (size_t r = 0; r < m->nruns; r++) {
		uint64_t n = m->runs[r].hi - m->runs[r].lo;
		if (i < n)
			return (struct sim_ref){m->runs[r].stream, m->runs[r].day,
						m->runs[r].lo + i};
		i -= n;
	}
	return m->refs[i];
}

/* An open-addressing set of indices, for Floyd's sampling. */
struct idxset {
	uint64_t *slot;	/* value + 1; 0 is empty */
	size_t mask;
};

static bool idxset_add(struct idxset *s, uint64_t v)
{
	size_t i = (size_t)sim_mix(v) & s->mask;

	while (s->slot[i]) {
		if (s->slot[i] == v + 1)
			return false;
		i = (i + 1) & s->mask;
	}
	s->slot[i] = v + 1;
	return true;
}

int sim_query_pick(const struct sim_matches *m, uint64_t limit, uint64_t rng,
		   struct sim_ref **out, size_t *nout)
{
	uint64_t n = m->total < limit ? m->total : limit;
	uint64_t *idx = NULL, r = rng | 1;
	struct sim_ref *refs = NULL;
	struct idxset set = {NULL, 0};
	int rc = -ENOMEM;

	idx = malloc((n ? n : 1) * sizeof(*idx));
	refs = malloc((n ? n : 1) * sizeof(*refs));
	if (!idx || !refs)
		goto out;
	if (n == m->total) {
		for (uint64_t i = 0; i < n; i++)
			idx[i] = i;
	} else {
		size_t cap = 16;
		while (cap < 2 * n)
			cap *= 2;
		set.slot = calloc(cap, sizeof(*set.slot));
		if (!set.slot)
			goto out;
		set.mask = cap - 1;
		uint64_t k = 0;
		for (uint64_t j = m->total - n; j < m->total; j++) {
			uint64_t t = sim_rand_below(&r, j + 1);
			idx[k++] = idxset_add(&set, t) ? t : (idxset_add(&set, j), j);
		}
	}
	/* Fisher-Yates: a new order on every answer */
	for (uint64_t i = n; i > 1; i--) {
		uint64_t j = sim_rand_below(&r, i);
		uint64_t t = idx[i - 1];
		idx[i - 1] = idx[j];
		idx[j] = t;
	}
	for (uint64_t i = 0; i < n; i++)
		refs[i] = sim_matches_at(m, idx[i]);
	*out = refs;
	*nout = (size_t)n;
	refs = NULL;
	rc = 0;
out:
	free(idx);
	free(refs);
	free(set.slot);
	return rc;
}

#define FOREIGN_MAX 5		/* foreign flows an answer gets at most */
#define FOREIGN_TRIES 64	/* draws allowed for each foreign flow wanted */

/* The index of the dataset day holding ms t, clamped to the dataset. */
static int64_t day_clamped(const struct sim_dataset *ds, int64_t t)
{
	int64_t d = (t - ds->first_day_ms) / SIM_DAY_MS - (t < ds->first_day_ms);

	return d < 0 ? 0 : d >= ds->ndays ? ds->ndays - 1 : d;
}

/* Is f clearly not part of q's answer: exported, and either its addresses
 * do not match or it lies wholly outside the window (so it is foreign in
 * both match modes)? */
static bool foreign_to(const struct sim_query *q, const struct sim_flow *f)
{
	if (!visible(q, f->id, f->start))
		return false;
	return !sim_query_match_flow(q, f) || f->start >= q->end || f->end < q->start;
}

static bool ref_in(const struct sim_ref *refs, size_t n, const struct sim_ref *r)
{
	for (size_t i = 0; i < n; i++)
		if (refs[i].stream == r->stream && refs[i].day == r->day && refs[i].pos == r->pos)
			return true;
	return false;
}

int sim_query_foreign(struct sim_dataset *ds, const struct sim_query *q, uint64_t limit,
		      uint64_t seed, struct sim_ref **refs, size_t *n)
{
	struct sim_ref got[FOREIGN_MAX], *out;
	uint64_t r = sim_mix(seed) | 1;
	int64_t d0 = day_clamped(ds, q->start - SIM_DAY_MS);
	int64_t d1 = day_clamped(ds, q->end - 1 + SIM_DAY_MS);
	size_t want = 1 + (size_t)sim_rand_below(&r, FOREIGN_MAX), k = 0, keep;

	if (want > limit)
		want = (size_t)limit;
	for (size_t t = 0; ds->sc.nstreams && k < want && t < FOREIGN_TRIES * want; t++) {
		struct sim_ref c = {
			.stream = (int32_t)sim_rand_below(&r, (uint64_t)ds->sc.nstreams),
			.day = (int32_t)(d0 + (int64_t)sim_rand_below(&r, (uint64_t)(d1 - d0 + 1))),
		};
		const struct sim_chunk *ch = sim_dataset_chunk(ds, c.stream, c.day);
		struct sim_flow f;

		if (!ch)
			return -ENOMEM;
		if (!ch->n)
			continue;
		c.pos = sim_rand_below(&r, ch->n);
		sim_flow_make(ds, c.stream, c.day, c.pos, ch->start[c.pos], &f);
		if (foreign_to(q, &f) && !ref_in(got, k, &c))
			got[k++] = c;
	}
	if (!k)
		return 0;
	/* the answer's order is random: leaving out its tail is a random subset */
	keep = *n + k > limit ? (size_t)limit - k : *n;
	out = malloc((keep + k) * sizeof(*out));
	if (!out)
		return -ENOMEM;
	if (keep)
		memcpy(out, *refs, keep * sizeof(*out));
	for (size_t i = 0; i < k; i++) {	/* each at a random place */
		size_t len = keep + i, at = (size_t)sim_rand_below(&r, len + 1);
		out[len] = out[at];
		out[at] = got[i];
	}
	free(*refs);
	*refs = out;
	*n = keep + k;
	return 0;
}
