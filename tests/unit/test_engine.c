/*
 * test_engine.c - the engine against flowsim in this process (issue 12):
 * the bytes of answers an engine holds at once, in flight or waiting to be
 * decoded, never exceed its bound (fetch_opts.max_held), for one query and
 * for several queries of one engine at once, and every day is still exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fetch.h"
#include "sim.h"

#define CAP 1000
/* one answer's bound at CAP: CAP x flowapi's largest record + 1 MiB */
#define BODY_MAX ((uint64_t)CAP * 4096 + (1u << 20))

struct fixture {
	struct sim_scenario sc;
	struct sim_dataset ds;
	struct sim_config cfg;
	struct sim_server *srv;
	char dir[64], url[64];
	int64_t day;		/* 00:00 UTC two days ago: a whole, exported day */
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char err[SIM_ERRLEN], path[128];
	FILE *f;
	int port = 0;

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_engine.XXXXXX");
	if (!mkdtemp(fx->dir) || fetch_global_init())
		return -1;
	snprintf(fx->cfg.listen, sizeof(fx->cfg.listen), "127.0.0.1:0");
	snprintf(fx->cfg.port_file, sizeof(fx->cfg.port_file), "%s/port", fx->dir);
	fx->cfg.seed = 1;
	fx->cfg.ndays = 7;
	fx->cfg.max_records = CAP;
	fx->cfg.export_delay_s = 300;
	fx->cfg.retention_days = 90;
	fx->cfg.stall_s = 600;
	if (sim_scenario_parse(sim_default_scenario, &fx->sc, err) ||
	    sim_dataset_init(&fx->ds, &fx->sc, fx->cfg.seed, sim_now_ms(&fx->cfg), fx->cfg.ndays) ||
	    sim_server_start(&fx->cfg, &fx->ds, &fx->srv, err)) {
		fprintf(stderr, "flowsim: %s\n", err);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/port", fx->dir);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%d", &port) != 1)
		return -1;
	fclose(f);
	snprintf(fx->url, sizeof(fx->url), "http://127.0.0.1:%d", port);
	fx->day = (sim_now_ms(&fx->cfg) / 86400000 - 2) * 86400000;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[128];

	sim_server_stop(fx->srv);
	sim_dataset_free(&fx->ds);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", fx->dir);
	free(fx);
	return 0;
}

/* How many flows of 'ip' start in the day (the dataset's own count). */
static uint64_t truth(struct fixture *fx, const char *ip)
{
	struct sim_query q;
	struct sim_matches m;

	memset(&q, 0, sizeof(q));
	assert_int_equal(sim_prefix_parse(ip, &q.ip), 0);
	q.start = fx->day;
	q.end = fx->day + 86400000;
	q.match = SIM_MATCH_START;
	q.visible_before = INT64_MAX / 2;	/* all exported (sim adds 1 to it) */
	assert_int_equal(sim_query_collect(&fx->ds, &q, &m), 0);
	uint64_t n = m.total;
	sim_matches_free(&m);
	return n;
}

/* An engine on a fresh cache of its own, its answers held to 'held'. */
static struct fetch_engine *engine(struct fixture *fx, const char *name, size_t held,
				   char dir[128])
{
	struct fetch_engine *e = NULL;
	char err[FETCH_ERRLEN];
	struct fetch_opts o = {
		.url = fx->url, .cache_dir = dir, .max_inflight = 4, .compress = 0,
		.decode_threads = 2, .max_held = held,
	};

	snprintf(dir, 128, "%s/%s", fx->dir, name);
	if (fetch_engine_open(&o, &e, err))
		fail_msg("open: %s", err);
	return e;
}

struct one_query {
	struct fetch_engine *e;
	struct fixture *fx;
	const char *ip;
	char dir[128];		/* the engine's cache directory */
	struct fetch_result res;
	int64_t rows;
	int rc;
	char err[FETCH_ERRLEN];
};

/* Fetch a day of q->ip and count the rows the cache then holds. */
static void *run_query(void *arg)
{
	struct one_query *oq = arg;
	struct cache_query q;
	char cerr[CACHE_ERRLEN];
	FILE *null = fopen("/dev/null", "w");

	memset(&q, 0, sizeof(q));
	cache_prefix_parse(oq->ip, &q.subject);
	q.start = oq->fx->day;
	q.end = oq->fx->day + 86400000;
	oq->rc = fetch_query(oq->e, &q, NULL, NULL, &oq->res, oq->err);
	if (!oq->rc) {
		/* a connection of this thread's own, as a flowfs folder has */
		struct cache_identity id = fetch_engine_identity(oq->e);
		struct cache *c = NULL;
		oq->rc = cache_open(oq->dir, &id, &c, cerr);
		if (!oq->rc)
			oq->rc = null ? cache_render(c, &q, CACHE_CSV, null, NULL, NULL, 0, &oq->rows,
						     cerr) : -errno;
		if (oq->rc)
			snprintf(oq->err, sizeof(oq->err), "the cache: %s", cerr);
		if (c)
			cache_close(c);
	}
	if (null)
		fclose(null);
	return NULL;
}

static void check(struct one_query *oq, uint64_t held_max)
{
	if (oq->rc)
		fail_msg("%s: %s", oq->ip, oq->err);
	assert_true(oq->res.complete);
	assert_int_equal(oq->rows, truth(oq->fx, oq->ip));
	assert_int_equal(oq->res.body_max, BODY_MAX);
	assert_int_equal(oq->res.held_max, held_max);
	assert_true(oq->res.held_peak <= held_max);
	assert_true(oq->res.held_peak >= BODY_MAX);	/* it did hold answers */
}

/* One query: a budget of one answer's bound sends one request at a time;
 * one of two and a half, two at most (4 would be in flight otherwise). */
static void test_held_one_query(void **state)
{
	struct fixture *fx = *state;
	static const struct { const char *name; uint64_t held; } runs[] = {
		{"one", BODY_MAX}, {"two", BODY_MAX * 5 / 2},
	};

	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		struct one_query oq = {.fx = fx, .ip = "10.0.1.11"};
		oq.e = engine(fx, runs[i].name, runs[i].held, oq.dir);
		run_query(&oq);
		check(&oq, runs[i].held);
		if (i == 1)
			assert_true(oq.res.held_peak > BODY_MAX);	/* two at once */
		fetch_engine_close(oq.e);
	}
	/* a budget under one answer's bound is raised to it: one always fits */
	struct one_query oq = {.fx = fx, .ip = "10.0.1.40"};
	oq.e = engine(fx, "small", 4096, oq.dir);
	run_query(&oq);
	check(&oq, BODY_MAX);
	fetch_engine_close(oq.e);
}

/* Three queries of one engine at once (as flowfs's folders): the budget is
 * the engine's, shared; each query sees at most it held, all exact. */
static void test_held_shared(void **state)
{
	struct fixture *fx = *state;
	uint64_t held = BODY_MAX * 3;
	char dir[128];
	struct fetch_engine *e = engine(fx, "shared", held, dir);
	struct one_query oq[3] = {
		{.e = e, .fx = fx, .ip = "10.0.1.11"},
		{.e = e, .fx = fx, .ip = "10.0.1.30"},
		{.e = e, .fx = fx, .ip = "10.0.1.10"},
	};
	pthread_t th[3];

	for (int i = 0; i < 3; i++)
		memcpy(oq[i].dir, dir, sizeof(dir));
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, run_query, &oq[i]), 0);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 3; i++)
		check(&oq[i], held);
	fetch_engine_close(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_held_one_query),
		cmocka_unit_test(test_held_shared),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
