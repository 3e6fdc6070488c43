/*
 * plan.c - the window planner: which windows to ask for, and how to split
 * the ones whose answers come back full.
 *
 * A full (saturated) answer is a sample of its window.  Halving windows
 * was measured to cost 4.4 times the lower bound of requests
 * (docs/design.md, "The planner"), so this planner uses the sample instead:
 *
 *  - Size.  A sample tells where the flows are but not how many there are.
 *    The first part of a split (the "measuring child", a sixteenth of
 *    the sample) is asked alone; when it comes back complete with n records
 *    while holding a share f of the sample, the parent held about n / f.
 *    Only then is the rest planned, all of it at once, so the requests in
 *    flight stay busy.  A measuring child that is itself full measures in
 *    turn, so a window of N flows costs about log16(N / cap) extra requests
 *    before its size is known.
 *  - Shape.  A window of known size is cut at its sample's quantiles into
 *    leaves of about fill * cap flows (greedy over the sorted start times,
 *    one millisecond slot at a time, so a slot denser than a leaf is
 *    isolated on its own).  When the sample is too thin to place leaf
 *    boundaries well (fewer than MIN_LEAF_POINTS sample points a leaf, or
 *    a twentieth of the cap when that is less), it is cut into intermediate
 *    parts instead, as large as their own samples can still place leaves in
 *    (up to INTERMEDIATE_CAPS * cap flows): they come back full, and their
 *    denser samples place the leaves.
 *  - Head room.  A leaf's count is off by its parent's size error and by
 *    the noise of its own share of the sample; leaves are aimed LEAF_Z
 *    standard deviations under the cap (fill * cap at the most), so a thin
 *    sample (a small cap) gets smaller leaves instead of many full ones.
 *  - Correction.  The size error is shared by all the leaves of a window,
 *    so the leaves' answers measure it: as they come back, the leaves not
 *    yet handed out are planned again at the corrected size (rescale).
 *    Without this, a size measured 10 % low made most leaves come back
 *    full, and the request count of a day had a long tail (up to 2.7 times
 *    the lower bound at a cap of 2,000, against 1.9 now).
 *  - Peers.  A full window at the driver's granularity is split by the peer
 *    prefix, along a binary trie of the sample's peer addresses, down to
 *    prefixes expected to hold fill * cap flows: the prefixes the burst comes
 *    from are reached directly, not one bit at a time.  A slot that a sized
 *    parent's sample already shows to hold more than a leaf is split by peer
 *    when it is planned, without first being asked whole (unless the driver
 *    splits a slot itself first: FETCH_SPLIT_PEER_LAST).  A driver that
 *    takes a list of peer prefixes (FETCH_SPLIT_PEER_SET) gets the light
 *    parts grouped into one request.  At a single address the window is
 *    a gap.
 *
 * Every window is asked once; a window's coverage is reported only when its
 * own answer was complete (a leaf), or when all its peer parts were.  The
 * planner does no I/O and keeps no clock: plan_next, plan_answer and the
 * events they return are the whole protocol.
 */
#include "arr.h"
#include "fetch.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MEASURE_SHARE 0.0625
#define MIN_LEAF_POINTS 300.0	/* at the most; fewer for a small cap */
#define INTERMEDIATE_CAPS 20.0	/* at the most */
#define LEAF_Z 2.0		/* a leaf's head room, in standard deviations */
#define REGROWN_RSD 0.15	/* a leaf that came back full: size barely known */
#define MAX_RESCALES 8		/* re-plans of one node's unsent children */
#define RESCALE_MIN 0.02	/* re-plan when the size is off by this much */
#define FILL_DEFAULT 0.9	/* plan_cfg.fill when it is not in (0.1, 1] */
#define PRIOR_FILL 0.92		/* fill's share for a plan from another day's flows
				 * (days differ by some percent) */
#define MIN_LEAF_POINTS_LOW 50.0	/* a leaf's sample points at the least, */
#define MIN_LEAF_CAP_SHARE 20.0		/* else a cap / this, up to MIN_LEAF_POINTS */
#define INTERMEDIATE_FILL 0.66	/* an intermediate part is aimed at this share of
				 * what its sample can place leaves in */
#define INTERMEDIATE_MIN_CAPS 2.0	/* an intermediate part holds this many caps at least */
#define LEAF_MIN_CAPS 0.5	/* a leaf is aimed at this share of the cap at least */
#define GUESS_CAPS 2.0		/* a full window with no estimate: this many caps */
#define SAMPLED_ROOM 1.05	/* head room on an estimate from a sample (good to a
				 * few percent) */
#define NEAR_CAP_ROOM 1.1	/* on an estimate between one and GUESS_CAPS caps */
#define UNDER_CAP_ROOM 1.3	/* a full window estimated under the cap: this many
				 * caps (the estimate was wrong by an unknown amount) */

enum node_kind { N_TIME, N_PEER };
enum node_state { S_QUEUED, S_SENT, S_SPLIT, S_DONE, S_DROPPED };

struct node {
	uint64_t id;
	int64_t s, e;
	struct cache_prefix peer;
	bool has_peer;
	enum node_kind kind;
	enum node_state state;
	struct node *parent;
	double est;		/* expected flows when planned; < 0 unknown */
	double rsd;		/* est's relative standard deviation */
	double pts;		/* sample points est was drawn from */
	double known;		/* size once learned (exact or measured); < 0 unknown */
	uint32_t pending;	/* children not done */
	double kids_known;	/* the sizes of the children done (a full one: the cap) */
	bool gap;		/* a gap somewhere below: no coverage here */
	bool peer_split;	/* split by peer, not by time */
	bool is_measure;	/* its parent waits for its size */
	bool measuring;		/* waits for its measuring child */
	double meas_share;
	int64_t rest_from;
	int64_t *sample;	/* sorted starts in [s, e), kept while measuring */
	uint8_t (*sample_peers)[16];	/* their peers, in the same order */
	size_t nsample;		/* ... and while children are unsent (rescale) */
	uint32_t unsent;	/* children queued, not yet handed out */
	/* Rescaling: the children planned by the last plan_range over this
	 * node (ids [kid_lo, kid_hi), generation gen) and what their answers
	 * showed against their estimates. */
	uint64_t kid_lo, kid_hi;
	uint32_t gen, rescales;
	double trsd;		/* the planned size's relative standard deviation */
	double obs, exp, obs_pts;
	bool censored;		/* a reading was a full answer */
	struct cache_prefix *set;	/* a peer set (FETCH_SPLIT_PEER_SET), or NULL */
	size_t nset;
};

struct plan {
	struct plan_cfg cfg;
	struct node **nodes;	/* by id */
	size_t nnodes, capnodes;
	uint64_t *queue;	/* ids to send, FIFO */
	size_t qhead, qtail, qcap;
	struct plan_stats st;
	int max_len;		/* longest peer prefix (128 on the 16-byte form) */
	/* events collected during one call */
	struct plan_ev *ev;
	size_t nev, capev;
	bool oom;
};

const uint8_t *plan_peer_of(const struct cache_prefix *subject, const uint8_t src[16],
			    const uint8_t dst[16])
{
	return cache_prefix_contains(subject, src) ? dst : src;
}

static struct node *node_new(struct plan *p, struct node *parent, enum node_kind kind,
			     int64_t s, int64_t e, double est)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n)
		goto oom;
	if (arr_grow(&p->nodes, &p->capnodes, p->nnodes + 1, sizeof(*p->nodes)))
		goto oom;
	if (p->qtail == p->qcap) {
		if (p->qhead > 0) {
			memmove(p->queue, p->queue + p->qhead, (p->qtail - p->qhead) * sizeof(*p->queue));
			p->qtail -= p->qhead;
			p->qhead = 0;
		}
		if (arr_grow(&p->queue, &p->qcap, p->qtail + 1, sizeof(*p->queue)))
			goto oom;
	}
	n->id = p->nnodes;
	n->s = s;
	n->e = e;
	n->kind = kind;
	n->parent = parent;
	n->est = est;
	n->known = -1;
	if (parent) {
		n->peer = parent->peer;
		n->has_peer = parent->has_peer;
		n->gen = parent->gen;
		parent->pending++;
		parent->unsent++;
	} else {
		n->peer = p->cfg.peer;
		n->has_peer = p->cfg.has_peer;
	}
	p->nodes[p->nnodes++] = n;
	p->queue[p->qtail++] = n->id;
	p->st.planned++;
	return n;
oom:
	free(n);
	p->oom = true;
	return NULL;
}

static void emit(struct plan *p, enum plan_ev_kind kind, const struct node *n,
		 int64_t records, int64_t seen)
{
	if (arr_grow(&p->ev, &p->capev, p->nev + 1, sizeof(*p->ev))) {
		p->oom = true;
		return;
	}
	p->ev[p->nev++] = (struct plan_ev){kind, n->s, n->e, n->peer, records, seen};
}

static void plan_range(struct plan *p, struct node *n, int64_t from, int64_t to,
		       double total, double rsd, const int64_t *pts, const uint8_t (*peers)[16],
		       size_t npts);
static void sample_range(const int64_t *pts, size_t n, int64_t s, int64_t e, size_t *lo,
			 size_t *hi);

/* Plan [s, e) from another day's flows: as many as that day had, placed
 * where they were, with more head room than a sample of this window gets
 * (days differ by some percent). */
static void plan_from_prior(struct plan *p, int64_t s, int64_t e)
{
	size_t lo, hi;
	double fill = p->cfg.fill;

	sample_range(p->cfg.prior, p->cfg.nprior, s, e, &lo, &hi);
	if (hi == lo) {
		node_new(p, NULL, N_TIME, s, e, -1);
		return;
	}
	p->cfg.fill = fill * PRIOR_FILL;
	plan_range(p, NULL, s, e, (double)(hi - lo), 0, p->cfg.prior + lo, NULL, hi - lo);
	p->cfg.fill = fill;
}

int plan_new(const struct plan_cfg *cfg, const struct cache_ivals *missing,
	     struct plan **out)
{
	struct plan *p;

	if (cfg->cap < 2 || cfg->granularity_ms < 1 || cfg->max_window_ms < cfg->granularity_ms)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cfg = *cfg;
	if (!(p->cfg.fill > 0.1 && p->cfg.fill <= 1.0))
		p->cfg.fill = FILL_DEFAULT;
	p->max_len = 128;
	for (size_t i = 0; i < missing->n; i++) {
		int64_t s = missing->v[i].start, e = missing->v[i].end;
		while (s < e) {
			int64_t to = e - s > cfg->max_window_ms ? s + cfg->max_window_ms : e;
			if (cfg->prior)
				plan_from_prior(p, s, to);
			else
				node_new(p, NULL, N_TIME, s, to, -1);
			s = to;
		}
	}
	p->cfg.prior = NULL;	/* the caller's, used only here */
	p->cfg.nprior = 0;
	if (p->oom) {
		plan_free(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

void plan_free(struct plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nnodes; i++) {
		free(p->nodes[i]->sample);
		free(p->nodes[i]->sample_peers);
		free(p->nodes[i]->set);
		free(p->nodes[i]);
	}
	free(p->nodes);
	free(p->queue);
	free(p->ev);
	free(p);
}

/* Free n's sample once nothing needs it any more: its size is measured
 * and its children are all handed out (none can be re-planned). */
static void keep_sample(struct node *n)
{
	if (n->measuring || n->unsent > 0)
		return;
	free(n->sample);
	free(n->sample_peers);
	n->sample = NULL;
	n->sample_peers = NULL;
	n->nsample = 0;
}

int plan_next(struct plan *p, struct plan_req *req)
{
	struct node *n;

	if (p->qhead == p->qtail)
		return -EAGAIN;
	n = p->nodes[p->queue[p->qhead++]];
	n->state = S_SENT;
	if (n->parent && --n->parent->unsent == 0)
		keep_sample(n->parent);
	p->st.requests++;
	p->st.outstanding++;
	req->id = n->id;
	req->start = n->s;
	req->end = n->e;
	req->peer = n->peer;
	req->has_peer = n->has_peer;
	req->peer_set = n->set;
	req->npeer_set = n->nset;
	return 0;
}

bool plan_done(const struct plan *p)
{
	return p->qhead == p->qtail && p->st.outstanding == 0;
}

void plan_get_stats(const struct plan *p, struct plan_stats *st)
{
	*st = p->st;
}

static int64_t floor_g(const struct plan *p, int64_t t)
{
	int64_t g = p->cfg.granularity_ms;
	return t - ((t % g) + g) % g;
}

/* A planned part of a range: [s, e) holding cnt sample points. */
struct part {
	int64_t s, e;
	size_t cnt;
};

/*
 * Cut [from, to) into parts of at most 'target' sample points, greedily
 * over the sorted sample, one granularity slot at a time; a slot with more
 * than 'target' points becomes a part of its own.  *out is malloc'd.
 */
static int split_points(const struct plan *p, const int64_t *pts, size_t n, int64_t from,
			int64_t to, double target, struct part **out, size_t *nout)
{
	int64_t g = p->cfg.granularity_ms, cur = from;
	size_t cap = 0, np = 0, cnt = 0;
	struct part *v = NULL;

	if (arr_grow(&v, &cap, 3, sizeof(*v)))
		return -ENOMEM;
	for (size_t i = 0; i < n;) {
		int64_t t = floor_g(p, pts[i]), te = t + g;
		size_t j = i;
		while (j < n && floor_g(p, pts[j]) == t)
			j++;
		size_t group = j - i;
		if (arr_grow(&v, &cap, np + 3, sizeof(*v))) {
			free(v);
			return -ENOMEM;
		}
		/* a slot begun before the range (from off the granularity, or
		 * points before it: flows that overlap it) counts from 'cur' on:
		 * no part reaches before 'from' */
		if (t < cur)
			t = cur;
		if (te > to)
			te = to;
		if (te <= t) {		/* the slot ended before 'cur': its points count in */
			cnt += group;
			i = j;
			continue;
		}
		if (cnt > 0 && (double)(cnt + group) > target && t > cur) {
			v[np++] = (struct part){cur, t, cnt};
			cur = t;
			cnt = 0;
		}
		if ((double)group > target) {
			/* a slot denser than a part: on its own */
			if (t > cur)
				v[np++] = (struct part){cur, t, cnt};
			if (te < to) {
				v[np++] = (struct part){t, te, group};
				cur = te;
				cnt = 0;
			} else {
				cur = t;
				cnt = group;
			}
		} else {
			cnt += group;
		}
		i = j;
	}
	if (cur < to)
		v[np++] = (struct part){cur, to, cnt};
	else if (np > 0)
		v[np - 1].cnt += cnt;
	*out = v;
	*nout = np;
	return 0;
}

/* Points of a sorted sample inside [s, e). */
static void sample_range(const int64_t *pts, size_t n, int64_t s, int64_t e, size_t *lo,
			 size_t *hi)
{
	size_t a = 0, b = n;
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if (pts[m] < s)
			a = m + 1;
		else
			b = m;
	}
	*lo = a;
	b = n;
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if (pts[m] < e)
			a = m + 1;
		else
			b = m;
	}
	*hi = a;
}

static void peer_trie(struct plan *p, struct node *n, struct cache_prefix pre,
		      uint8_t (*pts)[16], size_t lo, size_t hi, size_t m, double total);
static int cmp_addr(const void *a, const void *b);

/*
 * A part of one granularity slot expected to hold more than a leaf: asked
 * whole it could only come back full, so it is split by peer at once along
 * the trie of its sample points' peers (a flood of 15,000 flows in one
 * millisecond saves the request that would show it is full).  false when
 * that is not possible (no peers, no peer dimension): plan it as a leaf.
 */
static bool plan_slot_by_peer(struct plan *p, struct node *n, int64_t s, int64_t e, double est,
			      const uint8_t (*peers)[16], size_t npts)
{
	if (!peers || npts < 8 || !(p->cfg.split_dims & FETCH_SPLIT_PEER) ||
	    (p->cfg.split_dims & FETCH_SPLIT_PEER_LAST))
		return false;
	struct node *c = node_new(p, n, N_TIME, s, e, est);
	uint8_t (*v)[16] = malloc(npts * 16);
	if (!c || !v) {
		free(v);
		p->oom = true;
		return true;
	}
	/* not asked itself: only its peer parts are */
	p->qtail--;
	p->st.planned--;
	if (n)
		n->unsent--;
	c->state = S_SPLIT;
	c->peer_split = true;
	p->st.peer_splits++;
	memcpy(v, peers, npts * 16);
	qsort(v, npts, 16, cmp_addr);
	peer_trie(p, c, c->peer, v, 0, npts, npts, est * SAMPLED_ROOM);
	free(v);
	return true;
}

/*
 * The flows to aim a leaf at, for a range of about 'total' flows (known to
 * a relative standard deviation rsd) whose sample has npts points there.
 * A leaf's count is off by the total's error and by its own share of the
 * sample (1 / sqrt(points in the leaf)); the leaf is made small enough to
 * stay under the cap by LEAF_Z standard deviations, and never larger than
 * fill * cap.  A leaf that overflows costs two requests (its own and one
 * more part), a smaller leaf costs a fraction of one: with a thin sample
 * (a small cap) head room is the cheaper side.
 */
static double leaf_size(const struct plan *p, double total, double rsd, size_t npts)
{
	double cap = p->cfg.cap, leaf = p->cfg.fill * cap;

	if (npts == 0 || total <= 0)
		return leaf;
	for (int i = 0; i < 3; i++) {
		double k = (double)npts * leaf / total;	/* sample points a leaf holds */
		double sd = sqrt(rsd * rsd + (k > 1 ? 1.0 / k : 1.0));
		double l = cap / (1 + LEAF_Z * sd);
		leaf = l < p->cfg.fill * cap ? l : p->cfg.fill * cap;
	}
	return leaf < LEAF_MIN_CAPS * cap ? LEAF_MIN_CAPS * cap : leaf;
}

static struct node *node_est(struct plan *p, struct node *n, int64_t s, int64_t e, double est,
			     double rsd, double pts)
{
	struct node *c = node_new(p, n, N_TIME, s, e, est);
	if (c) {
		c->rsd = rsd;
		c->pts = pts;
	}
	return c;
}

/* [from, to) of node n cut into even slices of about a leaf each, at
 * least 'min' of them (fewer when the granularity allows no more), cut
 * on granularity boundaries (but at from and to). */
static void even_slices(struct plan *p, struct node *n, int64_t from, int64_t to, double total,
			double leaf, double rsd, int64_t min)
{
	int64_t k = (int64_t)ceil(total / leaf);

	if (k < min)
		k = min;
	int64_t g = p->cfg.granularity_ms, step = (to - from + k - 1) / k;
	/* whole granularity slots: a cut inside one would have two windows
	 * read it (Flowmon's 5-minute files) */
	step = (step + g - 1) / g * g;
	for (int64_t s = from, e; s < to; s = e) {
		e = floor_g(p, s + step);	/* > s: step is a slot or more */
		if (e > to)
			e = to;
		node_est(p, n, s, e, total * (double)(e - s) / (double)(to - from), rsd, 0);
	}
}

/* Plan [from, to) of node n, of about 'total' flows (relative standard
 * deviation rsd), with the sample points that fall into it (and their
 * peers, when known), as leaves or intermediate parts. */
static void plan_range(struct plan *p, struct node *n, int64_t from, int64_t to,
		       double total, double rsd, const int64_t *pts, const uint8_t (*peers)[16],
		       size_t npts)
{
	double leaf = leaf_size(p, total, rsd, npts);
	struct part *parts = NULL;
	size_t nparts = 0;

	if (from >= to)
		return;
	if (total <= leaf || to - from <= p->cfg.granularity_ms) {
		if (total <= leaf || !plan_slot_by_peer(p, n, from, to, total, peers, npts))
			node_est(p, n, from, to, total, rsd, (double)npts);
		return;
	}
	if (npts == 0) {
		/* nothing sampled here: even slices */
		even_slices(p, n, from, to, total, leaf, rsd, 1);
		return;
	}
	double cap = p->cfg.cap;
	double min_pts = cap / MIN_LEAF_CAP_SHARE;
	if (min_pts < MIN_LEAF_POINTS_LOW)
		min_pts = MIN_LEAF_POINTS_LOW;
	else if (min_pts > MIN_LEAF_POINTS)
		min_pts = MIN_LEAF_POINTS;
	double per_leaf_pts = (double)npts * leaf / total;
	/* an intermediate part whose full answer still places leaves well */
	double inter = INTERMEDIATE_FILL * leaf * cap / min_pts;
	if (inter > INTERMEDIATE_CAPS * cap)
		inter = INTERMEDIATE_CAPS * cap;
	if (inter < INTERMEDIATE_MIN_CAPS * cap)
		inter = INTERMEDIATE_MIN_CAPS * cap;
	double part_flows = per_leaf_pts >= min_pts || inter * 2 > total ? leaf : inter;

	double target = (double)npts * part_flows / total;
	if (target < 1)
		target = 1;
	if (split_points(p, pts, npts, from, to, target, &parts, &nparts)) {
		p->oom = true;
		return;
	}
	if (n && nparts == 1 && from == n->s && to == n->e && to - from > p->cfg.granularity_ms) {
		/* The sample cannot place a cut (an overlap collector's full
		 * answer whose records began before the window, but for one):
		 * planned whole, the part would be this node again, asked
		 * forever.  Even slices always shrink it. */
		free(parts);
		even_slices(p, n, from, to, total, leaf, rsd, 2);
		return;
	}
	for (size_t i = 0; i < nparts; i++) {
		double est = total * (double)parts[i].cnt / (double)npts;
		double r = sqrt(rsd * rsd + (parts[i].cnt ? 1.0 / (double)parts[i].cnt : 1.0));
		size_t lo = 0, hi = 0;
		if (peers)
			sample_range(pts, npts, parts[i].s, parts[i].e, &lo, &hi);
		if (est <= leaf || parts[i].e - parts[i].s > p->cfg.granularity_ms ||
		    !plan_slot_by_peer(p, n, parts[i].s, parts[i].e, est, peers ? peers + lo : NULL,
				       hi - lo))
			node_est(p, n, parts[i].s, parts[i].e, est, r, (double)parts[i].cnt);
	}
	free(parts);
}

/*
 * Plan [from, n->e) of a node whose full answer gave the sorted sample
 * pts/pk (m points, owned by the node from now on: it stays while children
 * are unsent, so that they can be re-planned), of about 'total' flows.
 */
static void plan_sized(struct plan *p, struct node *n, int64_t from, double total, double rsd,
		       int64_t *pts, uint8_t (*pk)[16], size_t m)
{
	size_t lo, hi;

	if (n->sample != pts) {
		free(n->sample);
		free(n->sample_peers);
		n->sample = pts;
		n->sample_peers = pk;
		n->nsample = m;
	}
	sample_range(pts, m, from, n->e, &lo, &hi);
	n->gen++;
	n->trsd = rsd;
	n->obs = n->exp = n->obs_pts = 0;
	n->censored = false;
	n->kid_lo = p->nnodes;
	plan_range(p, n, from, n->e, total, rsd, pts + lo,
		   pk ? (const uint8_t (*)[16])pk + lo : NULL, hi - lo);
	n->kid_hi = p->nnodes;
	keep_sample(n);
}

/*
 * Child c of a sized node just answered ('answered' records, full or not).
 * A node's size is estimated once for all its children, so its error is
 * shared: when it was 10 % low, most leaves come back full, each costing
 * two more requests.  The children's answers measure that error: each one
 * is a reading of the true scale with the noise of its own sample points.
 * The planned size (scale 1, relative deviation trsd) and the readings so
 * far are combined by their precisions (but a full answer is a lower bound
 * the estimate is not allowed under); when the combined scale is off by
 * more than RESCALE_MIN, the children not yet handed out (the end of the
 * range: they are sent in time order) are planned again at that scale and
 * its smaller deviation, which becomes the new planned size.
 */
static void rescale(struct plan *p, struct node *c, size_t answered)
{
	struct node *n = c->parent;
	double cap = p->cfg.cap;

	if (!n || c->kind != N_TIME || c->est <= 0 || c->gen != n->gen || c->is_measure)
		return;
	if ((double)answered >= cap && c->est >= cap)
		return;		/* an intermediate part: full as planned */
	/* a full leaf counts as the cap: a lower bound */
	n->obs += (double)answered < cap ? (double)answered : cap;
	n->censored |= (double)answered >= cap;
	n->exp += c->est;
	n->obs_pts += c->pts;
	if (!n->sample || n->unsent == 0 || n->rescales >= MAX_RESCALES || n->obs_pts < 1 ||
	    n->trsd <= 0)
		return;
	double prior = 1 / (n->trsd * n->trsd), w = prior + n->obs_pts;
	double scale = (prior + n->obs_pts * n->obs / n->exp) / w, rsd = 1 / sqrt(w);
	if (n->censored && scale < n->obs / n->exp)
		scale = n->obs / n->exp;	/* never below what full answers prove */
	if (fabs(scale - 1) < RESCALE_MIN)
		return;
	/* the unsent suffix of the children, by time */
	uint64_t first = n->kid_hi;
	double est = 0;
	for (uint64_t id = n->kid_hi; id-- > n->kid_lo;) {
		struct node *k = p->nodes[id];
		if (k->parent != n)
			continue;	/* a peer part below a slot */
		if (k->state != S_QUEUED || k->kind != N_TIME)
			break;
		first = id;
		est += k->est;
	}
	if (first == n->kid_hi || est <= 0)
		return;
	int64_t from = p->nodes[first]->s;
	size_t w_at = p->qhead;
	for (size_t i = p->qhead; i < p->qtail; i++) {
		struct node *k = p->nodes[p->queue[i]];
		if (k->parent == n && k->id >= first && k->state == S_QUEUED) {
			k->state = S_DROPPED;
			n->pending--;
			n->unsent--;
			p->st.planned--;
			continue;
		}
		p->queue[w_at++] = p->queue[i];
	}
	p->qtail = w_at;
	n->rescales++;
	p->st.rescales++;
	plan_sized(p, n, from, est * scale, rsd, n->sample, n->sample_peers, n->nsample);
}

static void node_done(struct plan *p, struct node *n);

/* n's size just became known: a parent waiting for it plans its rest. */
static void learned(struct plan *p, struct node *n)
{
	struct node *par = n->parent;

	if (!n->is_measure || !par || !par->measuring)
		return;
	par->measuring = false;
	par->known = n->known / par->meas_share;
	/* the share of a random sample the measured part held: binomial */
	double rsd = sqrt((1 - par->meas_share) / (par->meas_share * (double)par->nsample));
	plan_sized(p, par, par->rest_from, par->known * (1 - par->meas_share), rsd, par->sample,
		   par->sample_peers, par->nsample);
	learned(p, par);
}

/*
 * n and everything below it are answered.  A peer split's size is the sum
 * of its parts' (a part that stayed full counts as the cap, a lower
 * bound).  A measuring child is done here when it was split by peer
 * rather than answered whole: its parent learns its size now and plans
 * the rest of its range (issue 10: without this, a range whose measuring
 * part was a flood's millisecond ended after that millisecond, unnoticed).
 */
static void node_done(struct plan *p, struct node *n)
{
	struct node *par = n->parent;

	n->state = S_DONE;
	if (n->peer_split && n->known < 0)
		n->known = n->kids_known;
	if (n->peer_split && n->kind == N_TIME && !n->gap)
		emit(p, PLAN_COVER, n, 0, 0);
	if (!par)
		return;
	par->kids_known += n->known >= 0 ? n->known : (double)p->cfg.cap;
	if (n->gap && par->peer_split)
		par->gap = true;
	learned(p, n);
	par->pending--;
	if (par->pending == 0 && !par->measuring)
		node_done(p, par);
}

static int cmp_addr(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* A size to plan a full window with, and its relative standard deviation
 * in *rsd (when not NULL).  An estimate above the cap came from a parent's sample and is
 * good to a few percent: a little head room.  An estimate below the cap was
 * wrong by an unknown amount: at least the cap, and some more.  No estimate
 * at all: a guess of twice the cap. */
static double regrown(const struct plan *p, const struct node *n, double *rsd)
{
	double cap = p->cfg.cap;

	if (rsd)
		*rsd = n->est > cap ? n->rsd : REGROWN_RSD;
	if (n->est < 0)
		return GUESS_CAPS * cap;
	if (n->est > GUESS_CAPS * cap)
		return n->est * SAMPLED_ROOM;
	if (n->est > cap)
		return n->est * NEAR_CAP_ROOM;
	return cap * UNDER_CAP_ROOM;
}

/* The parts of a peer split, in address order. */
struct peer_leaf {
	struct cache_prefix pre;
	double est;
};

struct peer_leaves {
	struct peer_leaf *v;
	size_t n, cap;
};

/* Split prefix 'pre' holding sorted sample peers [lo, hi) of m, for a
 * window of about 'total' flows, into prefixes expected to hold a leaf at
 * the most (or single addresses), appended to out. */
static void peer_collect(struct plan *p, struct cache_prefix pre, uint8_t (*pts)[16], size_t lo,
			 size_t hi, size_t m, double total, struct peer_leaves *out)
{
	double est = m ? total * (double)(hi - lo) / (double)m : total;
	double leaf = p->cfg.fill * p->cfg.cap;

	if (m == 0 && pre.len < p->max_len && est > leaf) {
		/* No sample point to go by (an overlap collector's full answer
		 * whose records all began before the slot): halve the prefix
		 * once, and let each half's own answer say more.  Descending
		 * blind would make every prefix down to single addresses (2^32
		 * of them for IPv4) a part. */
		struct cache_prefix a = pre, b = pre;
		a.len = b.len = pre.len + 1;
		b.addr[pre.len / 8] |= (uint8_t)(1u << (7 - pre.len % 8));
		peer_collect(p, a, pts, lo, hi, m, leaf, out);
		peer_collect(p, b, pts, lo, hi, m, leaf, out);
		return;
	}
	/* A prefix with one sample point at the most is not cut further:
	 * one point cannot say that its address alone is busy (a flood's
	 * sources are distinct), and isolating it costs a request for each
	 * of the up to 32 (128) light prefixes on the way down.  If it comes
	 * back full, its own answer says where to cut. */
	if (est <= leaf || pre.len >= p->max_len || (m > 0 && hi - lo <= 1)) {
		if (arr_grow(&out->v, &out->cap, out->n + 1, sizeof(*out->v))) {
			p->oom = true;
			return;
		}
		out->v[out->n++] = (struct peer_leaf){pre, est};
		return;
	}
	struct cache_prefix a = pre, b = pre;
	int byte = pre.len / 8, bit = 7 - pre.len % 8;
	a.len = b.len = pre.len + 1;
	b.addr[byte] |= (uint8_t)(1u << bit);
	size_t mid = lo;
	while (mid < hi && memcmp(pts[mid], b.addr, 16) < 0)
		mid++;
	peer_collect(p, a, pts, lo, mid, m, total, out);
	peer_collect(p, b, pts, mid, hi, m, total, out);
}

static void peer_part(struct plan *p, struct node *n, const struct peer_leaf *v, size_t k,
		      double est)
{
	struct node *c = node_new(p, n, N_PEER, n->s, n->e, est);

	if (!c)
		return;
	c->peer = v[0].pre;
	c->has_peer = true;
	if (k > 1) {
		c->set = malloc(k * sizeof(*c->set));
		if (!c->set) {
			p->oom = true;
			return;
		}
		for (size_t i = 0; i < k; i++)
			c->set[i] = v[i].pre;
		c->nset = k;
	}
}

/*
 * One request for each part of a peer split; with FETCH_SPLIT_PEER_SET,
 * light parts next to each other are asked together, as long as they are
 * expected to hold a leaf at the most.  Isolating one busy address (a scan
 * or a flood from one source) leaves a light sibling prefix at every bit
 * on the way down, 32 for IPv4: asked one by one they cost a request each,
 * asked as a set about one.
 */
static void peer_parts(struct plan *p, struct node *n, const struct peer_leaves *l)
{
	double leaf = p->cfg.fill * p->cfg.cap, sum = 0;
	size_t from = 0, max = p->cfg.split_dims & FETCH_SPLIT_PEER_SET ? PLAN_PEER_SET_MAX : 1;

	for (size_t i = 0; i < l->n; i++) {
		double est = l->v[i].est;
		bool alone = est > leaf;	/* too busy to share a request */
		if (i > from && (alone || i - from == max || sum + est > leaf)) {
			peer_part(p, n, &l->v[from], i - from, sum);
			from = i;
			sum = 0;
		}
		if (alone) {
			peer_part(p, n, &l->v[i], 1, est);
			from = i + 1;
			continue;
		}
		sum += est;
	}
	if (l->n > from)
		peer_part(p, n, &l->v[from], l->n - from, sum);
}

/* Split prefix 'pre' holding sorted sample peers [lo, hi) of m, for a
 * window of about 'total' flows, and plan the parts below n. */
static void peer_trie(struct plan *p, struct node *n, struct cache_prefix pre,
		      uint8_t (*pts)[16], size_t lo, size_t hi, size_t m, double total)
{
	struct peer_leaves l = {0};

	peer_collect(p, pre, pts, lo, hi, m, total, &l);
	peer_parts(p, n, &l);
	free(l.v);
}

static bool in_peers(const struct node *n, const uint8_t a[16])
{
	if (!n->set)
		return cache_prefix_contains(&n->peer, a);
	for (size_t i = 0; i < n->nset; i++)
		if (cache_prefix_contains(&n->set[i], a))
			return true;
	return false;
}

/* A full answer for a window at the finest time step.  A full peer set is
 * split into its members (and those further, as the sample says); a
 * single prefix down to single addresses, where it is a gap. */
static void split_by_peer(struct plan *p, struct node *n, const int64_t *starts,
			  const uint8_t (*peers)[16], size_t cnt)
{
	if (!(p->cfg.split_dims & FETCH_SPLIT_PEER) || !peers ||
	    (!n->set && n->peer.len >= p->max_len)) {
		n->gap = true;
		p->st.gaps++;
		emit(p, PLAN_GAP, n, 0, (int64_t)cnt);
		node_done(p, n);
		return;
	}
	uint8_t (*pts)[16] = malloc((cnt ? cnt : 1) * 16);
	size_t m = 0;
	if (!pts) {
		p->oom = true;
		return;
	}
	/* every record the answer counted, whenever it began: a collector
	 * that selects by overlap fills a slot with flows that began before
	 * it, and their peers are what must be split away */
	(void)starts;
	for (size_t i = 0; i < cnt; i++)
		if (in_peers(n, peers[i]))
			memcpy(pts[m++], peers[i], 16);
	qsort(pts, m, 16, cmp_addr);
	double total = regrown(p, n, NULL);
	n->peer_split = true;
	p->st.peer_splits++;
	if (!n->set) {
		peer_trie(p, n, n->peer, pts, 0, m, m, total);
	} else {
		struct peer_leaves l = {0};
		size_t hi = 0;
		/* members are disjoint prefixes in address order (peer_parts):
		 * each holds the next run of the sorted points */
		for (size_t k = 0; k < n->nset; k++) {
			size_t lo = hi;
			while (lo < m && !cache_prefix_contains(&n->set[k], pts[lo]))
				lo++;
			hi = lo;
			while (hi < m && cache_prefix_contains(&n->set[k], pts[hi]))
				hi++;
			/* m ? m : 1: with no point at all, no member gets a share
			 * (peer_collect gives the whole total to a prefix when m
			 * is 0) */
			peer_collect(p, n->set[k], pts, lo, hi, m ? m : 1, total, &l);
		}
		peer_parts(p, n, &l);
		free(l.v);
	}
	free(pts);
}

/* A full answer for a window that can still be cut in time. */
struct spoint {
	int64_t t;
	uint8_t peer[16];
};

static int cmp_spoint(const void *a, const void *b)
{
	const struct spoint *x = a, *y = b;
	return x->t < y->t ? -1 : x->t > y->t;
}

/* A full answer for a window that can still be cut in time: its sample's
 * starts (and peers, when the answer had them) in [s, e), sorted. */
static void split_by_time(struct plan *p, struct node *n, const int64_t *starts,
			  const uint8_t (*peers)[16], size_t cnt)
{
	struct spoint *sp = malloc((cnt ? cnt : 1) * sizeof(*sp));
	int64_t *pts = malloc((cnt ? cnt : 1) * sizeof(*pts));
	uint8_t (*pk)[16] = peers ? malloc((cnt ? cnt : 1) * 16) : NULL;
	size_t m = 0;

	if (!sp || !pts || (peers && !pk)) {
		free(sp);
		free(pts);
		free(pk);
		p->oom = true;
		return;
	}
	for (size_t i = 0; i < cnt; i++) {
		if (starts[i] >= n->s && starts[i] < n->e) {
			sp[m].t = starts[i];
			if (peers)
				memcpy(sp[m].peer, peers[i], 16);
			m++;
		}
	}
	qsort(sp, m, sizeof(*sp), cmp_spoint);
	for (size_t i = 0; i < m; i++) {
		pts[i] = sp[i].t;
		if (pk)
			memcpy(pk[i], sp[i].peer, 16);
	}
	free(sp);
	if (n->est >= 0 || m < 8) {
		double rsd, total = regrown(p, n, &rsd);
		n->known = total;
		plan_sized(p, n, n->s, total, rsd, pts, pk, m);
		pts = NULL;
		pk = NULL;
		goto planned;
	}
	/* size unknown: ask a measuring child first */
	struct part *parts = NULL;
	size_t nparts = 0;
	if (split_points(p, pts, m, n->s, n->e, (double)m * MEASURE_SHARE, &parts, &nparts)) {
		free(pts);
		free(pk);
		p->oom = true;
		return;
	}
	double share = nparts > 1 ? (double)parts[0].cnt / (double)m : 1;
	if (share < 1 && parts[0].cnt == 0) {
		/* an empty lead-in: measure it together with the next part */
		parts[1].s = parts[0].s;
		memmove(parts, parts + 1, (nparts - 1) * sizeof(*parts));
		nparts--;
		share = nparts < 2 ? 1 : (double)parts[0].cnt / (double)m;
	}
	if (share >= 1) {
		/* degenerate sample: plan it all with a guess */
		free(parts);
		n->known = GUESS_CAPS * p->cfg.cap;
		plan_sized(p, n, n->s, n->known, REGROWN_RSD, pts, pk, m);
		pts = NULL;
		pk = NULL;
		goto planned;
	}
	struct node *c = node_new(p, n, N_TIME, parts[0].s, parts[0].e, -1);
	if (c) {
		c->is_measure = true;
		n->measuring = true;
		n->meas_share = share;
		n->rest_from = parts[0].e;
		n->sample = pts;
		n->sample_peers = pk;
		n->nsample = m;
		pts = NULL;
		pk = NULL;
	}
	free(parts);
	free(pts);
	free(pk);
	return;
planned:
	free(pts);
	free(pk);
	learned(p, n);
}

int plan_answer(struct plan *p, uint64_t id, size_t answered, size_t n,
		const int64_t *starts, const uint8_t (*peers)[16], struct plan_ev **ev,
		size_t *nev)
{
	struct node *nd;

	if (id >= p->nnodes || p->nodes[id]->state != S_SENT)
		return -ENOENT;
	nd = p->nodes[id];
	p->st.outstanding--;
	p->nev = 0;
	rescale(p, nd, answered);
	if (answered < p->cfg.cap) {
		nd->known = (double)answered;
		if (nd->kind == N_TIME)
			emit(p, PLAN_COVER, nd, (int64_t)answered, 0);
		learned(p, nd);
		if (nd->pending == 0 && !nd->measuring)
			node_done(p, nd);
	} else {
		p->st.saturated++;
		nd->state = S_SPLIT;
		if (nd->e - nd->s <= p->cfg.granularity_ms)
			split_by_peer(p, nd, starts, peers, n);
		else
			split_by_time(p, nd, starts, peers, n);
	}
	if (p->oom)
		return -ENOMEM;
	*nev = p->nev;
	*ev = NULL;
	if (p->nev) {
		*ev = malloc(p->nev * sizeof(**ev));
		if (!*ev)
			return -ENOMEM;
		memcpy(*ev, p->ev, p->nev * sizeof(**ev));
	}
	return 0;
}
