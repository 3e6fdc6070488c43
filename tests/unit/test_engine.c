/*
 * test_engine.c - the engine against flowsim in this process (issue 12):
 * the bytes of answers an engine holds at once, in flight or waiting to be
 * decoded, never exceed its bound (fetch_opts.max_held), for one query and
 * for several queries of one engine at once, and every day is still exact.
 * And a driver without HTTP (issue 14): a fake one, given to the engine
 * through fetch_opts.driver_def, whose windows the engine runs on its
 * decoding threads (window_run) with the query's cancel flag and a
 * deadline, splitting full windows, retrying a failed one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fetch.h"
#include "fetch_i.h"
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
	fx->day = (sim_now_ms(&fx->cfg) / CACHE_DAY_MS - 2) * CACHE_DAY_MS;
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
	q.end = fx->day + CACHE_DAY_MS;
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
	const atomic_int *cancel;	/* the query's, or NULL */
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
	q.end = oq->fx->day + CACHE_DAY_MS;
	oq->rc = fetch_query(oq->e, &q, NULL, oq->cancel, &oq->res, oq->err);
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

/* ---- a driver without HTTP ------------------------------------------------ */

/* The fake collector: a flow every FAKE_STEP_MS, from the subject to one of
 * FAKE_PEERS peers 10.9.1.x in turn; windows of more than the cap are
 * answered with their first cap flows, as a capped collector does. */
#define FAKE_STEP_MS 20000
#define FAKE_PEERS 250
#define FAKE_TIMEOUT_MS 600000

/* What the fake saw, for the test to check (its state, not the engine's). */
static struct {
	atomic_int runs, off_decoder, bad_deadline, bad_cancel, failed_once, blocked;
	atomic_int block;		/* in: wait for the cancel flag */
	const atomic_int *cancel;	/* in: the flag the query was given */
} fake;

struct driver {
	int unused;
};

static int fake_open(struct driver **out, const struct fetch_opts *o, char *err)
{
	(void)o;
	(void)err;
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

static void fake_close(struct driver *d)
{
	free(d);
}

static int fake_info(struct driver *d, struct fetch_info *info, char *err)
{
	(void)d;
	(void)err;
	memset(info, 0, sizeof(*info));
	snprintf(info->product, sizeof(info->product), "fake");
	snprintf(info->dialect, sizeof(info->dialect), "fake/1");
	info->max_records = CAP;
	info->retention_days = 30;
	info->export_delay_s = 0;
	return 0;
}

static void fake_rec(int64_t t, const struct cache_query *q, struct flow_rec *f)
{
	char dst[32];

	memset(f, 0, sizeof(*f));
	snprintf(f->id, sizeof(f->id), "fake-%lld", (long long)t);
	f->start_ms = t;
	f->end_ms = t + 500;
	memcpy(f->src, q->subject.addr, 16);
	snprintf(dst, sizeof(dst), "::ffff:10.9.1.%d", (int)((t / FAKE_STEP_MS) % FAKE_PEERS));
	inet_pton(AF_INET6, dst, f->dst);
	f->proto = 6;
	f->sport = 40000;
	f->dport = 443;
	f->tcp_flags = 0x1b;
	f->icmp_type = f->icmp_code = -1;
	f->pkts = 10;
	f->bytes = 1500;
	f->in_if = f->out_if = f->exporter = f->app = f->src_as = f->dst_as = f->sampling = -1;
}

static int fake_window(struct driver *d, const struct cache_query *q, const struct plan_req *r,
		       uint32_t limit, const atomic_int *cancel, int64_t deadline_ms,
		       struct decoded *out, char *err)
{
	char name[16] = "";
	struct timespec now;
	int zero = 0;

	(void)d;
	atomic_fetch_add(&fake.runs, 1);
	pthread_getname_np(pthread_self(), name, sizeof(name));
	if (strcmp(name, "flow-decode") != 0)
		atomic_fetch_add(&fake.off_decoder, 1);
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t left = deadline_ms - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
	if (left <= 0 || left > FAKE_TIMEOUT_MS)
		atomic_fetch_add(&fake.bad_deadline, 1);
	if (cancel != fake.cancel)
		atomic_fetch_add(&fake.bad_cancel, 1);
	if (atomic_load(&fake.block)) {
		atomic_fetch_add(&fake.blocked, 1);
		while (!atomic_load(cancel)) {
			struct timespec ms = {0, 1000000};
			nanosleep(&ms, NULL);
		}
		snprintf(err, FETCH_ERRLEN, "the fake was interrupted");
		return -ECANCELED;
	}
	/* the first window of all fails once: it must be asked again */
	if (atomic_compare_exchange_strong(&fake.failed_once, &zero, 1)) {
		snprintf(err, FETCH_ERRLEN, "the fake's program failed");
		return -EAGAIN;
	}
	out->recs = malloc((limit ? limit : 1) * sizeof(*out->recs));
	if (!out->recs)
		return -ENOMEM;
	for (int64_t t = (r->start + FAKE_STEP_MS - 1) / FAKE_STEP_MS * FAKE_STEP_MS;
	     t < r->end && out->n < limit; t += FAKE_STEP_MS) {
		struct flow_rec f;
		fake_rec(t, q, &f);
		if (r->has_peer && !cache_prefix_contains(&r->peer, f.dst))
			continue;
		out->recs[out->n++] = f;
	}
	out->answered = out->n;
	out->sampled = out->sample_at && out->n >= out->sample_at;
	return 0;
}

static const struct driver_ops fake_ops = {
	.granularity_ms = 1,
	.max_window_ms = CACHE_DAY_MS,
	.split_dims = FETCH_SPLIT_PEER,
	.record_max = 512,
	.open = fake_open,
	.close = fake_close,
	.info_run = fake_info,
	.window_run = fake_window,
};

static const struct fetch_driver fake_driver = {
	.name = "fake", .what = "a fake archive", .secret = "the token", .ops = &fake_ops,
};

/* An engine over the fake, on a fresh cache: the URL goes to it whole. */
static struct fetch_engine *fake_engine(struct fixture *fx, const char *name, char dir[128])
{
	struct fetch_engine *e = NULL;
	char err[FETCH_ERRLEN];
	struct fetch_opts o = {
		.url = "fake:/archive", .cache_dir = dir, .driver_def = &fake_driver,
		.decode_threads = 2, .request_timeout_ms = FAKE_TIMEOUT_MS,
	};

	snprintf(dir, 128, "%s/%s", fx->dir, name);
	if (fetch_engine_open(&o, &e, err))
		fail_msg("open: %s", err);
	return e;
}

/* A day of 10.9.0.1 from the fake: every flow, through windows the engine
 * ran on its decoding threads (the day's 4,320 flows are over four caps:
 * split), with the query's cancel flag and a deadline; the window that
 * failed once was asked again. */
static void test_window_run(void **state)
{
	struct fixture *fx = *state;
	atomic_int cancel = 0;
	struct one_query oq = {.fx = fx, .ip = "10.9.0.1"};

	memset(&fake, 0, sizeof(fake));
	fake.cancel = &cancel;
	oq.e = fake_engine(fx, "fake", oq.dir);
	assert_string_equal(fetch_engine_driver(oq.e), "fake");
	assert_string_equal(fetch_engine_identity(oq.e).url, "fake:/archive");
	oq.cancel = &cancel;
	run_query(&oq);
	if (oq.rc)
		fail_msg("%s", oq.err);
	assert_true(oq.res.complete);
	assert_int_equal(oq.rows, CACHE_DAY_MS / FAKE_STEP_MS);
	assert_true(oq.res.windows > 4);	/* full windows were split */
	assert_int_equal(oq.res.retries, 1);
	assert_int_equal(atomic_load(&fake.runs), (int)oq.res.requests);
	assert_int_equal(atomic_load(&fake.off_decoder), 0);
	assert_int_equal(atomic_load(&fake.bad_deadline), 0);
	assert_int_equal(atomic_load(&fake.bad_cancel), 0);
	assert_int_equal(oq.res.held_peak <= oq.res.held_max, 1);
	fetch_engine_close(oq.e);
}

/* The query's cancel flag reaches a window being run: the driver returns
 * -ECANCELED and the query ends interrupted, nothing left running. */
static void test_window_run_cancel(void **state)
{
	struct fixture *fx = *state;
	atomic_int cancel = 0;
	struct one_query oq = {.fx = fx, .ip = "10.9.0.2"};
	pthread_t th;

	memset(&fake, 0, sizeof(fake));
	fake.cancel = &cancel;
	atomic_store(&fake.block, 1);
	oq.e = fake_engine(fx, "fake-cancel", oq.dir);
	oq.cancel = &cancel;
	assert_int_equal(pthread_create(&th, NULL, run_query, &oq), 0);
	while (!atomic_load(&fake.blocked)) {
		struct timespec ms = {0, 1000000};
		nanosleep(&ms, NULL);
	}
	atomic_store(&cancel, 1);
	pthread_join(th, NULL);
	assert_int_equal(oq.rc, -ECANCELED);
	assert_false(oq.res.complete);
	assert_int_equal(atomic_load(&fake.off_decoder), 0);
	assert_int_equal(atomic_load(&fake.bad_cancel), 0);
	fetch_engine_close(oq.e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_held_one_query),
		cmocka_unit_test(test_held_shared),
		cmocka_unit_test(test_window_run),
		cmocka_unit_test(test_window_run_cancel),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
