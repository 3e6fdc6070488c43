/*
 * gen.c - the generated dataset.
 *
 * A chunk (one stream, one UTC day) stores only its flows' start times,
 * ascending.  They are drawn as sorted uniforms (exponential spacings, so no
 * sort is needed: O(n) for the two million flows of a heavy day) mapped
 * through the inverse of the stream's daily density, tabulated per second.
 * Every other field of a flow is derived from its id, and its id from
 * (stream, absolute day, position) by a bijective mix: ids are unique and
 * stable, and a flow costs 8 bytes while it is not being served.
 */
#include "sim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_UNMADE UINT64_MAX
#define DAY_S 86400

int sim_dataset_init(struct sim_dataset *ds, const struct sim_scenario *sc,
		     uint64_t seed, int64_t now_ms, int ndays)
{
	size_t n = (size_t)sc->nstreams * (size_t)ndays;

	memset(ds, 0, sizeof(*ds));
	ds->sc = *sc;
	ds->seed = seed;
	ds->ndays = ndays;
	ds->first_day_ms = (now_ms / SIM_DAY_MS - (ndays - 1)) * SIM_DAY_MS;
	ds->chunks = calloc(n, sizeof(*ds->chunks));
	if (!ds->chunks)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		ds->chunks[i].n = CHUNK_UNMADE;
	pthread_mutex_init(&ds->lock, NULL);
	return 0;
}

void sim_dataset_free(struct sim_dataset *ds)
{
	if (!ds->chunks)
		return;
	for (size_t i = 0; i < (size_t)ds->sc.nstreams * (size_t)ds->ndays; i++)
		free(ds->chunks[i].start);
	free(ds->chunks);
	ds->chunks = NULL;
	pthread_mutex_destroy(&ds->lock);
}

static uint64_t abs_day(const struct sim_dataset *ds, int day)
{
	return (uint64_t)(ds->first_day_ms / SIM_DAY_MS + day);
}

/* A uniform double in (0, 1) from a 64-bit value. */
static double unit(uint64_t h)
{
	return ((double)(h >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* The daily density of a host stream, as cumulative weights per second:
 * cdf[0] = 0, cdf[DAY_S] = total. */
static void host_density(const struct sim_stream *st, uint64_t key, double *cdf,
			 double *w)
{

	for (int s = 0; s < DAY_S; s++)
		w[s] = 1.0 + 0.5 * cos(2.0 * M_PI * (s - 14 * 3600) / DAY_S);
	if (st->kind == SIM_BURSTY) {
		/* 20% spread as steady, 80% in five bursts of 1 to 10 minutes */
		double base = 0;
		for (int s = 0; s < DAY_S; s++)
			base += w[s];
		for (int s = 0; s < DAY_S; s++)
			w[s] *= 0.2 / base;
		for (int b = 0; b < 5; b++) {
			uint64_t h = sim_mix(key ^ (0xb0b0ULL + (uint64_t)b));
			int len = 60 + (int)(h % 541);
			int at = (int)((h >> 20) % (uint64_t)(DAY_S - len));
			for (int s = at; s < at + len; s++)
				w[s] += 0.16 / len;
		}
	}
	cdf[0] = 0;
	for (int s = 0; s < DAY_S; s++)
		cdf[s + 1] = cdf[s] + w[s];
}

/* Make the chunk of stream si on day di: n sorted start times. */
static int chunk_make(const struct sim_dataset *ds, int si, int di,
		      struct sim_chunk *c)
{
	const struct sim_stream *st = &ds->sc.streams[si];
	int64_t day0 = ds->first_day_ms + (int64_t)di * SIM_DAY_MS;
	uint64_t key = sim_mix(ds->seed ^ sim_mix((uint64_t)si << 40 ^ abs_day(ds, di)));
	bool event = st->kind == SIM_SCAN || st->kind == SIM_FLOOD;
	double *u = NULL, *cdf = NULL, sum = 0;
	uint64_t n, r = key | 1;
	int rc = -ENOMEM;

	if (event)
		n = di == ds->ndays - 1 + st->day ? st->flows : 0;
	else
		n = st->flows + (uint64_t)((double)st->flows * 0.1 * unit(sim_mix(key)));
	c->n = 0;
	c->start = NULL;
	if (n == 0)
		return 0;
	c->start = malloc(n * sizeof(*c->start));
	u = malloc((n + 1) * sizeof(*u));
	if (!c->start || !u)
		goto out;
	/* sorted uniforms: normalised partial sums of exponential spacings */
	for (uint64_t i = 0; i <= n; i++) {
		sum += -log(unit(sim_rand(&r)));
		u[i] = sum;
	}
	for (uint64_t i = 0; i < n; i++)
		u[i] /= sum;

	if (event) {
		int64_t from = day0 + st->at_ms;
		for (uint64_t i = 0; i < n; i++)
			c->start[i] = from + (int64_t)(u[i] * (double)st->span_ms);
	} else {
		cdf = malloc((2 * DAY_S + 1) * sizeof(*cdf));
		if (!cdf)
			goto out;
		host_density(st, key, cdf, cdf + DAY_S + 1);
		int s = 0;
		for (uint64_t i = 0; i < n; i++) {
			double t = u[i] * cdf[DAY_S];
			while (s < DAY_S - 1 && cdf[s + 1] <= t)
				s++;
			double frac = (t - cdf[s]) / (cdf[s + 1] - cdf[s]);
			int64_t ms = (int64_t)((s + (frac < 1 ? frac : 0.999)) * 1000.0);
			c->start[i] = day0 + ms;
		}
	}
	c->n = n;
	rc = 0;
out:
	if (rc) {
		free(c->start);
		c->start = NULL;
	}
	free(u);
	free(cdf);
	return rc;
}

const struct sim_chunk *sim_dataset_chunk(struct sim_dataset *ds, int stream,
					  int day)
{
	struct sim_chunk *c = &ds->chunks[(size_t)stream * (size_t)ds->ndays + (size_t)day];
	const struct sim_chunk *ret = c;

	pthread_mutex_lock(&ds->lock);
	if (c->n == CHUNK_UNMADE && chunk_make(ds, stream, day, c) != 0) {
		c->n = CHUNK_UNMADE;
		ret = NULL;
	}
	pthread_mutex_unlock(&ds->lock);
	return ret;
}

/* A bijection on 32 bits, to give a flood distinct sources. */
static uint32_t mix32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

/* The address number 'v' inside prefix p (its host bits, wrapped). */
static void addr_in_prefix(const struct sim_prefix *p, uint64_t v, struct sim_addr *a)
{
	int host = 128 - p->len;

	*a = p->addr;
	for (int i = 15; i >= 0 && host > 0; i--, host -= 8) {
		uint8_t mask = host >= 8 ? 0xff : (uint8_t)((1u << host) - 1);
		a->b[i] |= (uint8_t)(v & mask);
		v >>= 8;
	}
}

static const struct {
	uint16_t port;
	uint8_t proto;
	uint16_t app;
} services[] = {
	{443, 6, 130}, {443, 6, 130}, {443, 6, 130}, {80, 6, 120},
	{53, 17, 40}, {53, 17, 40}, {22, 6, 70}, {25, 6, 90},
	{123, 17, 110}, {3389, 6, 140}, {445, 6, 150}, {0, 1, 10},
	{5060, 17, 160}, {8443, 6, 9999}, {993, 6, 100}, {0, 47, 0},
};

static const uint32_t peer_as[] = {15169, 13335, 16509, 3356, 8075, 64496, 64511, 32934};

void sim_flow_make(const struct sim_dataset *ds, int stream, int day,
		   uint64_t pos, int64_t start, struct sim_flow *f)
{
	const struct sim_stream *st = &ds->sc.streams[stream];
	uint64_t key = (uint64_t)stream << 56 | abs_day(ds, day) << 32 | pos;
	uint64_t id = sim_mix(key ^ sim_mix(ds->seed));
	uint64_t h = sim_mix(id), h2 = sim_mix(h), h3 = sim_mix(h2);
	struct sim_addr peer;
	bool v4 = st->subject.v4, client;
	int64_t day_end = ds->first_day_ms + (int64_t)(day + 1) * SIM_DAY_MS;

	memset(f, 0, sizeof(*f));
	f->id = id;
	f->start = start;

	if (st->kind == SIM_FLOOD) {
		if (v4)
			addr_in_prefix(&st->peers, mix32((uint32_t)pos + (uint32_t)ds->seed), &peer);
		else
			addr_in_prefix(&st->peers, sim_mix(pos ^ ds->seed), &peer);
	} else if (st->kind == SIM_SCAN) {
		peer = st->peers.addr;
	} else {
		uint64_t idx = h % st->peer_pool;
		addr_in_prefix(&st->peers, sim_mix(idx ^ (uint64_t)stream << 32 ^ ds->seed), &peer);
	}

	unsigned svc = (unsigned)((h >> 8) % (sizeof(services) / sizeof(services[0])));
	uint16_t eph = (uint16_t)(32768 + (h2 >> 16) % 28232);
	f->proto = services[svc].proto;
	f->app = services[svc].app;
	client = (h >> 16) % 10 < 6;

	switch (st->kind) {
	case SIM_SCAN:
		client = false;	/* the attacker is the source */
		f->proto = 6;
		f->app = 0;
		f->sport = (uint16_t)(40000 + (h2 % 20000));
		f->dport = (uint16_t)(1 + pos % 65535);
		f->tcp_flags = 0x02;
		f->pkts = 1 + h3 % 2;
		f->bytes = f->pkts * (v4 ? 44 : 64);
		f->end = start + (int64_t)(h3 >> 8) % 3;
		break;
	case SIM_FLOOD:
		client = false;
		f->proto = 6;
		f->app = 120;
		f->sport = eph;
		f->dport = 80;
		f->tcp_flags = 0x02;
		f->pkts = 1;
		f->bytes = v4 ? 40 : 60;
		f->end = start;
		break;
	default:
		if (f->proto == 1 && !v4)
			f->proto = 58;
		if (f->proto == 1 || f->proto == 58) {
			f->icmp_type = (uint8_t)((h3 & 3) == 0 ? (v4 ? 3 : 1) : (v4 ? 8 : 128));
			f->icmp_code = (uint8_t)((h3 & 3) == 0 ? 3 : 0);
		} else if (f->proto == 6 || f->proto == 17) {
			/* whichever side the subject is, the client picks
			 * an ephemeral port and the server listens */
			f->sport = eph;
			f->dport = services[svc].port;
		}
		if (f->proto == 6) {
			static const uint8_t flags[] = {0x1b, 0x1b, 0x1b, 0x1f, 0x12, 0x02, 0x18, 0x11};
			f->tcp_flags = flags[h3 % 8];
		}
		f->pkts = 1 + (h3 >> 16) % 200;
		f->bytes = f->pkts * (40 + (h3 >> 32) % 1461);
		{
			int64_t dur = (int64_t)((h2 >> 32) % 30000);
			if ((h2 & 0xff) == 0)
				dur = 60000 + (int64_t)((h2 >> 8) % 3540000);
			if (start >= day_end - 15 * 60000 && (h2 & 3) == 0)
				dur = 20 * 60000 + (int64_t)((h2 >> 8) % (40 * 60000));
			if (dur > st->max_dur_ms)
				dur = st->max_dur_ms;
			f->end = start + dur;
		}
		break;
	}
	if (client) {
		f->src = st->subject.addr;
		f->dst = peer;
	} else {
		f->src = peer;
		f->dst = st->subject.addr;
	}

	f->exporter = 1 + (uint32_t)((h >> 24) % 3);
	static const uint32_t ifs[3][3] = {{514, 515, 516}, {10, 11, 12}, {1, 2, 999}};
	f->in_if = ifs[f->exporter - 1][(h >> 28) % 3];
	f->out_if = ifs[f->exporter - 1][(h >> 30) % 3];
	f->sampling = f->exporter == 2 ? 100 : 1;
	bool subject_src = client;
	uint8_t *nsub = subject_src ? &f->nsrc_groups : &f->ndst_groups;
	uint32_t *sub = subject_src ? f->src_groups : f->dst_groups;
	for (int g = 0; g < st->ngroups; g++)
		sub[g] = st->groups[g];
	*nsub = (uint8_t)st->ngroups;
	if ((h >> 34) & 1) {
		uint32_t *peerg = subject_src ? f->dst_groups : f->src_groups;
		peerg[0] = st->kind == SIM_SCAN || st->kind == SIM_FLOOD ? 21 : 20;
		if (subject_src)
			f->ndst_groups = 1;
		else
			f->nsrc_groups = 1;
	}
	uint32_t pas = peer_as[(h >> 36) % 8];
	f->src_as = subject_src ? 64500 : pas;
	f->dst_as = subject_src ? pas : 64500;
	f->addr_style = (uint8_t)((h >> 44) % 5);
	switch ((h >> 48) % 50) {
	case 0: f->omit = SIM_OMIT_APP; break;
	case 1: f->omit = SIM_OMIT_AS; break;
	case 2: f->omit = SIM_OMIT_IF; break;
	default: break;
	}
	f->extra = (h3 >> 56) % 100 == 0;
}
