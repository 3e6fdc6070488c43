/*
 * engine.c - one query, from missing intervals to stored windows.
 *
 * Three kinds of threads cooperate, because a cold query is CPU-bound and
 * the work splits cleanly (docs/design.md, "The engine": cJSON is the ceiling, about
 * 100,000 records/s a core, and SQLite inserts in key order are faster):
 *
 *   the calling thread   runs libcurl's multi loop and the planner; it never
 *                        parses JSON and never touches SQLite
 *   decoding threads     turn answers into records (cJSON, Community ID);
 *                        for a driver without HTTP they run its windows
 *                        (window_run), the calling thread only waiting
 *   one store thread     writes each answer's records, and its coverage when
 *                        the answer closed its window, in one transaction
 *   with a shared cache, one more store thread before it (pgput_main):
 *                        each window committed to PostgreSQL first, then
 *                        handed on, so that PostgreSQL's commit of one window
 *                        overlaps the local store of the one before it
 *
 * Queues between them are bounded: when answers wait to be decoded or
 * stored, no new request is sent, so memory stays flat however large the
 * query.  Memory is bounded for a hostile collector too (issue 12): an
 * answer by the cap (body_max: max_records x the driver's largest record,
 * + 1 MiB), the answers of every query of the engine together by max_held
 * (a request in flight reserves its whole bound until it is answered, an
 * answer holds its buffer until it is decoded: no request is sent while
 * its bound does not fit), and a window's slot is reused once it is
 * answered.  An error anywhere stops the query; what was stored stays stored
 * (whole windows), so the next attempt fetches only what is missing.
 */
#include "arr.h"
#include "fetch_i.h"
#include "mtx.h"
#include "pg.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The smallest cap a collector is believed to have: an answer under it is
 * never taken for a cut one (see cap_ambiguous). */
#define CAP_SUSPECT_MIN 500

/* A request refused for its session is sent again with a new one this many
 * times for each window, then the window counts a failed attempt. */
#define AUTH_RESENDS 8

/* Answers waiting to be decoded or stored: enough to keep the decoding
 * threads busy, few enough that a crash loses little that was received. */
#define BACKLOG_MAX 4

/* An answer's room besides its records (the envelope, whitespace). */
#define BODY_SLACK ((size_t)1 << 20)

/* The bytes of answers every query of an engine may hold at once, by
 * default (fetch_opts.max_held). */
#define HELD_MAX_DEFAULT ((size_t)256 << 20)

/* The shared cache's sessions kept open between queries (more queries at
 * once open more, closed when they end). */
#define PG_IDLE_MAX 8

/* A query's attempts with a new session after the shared cache failed
 * (connection lost, claim lost), the n-th after n seconds. */
#define PG_ATTEMPTS 4

struct fetch_engine {
	char url[2048], cache_dir[2048], driver_name[32];
	char *token;			/* a copy, zeroed before it is freed */
	struct fetch_opts o;
	const struct fetch_driver *def;	/* the driver's line of the table */
	const struct driver_ops *ops;	/* def->ops */
	struct driver *drv;
	struct http *http;		/* the probe, lookups and logins (HTTP drivers) */
	pthread_mutex_t http_lock;	/* one user of 'http' at a time, after open */
	bool lock_ready;
	struct cache *cache;
	struct fetch_info info;
	_Atomic size_t cap_floor;	/* the most records any answer held */
	size_t body_max;		/* one answer of a query at most (from the cap) */
	size_t held_max;		/* the bytes all queries' answers may hold */
	_Atomic size_t held;		/* held now: reserved in flight, or received
					 * and not yet decoded (held_reserve) */
	/* The team's shared cache (o.cache_url, a copy; NULL: none).  Its
	 * sessions not in use: a query takes one (pg_take) and gives it back
	 * (pg_give); a session is used by one thread at a time (pg.h). */
	char *cache_url;
	struct mtx pg_lock;		/* guards pg_idle and npg_idle; no I/O under it */
	bool pg_lock_ready;
	struct cache_pg *pg_idle[PG_IDLE_MAX];
	size_t npg_idle;
};

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t mono_ms(void)
{
	return (int64_t)(mono_s() * 1000.0);
}

/* Is the URL's host a loopback address (where gzip only costs CPU)? */
static bool url_is_loopback(const char *url)
{
	const char *h = strstr(url, "://");

	h = h ? h + 3 : url;
	return strncmp(h, "127.", 4) == 0 || strncmp(h, "localhost", 9) == 0 ||
	       strncmp(h, "[::1]", 5) == 0;
}

/* Does the engine's driver keep a session (log in, sign, log out)? */
static bool has_sessions(const struct fetch_engine *e)
{
	return e->def->caps & FETCH_DRIVER_SESSIONS;
}

/* Does the engine's driver speak HTTP (else it runs windows itself)? */
static bool has_http(const struct fetch_engine *e)
{
	return e->def->caps & FETCH_DRIVER_HTTP;
}

/* Do the ops of a driver's line hold what its capabilities promise?  0,
 * or -EINVAL with the fault in err (a defect of the driver's line). */
static int driver_check(const struct fetch_driver *d, char *err)
{
	const struct driver_ops *o = d->ops;
	bool http = d->caps & FETCH_DRIVER_HTTP, sessions = d->caps & FETCH_DRIVER_SESSIONS;
	bool ok = o && o->open && o->close && o->granularity_ms > 0 && o->record_max > 0;

	if (ok && http)
		ok = o->info_ask && o->info_decode && o->lookup_ask && o->lookup_decode &&
		     o->window_first && o->window_next;
	if (ok && !http)
		ok = o->info_run && o->window_run && !sessions;
	if (ok)
		ok = sessions == (o->session && o->sign && o->logout);
	if (!ok) {
		snprintf(err, FETCH_ERRLEN, "driver %.32s: its ops do not match its capabilities",
			 d->name);
		return -EINVAL;
	}
	return 0;
}

/* Fetch one lookup table into the cache (best effort: names are a comfort,
 * ids are still shown without them). */
static void fetch_lookup(struct fetch_engine *e, enum cache_table t)
{
	struct http_ask a;
	struct http_resp r;
	struct cache_lookup *rows = NULL;
	size_t n = 0;
	char err[FETCH_ERRLEN];

	if (!has_http(e)) {
		if (e->ops->lookup_run && e->ops->lookup_run(e->drv, t, &rows, &n, err) == 0)
			cache_put_lookup(e->cache, t, rows, n, wall_ms(), NULL);
		free(rows);
		return;
	}
	if (e->ops->lookup_ask(e->drv, t, &a) != 1)
		return;
	if (has_sessions(e))
		e->ops->sign(e->drv, &a);
	if (http_get_retry(e->http, &a, 2, &r, err))
		return;
	if (e->ops->lookup_decode(e->drv, t, r.body, r.len, &rows, &n, err) == 0)
		cache_put_lookup(e->cache, t, rows, n, wall_ms(), NULL);
	free(rows);
	http_resp_free(&r);
}

int fetch_global_init(void)
{
	fetch_json_init_hooks();
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

void fetch_versions(char *buf, size_t len)
{
	const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

	snprintf(buf, len, "libcurl %s, SQLite %s", cv ? cv->version : "?",
		 cache_sqlite_version());
}

/* A new HTTP client with the engine's options, its answers bounded by
 * max_body bytes.  0, or -ENOMEM with the cause in err. */
static int engine_http(struct fetch_engine *e, size_t max_body, struct http **out, char *err)
{
	struct http_opts ho = {
		.token = has_sessions(e) ? NULL : e->o.token, .max_inflight = e->o.max_inflight,
		.connect_timeout_ms = e->o.connect_timeout_ms, .stall_s = e->o.stall_s,
		.request_timeout_ms = e->o.request_timeout_ms,
		.compress = e->o.compress > 0 || (e->o.compress < 0 && !url_is_loopback(e->url)),
		.insecure = e->o.insecure, .ca_file = e->o.ca_file, .max_body = max_body,
		.ops = e->ops, .drv = e->drv,
	};
	return http_new(&ho, out, err);
}

/*
 * The shared cache's options: the connection string copied (e->cache_url,
 * NULL when none is given), the heartbeat and expiry defaulted and the
 * expiry checked against the heartbeat.  0, or -EINVAL/-ENOMEM with err.
 */
static int engine_take_pg_opts(struct fetch_engine *e, const struct fetch_opts *o, char *err)
{
	mtx_init(&e->pg_lock);
	e->pg_lock_ready = true;
	e->o.cache_url = NULL;
	if (!o->cache_url)
		return 0;
	if (!o->cache_url[0]) {
		snprintf(err, FETCH_ERRLEN, "cache_url is empty: give a PostgreSQL connection "
			 "string (postgresql://user@host/db), or no cache_url");
		return -EINVAL;
	}
	if (cache_pg_has_secret(o->cache_url)) {
		snprintf(err, FETCH_ERRLEN, "cache_url gives a password: it would be seen by "
			 "every user (ps) and kept in the shell's history; put it in ~/.pgpass "
			 "(or the file PGPASSFILE names) or a service in pg_service.conf");
		return -EINVAL;
	}
	if (!(e->cache_url = strdup(o->cache_url))) {
		snprintf(err, FETCH_ERRLEN, "out of memory");
		return -ENOMEM;
	}
	e->o.cache_url = e->cache_url;
	if (!e->o.pg_heartbeat_s)
		e->o.pg_heartbeat_s = FETCH_PG_HEARTBEAT_DEF;
	if (!e->o.pg_expiry_s)
		e->o.pg_expiry_s = FETCH_PG_EXPIRY_DEF;
	if (e->o.pg_expiry_s <= e->o.pg_heartbeat_s) {
		snprintf(err, FETCH_ERRLEN, "pg_expiry %d is not more than pg_heartbeat %d: a "
			 "session would expire between its heartbeats", e->o.pg_expiry_s,
			 e->o.pg_heartbeat_s);
		return -EINVAL;
	}
	return 0;
}

/*
 * The options o copied into e, checked, and their defaults filled in (the
 * FETCH_*_DEF of fetch.h, the fronts' defaults too), the driver resolved:
 * 0, or -EINVAL/-ENOMEM with the cause in err (e is then closed by the
 * caller).
 */
static int engine_take_opts(struct fetch_engine *e, const struct fetch_opts *o, char *err)
{
	int rc;

	e->o = *o;
	if (!o->url || strlen(o->url) >= sizeof(e->url) || !o->cache_dir ||
	    strlen(o->cache_dir) >= sizeof(e->cache_dir)) {
		snprintf(err, FETCH_ERRLEN, "the URL or the cache path is missing or too long");
		return -EINVAL;
	}
	if (o->token && strnlen(o->token, FETCH_TOKEN_MAX + 1) > FETCH_TOKEN_MAX) {
		snprintf(err, FETCH_ERRLEN,
			 "the token is %zu bytes long; at most %d (16 KiB) are accepted, and a "
			 "token is never cut", strlen(o->token), FETCH_TOKEN_MAX);
		return -EINVAL;
	}
	if (o->max_records && o->max_records < FETCH_CAP_MIN) {
		snprintf(err, FETCH_ERRLEN,
			 "max_records %u (-o max_records, --max-records) is under %d, the smallest "
			 "cap flowfs works with", o->max_records, FETCH_CAP_MIN);
		return -EINVAL;
	}
	/* the driver, and the URL it is given ("sna+https://m": https://m) */
	const char *turl = o->url;
	if (o->driver_def)
		e->def = o->driver_def;
	else if ((rc = fetch_driver_resolve(o->url, o->driver, &e->def, &turl, err)))
		return rc;
	if ((rc = driver_check(e->def, err)))
		return rc;
	e->ops = e->def->ops;
	strcpy(e->url, turl);
	pthread_mutex_init(&e->http_lock, NULL);
	e->lock_ready = true;
	strcpy(e->cache_dir, o->cache_dir);
	if (o->token && !(e->token = strdup(o->token))) {
		snprintf(err, FETCH_ERRLEN, "out of memory");
		return -ENOMEM;
	}
	e->o.url = e->url;
	e->o.cache_dir = e->cache_dir;
	e->o.token = o->token ? e->token : NULL;
	if (!e->o.max_inflight)
		e->o.max_inflight = FETCH_MAX_INFLIGHT_DEF;
	if (!e->o.connect_timeout_ms)
		e->o.connect_timeout_ms = FETCH_CONNECT_TIMEOUT_DEF * 1000L;
	if (!e->o.stall_s)
		e->o.stall_s = FETCH_STALL_TIMEOUT_DEF;
	if (!e->o.request_timeout_ms)
		e->o.request_timeout_ms = FETCH_REQUEST_TIMEOUT_DEF * 1000L;
	if (!e->o.max_retries)
		e->o.max_retries = FETCH_RETRIES_DEF;
	if (!e->o.max_records)	/* a driver without a cap says its own */
		e->o.max_records = e->ops->window_records ? e->ops->window_records
							  : FETCH_MAX_RECORDS_DEF;
	if (!e->o.max_body)
		e->o.max_body = (size_t)256 << 20;
	if (!e->o.decode_threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		e->o.decode_threads = n > 0 && n < 16 ? (unsigned)n : 2;
	}
	snprintf(e->driver_name, sizeof(e->driver_name), "%s", e->def->name);
	e->o.driver = e->driver_name;
	return engine_take_pg_opts(e, o, err);
}

/*
 * The probe over HTTP: a login for a driver with sessions, then its /info
 * (twice at most), decoded into e->info.  0, or -errno with err naming the
 * collector and the cause.
 */
static int engine_probe_http(struct fetch_engine *e, char *err)
{
	struct http_ask a;
	struct http_resp r;
	char why[FETCH_ERRLEN];
	int rc;

	/* the probe, the lookup tables and the logins: answers whose size
	 * the cap does not bound (one at a time) */
	rc = engine_http(e, e->o.max_body, &e->http, err);
	if (rc)
		return rc;
	/* is there a collector, and does it take the credentials? */
	if (has_sessions(e)) {
		rc = e->ops->session(e->drv, e->http, 0, err);
		if (rc)
			goto named;
	}
	e->ops->info_ask(e->drv, &a);
	if (has_sessions(e))
		e->ops->sign(e->drv, &a);
	rc = http_get_retry(e->http, &a, 2, &r, err);
	if (rc)
		goto named;
	rc = e->ops->info_decode(e->drv, r.body, r.len, &e->info, err);
	http_resp_free(&r);
	return rc;
named:
	snprintf(why, sizeof(why), "%s", err);
	snprintf(err, FETCH_ERRLEN, "the collector at %.200s: %.270s", e->url, why);
	return rc;
}

/*
 * What the probe's answer sets: the cap (the collector's, or the option),
 * refused under FETCH_CAP_MIN with -EPROTO and err; an answer's bound and
 * the engine's; the collector's clock.
 */
static int engine_bounds(struct fetch_engine *e, const struct fetch_opts *o, char *err)
{
	e->info.probed_at_ms = wall_ms();
	if (!e->info.max_records)
		e->info.max_records = e->o.max_records;
	if (e->info.max_records < FETCH_CAP_MIN) {
		/* a day of a busy host would be millions of windows */
		snprintf(err, FETCH_ERRLEN,
			 "the collector at %.200s says max_records %u: under %d, the smallest cap "
			 "flowfs works with", e->url, e->info.max_records, FETCH_CAP_MIN);
		return -EPROTO;
	}
	uint64_t bound = (uint64_t)e->info.max_records * e->ops->record_max + BODY_SLACK;
	e->body_max = bound < e->o.max_body ? (size_t)bound : e->o.max_body;
	e->held_max = e->o.max_held ? e->o.max_held : HELD_MAX_DEFAULT;
	if (e->held_max < e->body_max)
		e->held_max = e->body_max;	/* one answer always fits */
	if (o->max_records)	/* the user's word on the cap is no guess */
		e->info.cap_assumed = false;
	if (!e->info.now_ms)
		e->info.now_ms = e->info.probed_at_ms;
	return 0;
}

/* The collector's cache opened, and its lookup tables fetched when
 * missing or older than a day (a failed lookup is logged, not fatal):
 * 0, or cache_open's -errno with err. */
static int engine_cache_open(struct fetch_engine *e, char *err)
{
	struct cache_identity id = fetch_engine_identity(e);
	char cerr[CACHE_ERRLEN];
	int rc = cache_open(e->cache_dir, &id, &e->cache, cerr);

	if (rc) {
		snprintf(err, FETCH_ERRLEN, "%s", cerr);
		return rc;
	}
	for (int t = 0; t < CACHE_NTABLES; t++) {
		int64_t at = 0;
		if (cache_lookup_age(e->cache, (enum cache_table)t, &at, NULL) == 0 &&
		    at > wall_ms() - CACHE_DAY_MS)
			continue;
		fetch_lookup(e, (enum cache_table)t);
	}
	return 0;
}

/*
 * A new session of the shared cache (cache_pg_open with the engine's
 * options): 0 with *out, or its -errno with err "the shared cache: ...",
 * which names the target without its secrets.
 */
static int pg_new(struct fetch_engine *e, struct cache_pg **out, char *err)
{
	struct cache_identity id = fetch_engine_identity(e);
	struct cache_pg_opts po = {
		.heartbeat_s = e->o.pg_heartbeat_s, .expiry_s = e->o.pg_expiry_s,
		.connect_timeout_s = (int)(e->o.connect_timeout_ms / 1000),
	};
	char cerr[CACHE_ERRLEN];
	int rc = cache_pg_open(e->cache_url, &id, &po, out, cerr);

	if (rc)
		snprintf(err, FETCH_ERRLEN, "the shared cache: %s", cerr);
	return rc;
}

/* A session for one query: an idle one, or a new one (pg_new's errors).
 * Never called with pg_lock held (it may connect). */
static int pg_take(struct fetch_engine *e, struct cache_pg **out, char *err)
{
	mtx_assert_not_held(&e->pg_lock);
	*out = NULL;
	mtx_lock(&e->pg_lock);
	if (e->npg_idle)
		*out = e->pg_idle[--e->npg_idle];
	mtx_unlock(&e->pg_lock);
	if (*out && !cache_pg_lost(*out))
		return 0;
	cache_pg_close(*out);	/* expired while idle: of no use */
	return pg_new(e, out, err);
}

/* A query's session given back: kept idle when it is sound (ok) and there
 * is room, else closed (its unfinished claims freed).  NULL: nothing. */
static void pg_give(struct fetch_engine *e, struct cache_pg *p, bool ok)
{
	if (!p)
		return;
	if (ok && !cache_pg_lost(p)) {
		mtx_lock(&e->pg_lock);
		if (e->npg_idle < PG_IDLE_MAX) {
			e->pg_idle[e->npg_idle++] = p;
			p = NULL;
		}
		mtx_unlock(&e->pg_lock);
	}
	cache_pg_close(p);
}

int fetch_engine_open(const struct fetch_opts *o, struct fetch_engine **out, char *err)
{
	struct fetch_engine *e = calloc(1, sizeof(*e));
	int rc;

	if (!e)
		return -ENOMEM;
	if ((rc = engine_take_opts(e, o, err)))
		goto fail;
	if ((rc = e->ops->open(&e->drv, &e->o, err)))
		goto fail;
	if (has_http(e))
		rc = engine_probe_http(e, err);
	else
		rc = e->ops->info_run(e->drv, &e->info, err);
	if (rc || (rc = engine_bounds(e, o, err)) || (rc = engine_cache_open(e, err)))
		goto fail;
	if (e->cache_url) {	/* refused here, at the start, when unusable */
		struct cache_pg *p;
		if ((rc = pg_new(e, &p, err)))
			goto fail;
		pg_give(e, p, true);
	}
	*out = e;
	return 0;
fail:
	fetch_engine_close(e);
	return rc;
}

void fetch_engine_close(struct fetch_engine *e)
{
	if (!e)
		return;
	if (e->cache)
		cache_close(e->cache);
	if (e->drv && e->http && has_sessions(e))
		e->ops->logout(e->drv, e->http);	/* sessions do not pile up */
	http_free(e->http);
	if (e->drv)
		e->ops->close(e->drv);
	if (e->lock_ready)
		pthread_mutex_destroy(&e->http_lock);
	while (e->npg_idle)	/* no query runs any more */
		cache_pg_close(e->pg_idle[--e->npg_idle]);
	if (e->pg_lock_ready)
		mtx_destroy(&e->pg_lock);
	free(e->cache_url);
	if (e->token)
		explicit_bzero(e->token, strlen(e->token));
	free(e->token);
	free(e);
}

const struct fetch_info *fetch_engine_info(const struct fetch_engine *e)
{
	return &e->info;
}

struct cache *fetch_engine_cache(struct fetch_engine *e)
{
	return e->cache;
}

struct cache_identity fetch_engine_identity(const struct fetch_engine *e)
{
	struct cache_identity id = {e->url, e->info.product, e->def->name};
	return id;
}

const char *fetch_engine_driver(const struct fetch_engine *e)
{
	return e->def->name;
}

/* ---- a small blocking queue ------------------------------------------------ */

struct qitem {
	struct qitem *next;
};

struct queue {
	pthread_mutex_t m;
	pthread_cond_t c;
	struct qitem *head, *tail;
	size_t len;
	bool closed;
};

static void q_init(struct queue *q)
{
	memset(q, 0, sizeof(*q));
	pthread_mutex_init(&q->m, NULL);
	pthread_cond_init(&q->c, NULL);
}

static void q_destroy(struct queue *q)
{
	pthread_mutex_destroy(&q->m);
	pthread_cond_destroy(&q->c);
}

static void q_push(struct queue *q, struct qitem *it)
{
	it->next = NULL;
	pthread_mutex_lock(&q->m);
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->len++;
	pthread_cond_signal(&q->c);
	pthread_mutex_unlock(&q->m);
}

/* Take the first item; block when 'wait', NULL when empty (or closed). */
static struct qitem *q_pop(struct queue *q, bool wait)
{
	struct qitem *it;

	pthread_mutex_lock(&q->m);
	while (wait && !q->head && !q->closed)
		pthread_cond_wait(&q->c, &q->m);
	it = q->head;
	if (it) {
		q->head = it->next;
		if (!q->head)
			q->tail = NULL;
		q->len--;
	}
	pthread_mutex_unlock(&q->m);
	return it;
}

static void q_close(struct queue *q)
{
	pthread_mutex_lock(&q->m);
	q->closed = true;
	pthread_cond_broadcast(&q->c);
	pthread_mutex_unlock(&q->m);
}

static size_t q_len(struct queue *q)
{
	pthread_mutex_lock(&q->m);
	size_t n = q->len;
	pthread_mutex_unlock(&q->m);
	return n;
}

/* ---- one query ------------------------------------------------------------ */

struct decode_job {
	struct qitem link;
	uint64_t tag;
	/* a window a driver without HTTP runs (window_run): its request and
	 * cap, instead of an answer to decode */
	bool run;
	struct plan_req req;
	uint32_t limit;
	struct http_resp resp;
	struct driver_win dw;		/* the window's notes, back and forth */
	struct http_ask next;		/* rc 1: the exchange's next request */
	struct decoded out;
	size_t held;			/* resp's bytes in the engine's count (held) */
	int rc;
	char err[FETCH_ERRLEN];
	double seconds;
};

struct store_job {
	struct qitem link;
	struct flow_rec *recs;
	size_t n;
	bool has_cover, has_gap;
	struct cache_cover cover;
	struct cache_gap gap;
	struct cache_ival span;	/* records without cover: their window */
};

/* A window being asked. */
struct win {
	struct plan_req req;
	unsigned attempts;
	int64_t due;		/* mono ms when it may be (re)sent */
	bool queued;		/* waits in the retry list */
	struct driver_win dw;	/* the driver's notes on the exchange */
	struct http_ask *pending;	/* mid-exchange: the next request (else NULL) */
	char *pending_body;
	bool midway;		/* the answer awaited is not the exchange's first */
	bool resend;		/* 'pending' is the request refused for its session */
	unsigned auth_resends;
	uint64_t sent_gen;	/* the session its request was signed with */
	uint64_t next_free;	/* answered: the next free slot (free list) */
};

struct run {
	struct fetch_engine *e;
	struct http *http;	/* this query's own client and connections */
	struct cache *cache;	/* this thread's connection */
	const struct cache_query *q;
	struct fetch_progress *prog;
	struct fetch_result *res;
	struct plan *plan;
	struct win *wins;	/* indexed by tag; answered ones are reused */
	size_t nwins, capwins;
	uint64_t free_wins;	/* a free slot's tag + 1 (its next_free likewise), 0: none */
	size_t reserved;	/* requests in flight, each holding body_max of 'held' */
	size_t held_peak;	/* the most 'held' seen at this query's reservations */
	uint64_t *retry;	/* wins waiting to be resent */
	size_t nretry, capretry;
	int64_t hold_asked;	/* no new window before this (mono ms): a 429's Retry-After */
	int64_t hold_backoff;	/* nor before a failure's backoff, until an answer comes */
	/* dq_in: answers to decode; dq_out: decoded; pq: windows for the
	 * shared cache (a pass with r->pg only), which its thread hands on to
	 * sq once they are committed there; sq: windows for the local cache */
	struct queue dq_in, dq_out, pq, sq;
	pthread_t *decoders, pgputter, storer;
	unsigned ndecoders;
	bool pgputter_up, storer_up;
	unsigned decoding;	/* jobs handed to decoders, not yet back */
	unsigned running;	/* of them, windows run by a driver without HTTP */
	const atomic_int *cancel;	/* the query's, given to window_run */
	pthread_mutex_t statm;
	double decode_s, store_s;
	/* The first failure of the store threads (the shared cache's and the
	 * local one's), 0 while none.  store_failed writes them under statm,
	 * store_err first and then store_rc with release order, only while
	 * store_rc is 0; another thread reads store_err only after an acquire
	 * load of store_rc found it non-zero. */
	atomic_int store_rc;
	char store_err[FETCH_ERRLEN];
	int64_t collector_now;
	/* Windows whose complete answer held records that were rejected
	 * (malformed, or outside the question): recorded as gaps, and no
	 * coverage over them is stored, not even a parent's. */
	struct cache_ivals taint;
	uint64_t rng;
	char send_err[FETCH_ERRLEN];	/* why a request could not be sent, when known */
	/* The shared cache's session of this query (NULL: none, or a pass
	 * that stores only here).  Between passes the calling thread uses it;
	 * during a pass only the shared cache's store thread (pgput_main)
	 * does (its creation and join order the two).  pg_failed: the
	 * failure came from the shared cache (written by that thread, read
	 * after its join). */
	struct cache_pg *pg;
	bool pg_failed;
};

/*
 * Reserve n bytes of the engine's budget (held_max) for an answer: true
 * when they fit, and then counted in 'held' until held_release.  Atomic
 * over every query of the engine, so 'held' never exceeds held_max.
 */
static bool held_reserve(struct run *r, size_t n)
{
	struct fetch_engine *e = r->e;
	size_t cur = atomic_load(&e->held);

	do {
		if (n > e->held_max - cur)
			return false;
	} while (!atomic_compare_exchange_weak(&e->held, &cur, cur + n));
	if (cur + n > r->held_peak)
		r->held_peak = cur + n;
	return true;
}

/* Give n bytes of the budget back (any thread). */
static void held_release(struct fetch_engine *e, size_t n)
{
	if (n)
		atomic_fetch_sub(&e->held, n);
}

static void *decoder_main(void *arg)
{
	struct run *r = arg;
	struct qitem *it;

	pthread_setname_np(pthread_self(), "flow-decode");
	while ((it = q_pop(&r->dq_in, true))) {
		struct decode_job *j = (struct decode_job *)it;
		double t0 = mono_s();
		if (j->run)
			j->rc = r->e->ops->window_run(r->e->drv, r->q, &j->req, j->limit, r->cancel,
						      mono_ms() + r->e->o.request_timeout_ms, &j->out,
						      j->err);
		else
			j->rc = r->e->ops->window_next(r->e->drv, &j->resp, &j->dw, &j->next, &j->out,
						       j->err);
		http_resp_free(&j->resp);
		held_release(r->e, j->held);	/* room for another answer (run_loop polls) */
		j->held = 0;
		/* sorted here, on the decoding threads, not on the one store thread */
		if (j->rc == 0 && j->out.n > 1 && !j->out.sampled)
			qsort(j->out.recs, j->out.n, sizeof(*j->out.recs), cache_rec_cmp);
		j->seconds = mono_s() - t0;
		q_push(&r->dq_out, &j->link);
		http_wakeup(r->http);
	}
	fetch_json_thread_done();
	return NULL;
}

/* On a store thread: publish its failure 'rc' with the message 'what'
 * 'cerr' for the calling thread, unless one was published already (the
 * first cause is the one told; store_rc's comment says how). */
static void store_failed(struct run *r, int rc, const char *what, const char *cerr)
{
	pthread_mutex_lock(&r->statm);
	if (!atomic_load_explicit(&r->store_rc, memory_order_relaxed)) {
		snprintf(r->store_err, sizeof(r->store_err), "%s%s", what, cerr);
		atomic_store_explicit(&r->store_rc, rc, memory_order_release);
	}
	pthread_mutex_unlock(&r->statm);
}

/* A store job's memory, given back. */
static void store_job_free(struct store_job *j)
{
	free(j->recs);
	free(j);
}

/* On the shared cache's store thread: a job into it, inside this session's
 * claim (records without cover checked against their window).  0, or
 * cache_pg_put_*'s -errno with cerr. */
static int store_shared(struct run *r, const struct store_job *j, char *cerr)
{
	struct cache_query wq = *r->q;

	if (j->has_gap)
		return cache_pg_put_gap(r->pg, r->q, &j->gap, cerr);
	if (!j->has_cover) {
		wq.start = j->span.start;
		wq.end = j->span.end;
	}
	return cache_pg_put_window(r->pg, &wq, j->recs, j->n, j->has_cover ? &j->cover : NULL,
				   cerr);
}

/*
 * The shared cache's store thread (a pass with r->pg): each job written
 * to PostgreSQL (store_shared: its own transaction, inside this session's
 * claim), and only once committed there handed on to the local store
 * thread, so that the two caches are written at once, each on its own
 * window, and the local cache never holds a window the team lacks.
 * After a failure (its own or the local store's) jobs are dropped.
 */
static void *pgput_main(void *arg)
{
	struct run *r = arg;
	struct qitem *it;
	char cerr[CACHE_ERRLEN];

	pthread_setname_np(pthread_self(), "flow-pgput");
	while ((it = q_pop(&r->pq, true))) {
		struct store_job *j = (struct store_job *)it;
		int rc = atomic_load_explicit(&r->store_rc, memory_order_acquire);
		if (!rc && (rc = store_shared(r, j, cerr))) {
			r->pg_failed = true;
			store_failed(r, rc, "the shared cache: ", cerr);
		}
		if (rc) {
			store_job_free(j);
			http_wakeup(r->http);	/* the loop sees the failure */
		} else {
			q_push(&r->sq, &j->link);
		}
	}
	return NULL;
}

/* The local store thread: each job into this thread's own connection to
 * the local cache; after a failure (its own or the shared cache's) jobs
 * are dropped. */
static void *storer_main(void *arg)
{
	struct run *r = arg;
	struct cache *c = NULL;
	struct qitem *it;
	char cerr[CACHE_ERRLEN];
	struct cache_identity id = fetch_engine_identity(r->e);
	int rc = cache_open(r->e->cache_dir, &id, &c, cerr);

	pthread_setname_np(pthread_self(), "flow-store");
	if (rc)
		store_failed(r, rc, "", cerr);
	while ((it = q_pop(&r->sq, true))) {
		struct store_job *j = (struct store_job *)it;
		double t0 = mono_s();
		if (!atomic_load_explicit(&r->store_rc, memory_order_acquire)) {
			if (j->has_gap)
				rc = cache_put_gap(c, r->q, &j->gap, cerr);
			else
				rc = cache_put_window(c, r->q, j->recs, j->n,
						      j->has_cover ? &j->cover : NULL, cerr);
			if (rc) {
				store_failed(r, rc, "the cache: ", cerr);
				http_wakeup(r->http);
			}
		}
		pthread_mutex_lock(&r->statm);
		r->store_s += mono_s() - t0;
		pthread_mutex_unlock(&r->statm);
		store_job_free(j);
		http_wakeup(r->http);	/* room in the backlog: send more */
	}
	if (c)
		cache_close(c);
	return NULL;
}

/*
 * A slot for a new window: a free one (an answered window's) first, so
 * that the array grows to the windows under way at once, not to every
 * window of the query (a cap of 100 made a busy day 200,000 windows of
 * 4 KiB each).  0 with *tag, or -ENOMEM.
 */
static int win_add(struct run *r, const struct plan_req *req, uint64_t *tag)
{
	if (r->free_wins) {
		*tag = r->free_wins - 1;
		r->free_wins = r->wins[*tag].next_free;
		memset(&r->wins[*tag], 0, sizeof(r->wins[0]));
		r->wins[*tag].req = *req;
		return 0;
	}
	if (arr_grow(&r->wins, &r->capwins, r->nwins + 1, sizeof(*r->wins)))
		return -ENOMEM;
	memset(&r->wins[r->nwins], 0, sizeof(r->wins[0]));
	r->wins[r->nwins].req = *req;
	*tag = r->nwins++;
	return 0;
}

static int retry_add(struct run *r, uint64_t tag, int64_t delay_ms)
{
	if (arr_grow(&r->retry, &r->capretry, r->nretry + 1, sizeof(*r->retry)))
		return -ENOMEM;
	r->wins[tag].due = mono_ms() + delay_ms;
	r->wins[tag].queued = true;
	r->retry[r->nretry++] = tag;
	return 0;
}

/* The driver's memory for an exchange that ends without its records
 * (driver_win.priv): given back to the driver, once. */
static void dw_drop(struct fetch_engine *e, struct driver_win *dw)
{
	if (dw->priv && e->ops->window_drop)
		e->ops->window_drop(e->drv, dw);
	dw->priv = NULL;
}

/* Drop a window's exchange in progress: its next attempt starts anew. */
static void win_reset(struct win *w)
{
	free(w->pending);
	free(w->pending_body);
	w->pending = NULL;
	w->pending_body = NULL;
}

/* An answered window's slot, free for the next window (win_add); nothing
 * refers to its tag any more. */
static void win_free(struct run *r, uint64_t tag)
{
	win_reset(&r->wins[tag]);
	r->wins[tag].next_free = r->free_wins;
	r->free_wins = tag + 1;
}

/* Keep the next request of a window's exchange until it is sent. */
static int win_pend(struct win *w, const struct http_ask *a)
{
	win_reset(w);
	w->pending = malloc(sizeof(*w->pending));
	w->pending_body = a->body ? strdup(a->body) : NULL;
	if (!w->pending || (a->body && !w->pending_body)) {
		win_reset(w);
		return -ENOMEM;
	}
	*w->pending = *a;
	w->pending->body = w->pending_body;
	return 0;
}

/* A line for the front's log (fetch_opts.log), about the query whose
 * progress is prog (its log_tag goes with the line), at level (FETCH_LOG_*);
 * nothing when the front gave no callback. */
static void engine_log(struct fetch_engine *e, int level, const struct fetch_progress *prog,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void engine_log(struct fetch_engine *e, int level, const struct fetch_progress *prog,
		       const char *fmt, ...)
{
	char line[FETCH_ERRLEN];
	va_list ap;

	if (!e->o.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	e->o.log(e->o.log_arg, level, prog ? prog->log_tag : NULL, line);
}

/* The windows under way: requests in flight, or windows being run by a
 * driver without HTTP. */
static unsigned inflight(const struct run *r)
{
	return has_http(r->e) ? http_inflight(r->http) : r->running;
}

/*
 * A window of a driver without HTTP: handed to a decoding thread, which
 * runs it (window_run) and returns it like a decoded answer.  Its
 * reservation of the budget (body_max, in r->reserved) is kept until it
 * returns.  0 or -ENOMEM.
 */
static int run_win(struct run *r, uint64_t tag)
{
	struct decode_job *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->run = true;
	j->tag = tag;
	j->req = r->wins[tag].req;
	j->limit = r->e->info.max_records;
	/* as for an answer: a window the planner will split by time is
	 * sampled when full (struct decoded) */
	if (j->req.end - j->req.start > r->e->ops->granularity_ms)
		j->out.sample_at = r->e->info.max_records;
	j->out.limit = r->e->info.max_records;
	r->decoding++;
	r->running++;
	q_push(&r->dq_in, &j->link);
	return 0;
}

/* Send a window's first request, or the next one of its exchange, signed
 * with the current session; or, for a driver without HTTP, hand the
 * window to a decoding thread to run (run_win). */
static int send_win(struct run *r, uint64_t tag)
{
	struct win *w = &r->wins[tag];
	struct fetch_engine *e = r->e;
	struct http_ask a = {.auth_gen = 0};
	uint32_t limit = e->info.max_records;
	int rc = 0;

	bool follow = w->pending != NULL;

	if (!has_http(e)) {
		rc = run_win(r, tag);
		if (rc)
			snprintf(r->send_err, sizeof(r->send_err), "out of memory");
	} else if (follow) {
		a = *w->pending;
	} else {
		dw_drop(e, &w->dw);
		memset(&w->dw, 0, sizeof(w->dw));
		rc = e->ops->window_first(e->drv, r->q, &w->req, limit, &w->dw, &a);
	}
	if (!rc && has_sessions(e) && has_http(e)) {
		/* renew a session about to expire before it is refused */
		pthread_mutex_lock(&e->http_lock);
		rc = e->ops->session(e->drv, e->http, 0, r->send_err);
		pthread_mutex_unlock(&e->http_lock);
	}
	if (!rc && has_sessions(e))
		e->ops->sign(e->drv, &a);
	if (!rc && has_http(e))
		rc = http_submit(r->http, &a, tag);
	if (!rc) {
		w->sent_gen = a.auth_gen;
		if (!w->resend)
			w->midway = follow;
		w->resend = false;
		/* a dialect with sessions keeps the request, to send it again
		 * should the session be refused; http_submit copied the body */
		if (!has_sessions(e))
			win_reset(w);
		else if (!follow)
			rc = win_pend(w, &a);
	}
	if (!rc && r->prog)
		atomic_fetch_add(&r->prog->requests, 1);
	if (!rc)
		r->res->requests++;
	if (!rc && !follow && e->o.log) {
		char from[40], to[40], peer[64] = "any";
		cache_time_format(w->req.start, from, sizeof(from));
		cache_time_format(w->req.end, to, sizeof(to));
		if (w->req.has_peer)
			cache_prefix_format(&w->req.peer, peer, sizeof(peer));
		engine_log(e, FETCH_LOG_DEBUG, r->prog, "asked window %s to %s, peer %s%s, attempt %u",
			   from, to, peer, w->req.npeer_set > 1 ? " (and more)" : "",
			   w->attempts + 1);
	}
	return rc;
}

/* A failed exchange: schedule a retry, or give the query up.  A 429's
 * Retry-After holds the whole query, not only this window; so does a
 * failure's backoff until some answer comes through: a collector that
 * rate-limits us, or fails every request, gets no new windows meanwhile. */
static int failed(struct run *r, uint64_t tag, const struct http_resp *resp, int errnum,
		  const char *why, char *err)
{
	struct win *w = &r->wins[tag];
	unsigned bound = resp && resp->status == 429 ? r->e->o.max_retries * 3 : r->e->o.max_retries;

	win_reset(w);		/* the next attempt asks the whole window again */
	dw_drop(r->e, &w->dw);
	w->midway = false;

	if (resp && resp->status >= 500)
		r->res->http_5xx++;
	else if (resp && resp->status == 0)
		r->res->transport_errors++;
	if (++w->attempts > bound) {
		char from[40], to[40];
		cache_time_format(w->req.start, from, sizeof(from));
		cache_time_format(w->req.end, to, sizeof(to));
		snprintf(err, FETCH_ERRLEN, "window %s to %s failed %u times; last: %s", from, to,
			 w->attempts, why);
		return -(errnum ? errnum : EIO);
	}
	r->res->retries++;
	if (r->prog)
		atomic_fetch_add(&r->prog->retries, 1);
	int64_t delay = http_backoff_ms(resp, w->attempts, &r->rng);
	int64_t *hold = resp && resp->status == 429 ? &r->hold_asked : &r->hold_backoff;
	int rc = retry_add(r, tag, delay);
	/* the hold ends when the retry is due, not a millisecond before: in
	 * that millisecond a new window went out (CI saw 7 requests in the
	 * Retry-After of one window that may take 4) */
	if (!rc && w->due > *hold)
		*hold = w->due;
	return rc;
}

/* Hand the store thread records (their window 'span' when there is no
 * cover: the shared cache checks it against the claims), a cover or a gap.
 * 0 or -ENOMEM (recs freed). */
static int store_push(struct run *r, struct flow_rec *recs, size_t n, const struct plan_ev *cover,
		      const struct plan_ev *gap, const char *reason, const struct cache_ival *span)
{
	struct store_job *j = calloc(1, sizeof(*j));

	if (!j) {
		free(recs);
		return -ENOMEM;
	}
	j->recs = recs;
	j->n = n;
	if (span)
		j->span = *span;
	if (cover) {
		j->has_cover = true;
		j->cover.start = cover->start;
		j->cover.end = cover->end;
		j->cover.fetched_ms = wall_ms();
		j->cover.records = cover->records;
		j->cover.provisional = cover->end > r->collector_now - (int64_t)r->e->info.export_delay_s * 1000;
	}
	if (gap) {
		j->has_gap = true;
		j->gap.start = gap->start;
		j->gap.end = gap->end;
		j->gap.seen = gap->seen;
		cache_prefix_format(&gap->peer, j->gap.peer, sizeof(j->gap.peer));
		if (reason)
			snprintf(j->gap.reason, sizeof(j->gap.reason), "%s", reason);
		else
			snprintf(j->gap.reason, sizeof(j->gap.reason),
				 "more than %u records in %lld ms with the narrowest peer prefix",
				 r->e->info.max_records, (long long)(gap->end - gap->start));
	}
	/* with a shared cache, PostgreSQL first (pgput_main hands it on) */
	q_push(r->pgputter_up ? &r->pq : &r->sq, &j->link);
	return 0;
}

/*
 * Could this complete-looking answer have been cut by a cap lower than the
 * one assumed (a collector that does not publish its cap, and no cap given
 * by the user)?  Only when it holds as many records as the most any answer
 * held so far: a full answer of max_records proves that the cap is at least
 * that, and every answer under the largest seen is whole.  An ambiguous
 * answer is split like a full one, so a wrong guess costs requests, never
 * flows.  Updates the engine's floor.
 */
static bool cap_ambiguous(struct fetch_engine *e, size_t n)
{
	if (!e->info.cap_assumed)
		return false;
	size_t floor = atomic_load(&e->cap_floor);
	while (n > floor && !atomic_compare_exchange_weak(&e->cap_floor, &floor, n))
		;
	return n >= floor && n < e->info.max_records && n >= CAP_SUSPECT_MIN;
}

/* Does the request's peer filter hold address a (any address when the
 * request has none)? */
static bool asked_peer(const struct plan_req *rq, const uint8_t a[16])
{
	if (!rq->has_peer)
		return true;
	if (rq->npeer_set <= 1)
		return cache_prefix_contains(&rq->peer, a);
	for (size_t i = 0; i < rq->npeer_set; i++)
		if (cache_prefix_contains(&rq->peer_set[i], a))
			return true;
	return false;
}

/*
 * Is record f an answer to the question rq asked about q (issue 10)?  Its
 * start lies in the window as the driver could ask it (whole steps of its
 * granularity), or the flow overlaps that window (a collector that selects
 * by overlap, docs/collector-api.md); and one side lies in the subject with the
 * other side in the request's peer filter.  A collector that ignores its
 * filter answers records that fail this: they are never stored.
 */
static bool asked_for(const struct run *r, const struct plan_req *rq, const struct flow_rec *f)
{
	int64_t g = r->e->ops->granularity_ms;
	int64_t ws = rq->start - ((rq->start % g) + g) % g;
	int64_t we = rq->end + (g - ((rq->end % g) + g) % g) % g;
	const struct cache_prefix *subj = &r->q->subject;

	if (!((f->start_ms >= ws && f->start_ms < we) || (f->start_ms < we && f->end_ms >= ws)))
		return false;
	return (cache_prefix_contains(subj, f->src) && asked_peer(rq, f->dst)) ||
	       (cache_prefix_contains(subj, f->dst) && asked_peer(rq, f->src));
}

/* Drop the records of an answer that rq did not ask for; how many. */
static size_t drop_foreign(const struct run *r, const struct plan_req *rq, struct decoded *d)
{
	size_t k = 0;

	for (size_t i = 0; i < d->n; i++)
		if (asked_for(r, rq, &d->recs[i]))
			d->recs[k++] = d->recs[i];
	size_t dropped = d->n - k;
	d->n = k;
	return dropped;
}

/*
 * A complete answer that held rejected records (malformed, or foreign):
 * its window is not covered, so that the next query asks it again, and a
 * gap says why, so that this one reports it.  No coverage over the window
 * is stored later either (a peer split's slot, when its parts are done).
 */
static int taint(struct run *r, const struct plan_req *rq, size_t malformed, size_t foreign,
		 size_t inexact, const char *why)
{
	struct plan_ev gap = {.kind = PLAN_GAP, .start = rq->start, .end = rq->end,
			      .peer = rq->peer, .seen = (int64_t)(malformed + foreign + inexact)};
	char reason[128];

	if (!rq->has_peer)
		cache_prefix_parse(r->q->subject.v4 ? "0.0.0.0/0" : "::/0", &gap.peer);
	if (foreign)
		snprintf(reason, sizeof(reason),
			 "%zu records outside the question (window, subject or peer not asked)%s",
			 foreign, malformed ? ", and malformed ones" : "");
	else if (malformed)
		snprintf(reason, sizeof(reason), "%zu malformed records rejected: %.60s", malformed,
			 why);
	else
		snprintf(reason, sizeof(reason), "%zu records whose counts the collector sent "
			 "inexact (scaled): kept, the text in extra, the column empty", inexact);
	if (cache_ivals_add(&r->taint, rq->start, rq->end))
		return -ENOMEM;
	r->res->gaps++;
	if (r->prog)
		atomic_fetch_add(&r->prog->gaps, 1);
	return store_push(r, NULL, 0, NULL, &gap, reason, NULL);
}

/* Store records (n of them, or none) and a coverage event, less the
 * tainted windows inside it: in one transaction when no taint touches it
 * (always, but for a collector that sent rejected records). */
static int cover_push(struct run *r, const struct plan_ev *ev, struct flow_rec *recs, size_t n)
{
	struct cache_ivals left = {0};
	int rc;

	if (r->taint.n == 0)
		return store_push(r, recs, n, ev, NULL, NULL, NULL);
	rc = cache_ivals_subtract(&r->taint, ev->start, ev->end, &left);
	if (rc) {
		free(recs);
		return rc;
	}
	if (left.n == 1 && left.v[0].start == ev->start && left.v[0].end == ev->end) {
		cache_ivals_free(&left);
		return store_push(r, recs, n, ev, NULL, NULL, NULL);
	}
	struct cache_ival span = {ev->start, ev->end};
	rc = recs ? store_push(r, recs, n, NULL, NULL, NULL, &span) : 0;
	for (size_t i = 0; !rc && i < left.n; i++) {
		struct plan_ev part = *ev;
		part.start = left.v[i].start;
		part.end = left.v[i].end;
		part.records = 0;	/* the count was the whole window's */
		rc = store_push(r, NULL, 0, &part, NULL, NULL, NULL);
	}
	cache_ivals_free(&left);
	return rc;
}

/* The parts a driver asked a window in (decoded.parts), one line each,
 * after a line for the window: what "every part recorded" means. */
static void log_parts(struct run *r, const struct plan_req *q, const struct decoded *d)
{
	char from[40], to[40], peer[64] = "any";
	const char *p = d->parts;
	unsigned i = 0;

	cache_time_format(q->start, from, sizeof(from));
	cache_time_format(q->end, to, sizeof(to));
	if (q->has_peer)
		cache_prefix_format(&q->peer, peer, sizeof(peer));
	engine_log(r->e, FETCH_LOG_INFO, r->prog, "window %s to %s, peer %s: %zu records in %u "
		   "disjoint parts, each answered whole", from, to, peer, d->n, d->nparts);
	while (*p) {
		size_t len = strcspn(p, "\n");
		engine_log(r->e, FETCH_LOG_INFO, r->prog, "window %s part %u of %u: %.*s", from, ++i,
			   d->nparts, (int)len, p);
		p += len + (p[len] == '\n');
	}
}

/* A decoded answer: tell the planner, hand the records to the store. */
static int answered(struct run *r, struct decode_job *j, char *err)
{
	struct win *w = &r->wins[j->tag];
	struct plan_ev *ev = NULL;
	size_t nev = 0, foreign = drop_foreign(r, &w->req, &j->out) + j->out.foreign, n = j->out.n;
	int64_t *starts = malloc((n ? n : 1) * sizeof(*starts));
	uint8_t (*peers)[16] = malloc((n ? n : 1) * 16);
	const struct plan_ev *own = NULL;
	int rc;

	if (!starts || !peers) {
		free(starts);
		free(peers);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		starts[i] = j->out.recs[i].start_ms;
		memcpy(peers[i], plan_peer_of(&r->q->subject, j->out.recs[i].src, j->out.recs[i].dst), 16);
	}
	/* the planner counts what the collector answered, kept or not; an
	 * answer that may have met an unknown cap is treated as full */
	size_t answered_n = j->out.answered;
	if (cap_ambiguous(r->e, answered_n))
		answered_n = r->e->info.max_records;
	rc = plan_answer(r->plan, w->req.id, answered_n, n, starts,
			 (const uint8_t (*)[16])peers, &ev, &nev);
	free(starts);
	free(peers);
	if (rc) {
		snprintf(err, FETCH_ERRLEN, "the planner failed: %s", strerror(-rc));
		return rc;
	}
	/* A full answer's rejects are asked again in its parts: only a
	 * complete answer's count, and only it taints its window. */
	bool whole = answered_n < r->e->info.max_records;
	if (whole && j->out.parts)
		log_parts(r, &w->req, &j->out);
	size_t bad = whole ? j->out.rejected + foreign : 0;
	size_t inexact = whole ? j->out.inexact : 0;	/* stored, yet not covered */
	r->res->records += n;
	r->res->rejected += bad;
	r->res->foreign += whole ? foreign : 0;
	r->res->windows++;
	if (r->prog) {
		atomic_fetch_add(&r->prog->records, n);
		atomic_fetch_add(&r->prog->rejected, bad);
		atomic_fetch_add(&r->prog->windows_done, 1);
	}
	for (size_t i = 0; i < nev; i++)
		if (ev[i].kind == PLAN_COVER && ev[i].start == w->req.start && ev[i].end == w->req.end &&
		    !own && bad == 0 && inexact == 0)
			own = &ev[i];
	/* what the store is handed: the records of an answer that was not a
	 * sample (a tainted one's rejects are not among them) */
	bool kept = !j->out.sampled;
	rc = bad || inexact ? taint(r, &w->req, j->out.rejected, foreign, inexact, j->out.why) : 0;
	if (rc) {
		/* nothing stored of it */
	} else if (j->out.sampled) {
		/* the window's parts bring every record again, whole */
		decoded_free(&j->out);
		rc = own ? cover_push(r, own, NULL, 0) : 0;
	} else if (own) {
		rc = cover_push(r, own, j->out.recs, n);
		j->out.recs = NULL;
	} else {
		struct cache_ival span = {w->req.start, w->req.end};
		rc = store_push(r, j->out.recs, n, NULL, NULL, NULL, &span);
		j->out.recs = NULL;
	}
	if (!rc && kept && r->prog)
		atomic_fetch_add(&r->prog->flows, n);
	for (size_t i = 0; !rc && i < nev; i++) {
		if (&ev[i] == own)
			continue;
		if (ev[i].kind == PLAN_GAP) {
			r->res->gaps++;
			if (r->prog)
				atomic_fetch_add(&r->prog->gaps, 1);
			rc = store_push(r, NULL, 0, NULL, &ev[i], NULL, NULL);
		} else if (ev[i].start != w->req.start || ev[i].end != w->req.end ||
			   (bad == 0 && inexact == 0)) {
			rc = cover_push(r, &ev[i], NULL, 0);
		}
	}
	free(ev);
	if (rc)
		snprintf(err, FETCH_ERRLEN, "out of memory");
	return rc;
}

static void run_stop_threads(struct run *r)
{
	q_close(&r->dq_in);
	for (unsigned i = 0; i < r->ndecoders; i++)
		pthread_join(r->decoders[i], NULL);
	q_close(&r->pq);	/* drained into sq before its thread ends */
	if (r->pgputter_up)
		pthread_join(r->pgputter, NULL);
	q_close(&r->sq);
	if (r->storer_up)
		pthread_join(r->storer, NULL);
	struct qitem *it;
	while ((it = q_pop(&r->dq_out, false))) {
		struct decode_job *j = (struct decode_job *)it;
		dw_drop(r->e, &j->dw);	/* its exchange will not go on */
		decoded_free(&j->out);
		free(j);
	}
	while ((it = q_pop(&r->dq_in, false))) {
		struct decode_job *j = (struct decode_job *)it;
		dw_drop(r->e, &j->dw);
		http_resp_free(&j->resp);
		held_release(r->e, j->held);
		free(j);
	}
}

/* Send window 'tag' (send_win) within the engine's budget: 0 when sent,
 * 1 when its bound does not fit the budget now (nothing sent; an answer
 * being decoded will make room), or send_win's -errno. */
static int send_held(struct run *r, uint64_t tag)
{
	if (!held_reserve(r, r->e->body_max))
		return 1;
	int rc = send_win(r, tag);
	if (rc)
		held_release(r->e, r->e->body_max);
	else
		r->reserved++;
	return rc;
}

/*
 * Send what may be sent now: retries that are due first, then new
 * windows; not while answers wait to be decoded or stored (BACKLOG_MAX),
 * nor while the engine's answers fill its budget (other queries' decoders
 * free it without waking the loop: *next_due is then soon).  *next_due
 * is lowered to the next retry or hold that falls due.  0, or the -errno
 * of a request that could not be sent (err says it).
 */
static int send_due(struct run *r, int64_t now, int64_t *next_due, char *err)
{
	struct fetch_engine *e = r->e;
	bool backlog = r->decoding + q_len(&r->pq) + q_len(&r->sq) >= BACKLOG_MAX, full = false;
	int rc = 0;

	for (size_t i = 0; i < r->nretry && !backlog && !full &&
			   inflight(r) < e->o.max_inflight;) {
		uint64_t tag = r->retry[i];
		if (r->wins[tag].due > now) {
			if (r->wins[tag].due < *next_due)
				*next_due = r->wins[tag].due;
			i++;
			continue;
		}
		if ((rc = send_held(r, tag)) == 1) {
			full = true;
			break;
		}
		if (rc)
			goto send_failed;
		r->retry[i] = r->retry[--r->nretry];
		r->wins[tag].queued = false;
	}
	int64_t hold = r->hold_asked > r->hold_backoff ? r->hold_asked : r->hold_backoff;
	if (hold > now && hold < *next_due)
		*next_due = hold;
	while (!backlog && !full && now >= hold && inflight(r) < e->o.max_inflight) {
		struct plan_req req;
		uint64_t tag;
		/* the answer's room first, then the window */
		if (!held_reserve(r, e->body_max)) {
			full = true;
			break;
		}
		if (plan_next(r->plan, &req) != 0) {
			held_release(e, e->body_max);
			break;
		}
		if ((rc = win_add(r, &req, &tag)) || (rc = send_win(r, tag))) {
			held_release(e, e->body_max);
			goto send_failed;
		}
		r->reserved++;
	}
	if (full && now + 10 < *next_due)
		*next_due = now + 10;
	return 0;
send_failed:
	if (r->send_err[0])
		snprintf(err, FETCH_ERRLEN, "%s", r->send_err);
	else
		snprintf(err, FETCH_ERRLEN, "cannot send a request: %s", strerror(-rc));
	return rc;
}

/* A good answer handed to the decoding threads: 0, or -ENOMEM. */
static int decode_push(struct run *r, struct http_resp *resp)
{
	struct fetch_engine *e = r->e;
	struct decode_job *j = calloc(1, sizeof(*j));
	uint64_t tag = resp->tag;

	r->hold_backoff = 0;	/* the collector answers again */
	if (!j)
		return -ENOMEM;
	j->tag = tag;
	j->resp = *resp;
	j->held = resp->alloc;
	j->dw = r->wins[tag].dw;
	r->wins[tag].dw.priv = NULL;	/* the job's copy owns it now */
	win_reset(&r->wins[tag]);	/* answered: no resend */
	resp->body = NULL;
	/* a full answer of a window the planner will split by time is only
	 * its sample (see struct decoded) */
	const struct plan_req *rq = &r->wins[tag].req;
	if (rq->end - rq->start > e->ops->granularity_ms)
		j->out.sample_at = e->info.max_records;
	j->out.limit = e->info.max_records;	/* what it asked */
	r->decoding++;
	q_push(&r->dq_in, &j->link);
	return 0;
}

/*
 * The policy for a refused answer (401, 403, 404) before it is judged
 * fatal: *v may become HTTP_RETRY.  A 401 (or a Manager's 403, its XSRF
 * check as often as a refusal, issue 11) of a driver with sessions logs in
 * again, once for every request signed with the old session, and sends
 * the same request again, AUTH_RESENDS times a window, then counts a
 * failed attempt (so a search the account may not run fails like a window
 * that keeps failing, with the 403 named); a 404 of an exchange the
 * collector had begun (midway) is asked again.  1 when the request was
 * queued to be resent (nothing more to do), 0, or -errno with err (the
 * login failed, out of memory).
 */
static int refused_policy(struct run *r, const struct http_resp *resp, enum http_verdict *v,
			  char *err)
{
	struct fetch_engine *e = r->e;
	struct win *w = &r->wins[resp->tag];
	bool auth = resp->status == 401 || resp->status == 403;

	if (*v != HTTP_FATAL)
		return 0;
	if (auth && has_sessions(e)) {
		char lerr[FETCH_ERRLEN];
		pthread_mutex_lock(&e->http_lock);
		int rc = e->ops->session(e->drv, e->http, w->sent_gen, lerr);
		pthread_mutex_unlock(&e->http_lock);
		if (rc) {
			snprintf(err, FETCH_ERRLEN, "%s", lerr);
			return rc;
		}
		if (w->pending && w->auth_resends < AUTH_RESENDS) {
			w->auth_resends++;
			w->resend = true;	/* the same request, with the new session */
			if (retry_add(r, resp->tag, 0)) {
				snprintf(err, FETCH_ERRLEN, "out of memory");
				return -ENOMEM;
			}
			return 1;
		}
		*v = HTTP_RETRY;
	} else if (resp->status == 404 && w->midway) {
		*v = HTTP_RETRY;	/* the collector forgot an exchange it had begun */
	}
	return 0;
}

/* The answers that came back, judged: good ones to the decoders, refused
 * ones through refused_policy, failed ones retried (failed) or fatal.
 * Every answer is freed, and its bytes released unless a decoder holds
 * them.  0, or -errno with err. */
static int judge_answers(struct run *r, struct http_resp *done, size_t ndone, char *err)
{
	struct fetch_engine *e = r->e;
	int rc = 0;

	/* an answer holds its buffer of the bound it reserved, until it is
	 * decoded (the decoder releases it) or dropped (below) */
	for (size_t i = 0; i < ndone; i++) {
		r->reserved--;
		held_release(e, e->body_max - done[i].alloc);
	}
	for (size_t i = 0; i < ndone && !rc; i++) {
		int errnum = 0;
		char why[FETCH_ERRLEN];
		enum http_verdict v = http_judge(r->http, &done[i], &errnum, why, sizeof(why));

		if (r->prog)
			atomic_fetch_add(&r->prog->bytes, done[i].len);
		if (v == HTTP_OK) {
			rc = decode_push(r, &done[i]);
			continue;
		}
		rc = refused_policy(r, &done[i], &v, err);
		if (rc) {
			rc = rc == 1 ? 0 : rc;
			continue;
		}
		if (v == HTTP_FATAL) {
			if (done[i].status >= 400)
				r->res->http_4xx++;
			snprintf(err, FETCH_ERRLEN, "%s", why);
			rc = -errnum;
			break;
		}
		rc = failed(r, done[i].tag, &done[i], errnum, why, err);
	}
	for (size_t i = 0; i < ndone; i++) {
		if (done[i].body)	/* not handed to a decoder */
			held_release(e, done[i].alloc);
		http_resp_free(&done[i]);
	}
	free(done);
	return rc;
}

/* What the decoding threads finished: windows run (their reservation
 * released), exchanges going on, garbage or failed exchanges asked again,
 * answers stored (answered).  0, or -errno with err. */
static int take_decoded(struct run *r, char *err)
{
	struct fetch_engine *e = r->e;
	struct qitem *it;
	int rc = 0;

	while (!rc && (it = q_pop(&r->dq_out, false))) {
		struct decode_job *j = (struct decode_job *)it;
		r->decoding--;
		r->decode_s += j->seconds;
		if (j->run) {
			/* the window's reservation, held while it ran */
			r->running--;
			r->reserved--;
			held_release(e, e->body_max);
		}
		if (j->run && j->rc == -ETIMEDOUT)	/* past its deadline: asked again */
			rc = failed(r, j->tag, NULL, ETIMEDOUT, j->err, err);
		else if (j->rc == -ECANCELED)
			snprintf(err, FETCH_ERRLEN, "interrupted"), rc = j->rc;
		else if (j->rc == 1) {
			/* the exchange goes on: its next request, when due */
			struct win *w = &r->wins[j->tag];
			w->dw = j->dw;
			rc = win_pend(w, &j->next);
			if (!rc)
				rc = retry_add(r, j->tag, j->next.delay_ms);
			if (rc)
				snprintf(err, FETCH_ERRLEN, "out of memory");
		} else if (j->rc == -EBADMSG)	/* garbage: asked again, like a cut body */
			rc = failed(r, j->tag, NULL, EBADMSG, j->err, err);
		else if (j->rc == -EAGAIN)	/* the exchange failed: ask the window again */
			rc = failed(r, j->tag, NULL, EIO, j->err, err);
		else if (j->rc)
			snprintf(err, FETCH_ERRLEN, "%s", j->err), rc = j->rc;
		else if (!(rc = answered(r, j, err)))
			win_free(r, j->tag);	/* done with: its slot is reused */
		if (j->rc != 1)
			dw_drop(e, &j->dw);
		decoded_free(&j->out);
		free(j);
	}
	return rc;
}

/* The loop: send, wait, judge, decode, plan, store, until the plan is done. */
static int run_loop(struct run *r, const atomic_int *cancel, char *err)
{
	int rc;

	for (;;) {
		struct plan_stats ps;
		int64_t now = mono_ms(), next_due = now + 1000;

		if (cancel && atomic_load(cancel)) {
			snprintf(err, FETCH_ERRLEN, "interrupted");
			return -ECANCELED;
		}
		int src = atomic_load_explicit(&r->store_rc, memory_order_acquire);
		if (src) {
			snprintf(err, FETCH_ERRLEN, "%s", r->store_err);
			return src;
		}
		if ((rc = send_due(r, now, &next_due, err)))
			return rc;
		plan_get_stats(r->plan, &ps);
		if (r->prog)
			atomic_store(&r->prog->windows_planned, ps.planned);
		if (plan_done(r->plan) && r->nretry == 0 && inflight(r) == 0 &&
		    r->decoding == 0)
			return 0;

		/* wait for answers (or a decoder's wakeup, or a retry's time) */
		struct http_resp *done = NULL;
		size_t ndone = 0;
		int wait = (int)(next_due - now);
		double t0 = mono_s();
		rc = http_wait(r->http, wait < 1 ? 1 : wait > 1000 ? 1000 : wait, &done, &ndone);
		r->res->wait_s += mono_s() - t0;
		if (rc) {
			snprintf(err, FETCH_ERRLEN, "libcurl failed");
			return rc;
		}
		if ((rc = judge_answers(r, done, ndone, err)) || (rc = take_decoded(r, err)))
			return rc;
	}
}

/* Every address of the subject's family: the peer of a query without one. */
static void family_all(const struct cache_prefix *subject, struct cache_prefix *out)
{
	cache_prefix_parse(subject->v4 ? "0.0.0.0/0" : "::/0", out);
}

/*
 * What earlier answers showed: when the same hours a day (or a week)
 * before are cached whole, their flows' start times, moved onto q's range.
 * The planner then places its first windows without a probe (requests on
 * day-by-day browsing drop to the lower bound).  -ENOENT when there is
 * nothing to go by.
 */
static int prior_starts(struct cache *c, const struct cache_query *q,
			const struct cache_ivals *missing, int64_t **out, size_t *n)
{
	static const int64_t shifts[] = {CACHE_DAY_MS, 7 * CACHE_DAY_MS};
	int64_t span = 0;

	for (size_t i = 0; i < missing->n; i++)
		span += missing->v[i].end - missing->v[i].start;
	if (span > 3 * CACHE_DAY_MS)
		return -ENOENT;
	for (size_t k = 0; k < sizeof(shifts) / sizeof(shifts[0]); k++) {
		struct cache_query pq = *q;
		struct cache_ivals gone = {0};
		pq.start -= shifts[k];
		pq.end -= shifts[k];
		int rc = cache_missing(c, &pq, wall_ms(), 0, &gone, NULL);
		bool whole = rc == 0 && gone.n == 0;
		cache_ivals_free(&gone);
		if (!whole || cache_starts(c, &pq, out, n, NULL) != 0)
			continue;
		if (*n == 0) {
			free(*out);
			*out = NULL;
			continue;
		}
		for (size_t i = 0; i < *n; i++)
			(*out)[i] += shifts[k];
		return 0;
	}
	return -ENOENT;
}

/*
 * One pass: plan the missing intervals, ask, store, until the plan is
 * done.  r->cache is the caller's; everything else of r is made and
 * undone here.  0, or -errno with the cause in err.
 */
static int fetch_pass(struct run *r, const struct cache_ivals *missing, bool use_prior,
		      const atomic_int *cancel, char *err)
{
	struct fetch_engine *e = r->e;
	const struct cache_query *q = r->q;
	int rc;

	q_init(&r->dq_in);
	q_init(&r->dq_out);
	q_init(&r->pq);
	q_init(&r->sq);
	rc = engine_http(e, e->body_max, &r->http, err);
	if (rc)
		goto out;
	struct plan_cfg pc = {
		.cap = e->info.max_records, .granularity_ms = e->ops->granularity_ms,
		.max_window_ms = e->ops->max_window_ms, .split_dims = e->ops->split_dims,
		.subject = q->subject, .has_peer = q->has_peer, .fill = 0.9,
	};
	if (q->has_peer)
		pc.peer = q->peer;
	else
		family_all(&q->subject, &pc.peer);
	int64_t *prior = NULL;
	size_t nprior = 0;
	if (use_prior && prior_starts(r->cache, q, missing, &prior, &nprior) == 0) {
		pc.prior = prior;
		pc.nprior = nprior;
	}
	rc = plan_new(&pc, missing, &r->plan);
	free(prior);
	if (rc) {
		snprintf(err, FETCH_ERRLEN, "cannot plan the query: %s", strerror(-rc));
		goto out;
	}
	r->ndecoders = e->o.decode_threads;
	r->decoders = calloc(r->ndecoders, sizeof(*r->decoders));
	if (!r->decoders) {
		rc = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < r->ndecoders; i++) {
		if (pthread_create(&r->decoders[i], NULL, decoder_main, r)) {
			r->ndecoders = i;
			rc = -EAGAIN;
			snprintf(err, FETCH_ERRLEN, "cannot start a thread");
			goto out;
		}
	}
	if (pthread_create(&r->storer, NULL, storer_main, r)) {
		rc = -EAGAIN;
		snprintf(err, FETCH_ERRLEN, "cannot start a thread");
		goto out;
	}
	r->storer_up = true;
	if (r->pg) {
		if (pthread_create(&r->pgputter, NULL, pgput_main, r)) {
			rc = -EAGAIN;
			snprintf(err, FETCH_ERRLEN, "cannot start a thread");
			goto out;
		}
		r->pgputter_up = true;
	}
	r->cancel = cancel;
	rc = run_loop(r, cancel, err);
out:
	run_stop_threads(r);
	http_free(r->http);	/* abandons what is in flight; stored windows stay */
	r->http = NULL;
	held_release(e, r->reserved * e->body_max);
	r->reserved = 0;
	int src = atomic_load(&r->store_rc);	/* the store threads have ended */
	if (!rc && src) {
		rc = src;
		snprintf(err, FETCH_ERRLEN, "%s", r->store_err);
	}
	plan_free(r->plan);
	r->plan = NULL;
	for (size_t i = 0; i < r->nwins; i++) {
		win_reset(&r->wins[i]);
		dw_drop(r->e, &r->wins[i].dw);
	}
	free(r->wins);
	free(r->retry);
	free(r->decoders);
	r->wins = NULL;
	r->retry = NULL;
	r->decoders = NULL;
	r->nwins = r->capwins = r->nretry = r->capretry = 0;
	r->free_wins = 0;
	r->ndecoders = 0;
	r->storer_up = r->pgputter_up = false;
	r->decoding = r->running = 0;
	r->hold_asked = r->hold_backoff = 0;
	q_destroy(&r->dq_in);
	q_destroy(&r->dq_out);
	q_destroy(&r->pq);
	q_destroy(&r->sq);
	return rc;
}

/* ---- the team's shared cache (cache_url) ------------------------------------ */

/* Add every interval of from to to: 0 or -ENOMEM. */
static int ivals_merge(struct cache_ivals *to, const struct cache_ivals *from)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < from->n; i++)
		rc = cache_ivals_add(to, from->v[i].start, from->v[i].end);
	return rc;
}

/* The query q narrowed to [start, end). */
static struct cache_query query_part(const struct cache_query *q, int64_t start, int64_t end)
{
	struct cache_query wq = *q;

	wq.start = start;
	wq.end = end;
	return wq;
}

/*
 * What the local cache misses of 'within' (each interval read with q's
 * subject and peer, the query's clock and live_ttl), less 'fetched' (what
 * this query asked the collector itself already: a gap stays missing, and
 * is not asked twice).  0 with *out (the caller frees it), or -errno with
 * err.
 */
static int local_missing(struct run *r, const struct cache_ivals *within,
			 const struct cache_ivals *fetched, struct cache_ivals *out, char *err)
{
	char cerr[CACHE_ERRLEN];
	int rc = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; !rc && i < within->n; i++) {
		struct cache_query wq = query_part(r->q, within->v[i].start, within->v[i].end);
		struct cache_ivals m = {0};
		rc = cache_missing(r->cache, &wq, r->res->started_ms, r->e->o.live_ttl_ms, &m, cerr);
		if (rc) {
			snprintf(err, FETCH_ERRLEN, "the cache: %s", cerr);
			break;
		}
		for (size_t k = 0; !rc && k < m.n; k++) {
			struct cache_ivals left = {0};
			rc = cache_ivals_subtract(fetched, m.v[k].start, m.v[k].end, &left);
			if (!rc)
				rc = ivals_merge(out, &left);
			cache_ivals_free(&left);
		}
		cache_ivals_free(&m);
		if (rc)
			snprintf(err, FETCH_ERRLEN, "out of memory");
	}
	if (rc)
		cache_ivals_free(out);
	return rc;
}

/*
 * Claim each interval of miss (one claim transaction each, so that a
 * claim never reaches over what this machine holds already), the answers
 * merged into cl (emptied first).  0, or cache_pg_claim's -errno with
 * err; what was claimed before a failure is freed with the session.
 */
static int shared_claim(struct run *r, const struct cache_ivals *miss, struct cache_pg_claim *cl,
			char *err)
{
	char cerr[CACHE_ERRLEN];
	int rc = 0;

	memset(cl, 0, sizeof(*cl));
	for (size_t i = 0; !rc && i < miss->n; i++) {
		struct cache_query wq = query_part(r->q, miss->v[i].start, miss->v[i].end);
		struct cache_pg_claim one;
		rc = cache_pg_claim(r->pg, &wq, &one, cerr);
		if (rc) {
			snprintf(err, FETCH_ERRLEN, "the shared cache: %s", cerr);
			break;
		}
		if ((rc = ivals_merge(&cl->mine, &one.mine)) ||
		    (rc = ivals_merge(&cl->others, &one.others)) ||
		    (rc = ivals_merge(&cl->done, &one.done)))
			snprintf(err, FETCH_ERRLEN, "out of memory");
		cache_pg_claim_free(&one);
	}
	return rc;
}

/*
 * Fetch the spans claimed (mine) in one pass whose every window lies
 * inside one of them (the planner never crosses an interval of what it is
 * given), each stored in the shared cache and then here; then mark each
 * done, or, when the pass failed, give each back.  Done only after the
 * pass ended well: every window was committed.  0 with mine added to
 * fetched, or -errno with err; r->pg_failed says that the shared cache
 * failed (the caller opens a new session), not the collector.
 */
static int shared_fetch(struct run *r, const struct cache_ivals *mine, bool use_prior,
			const atomic_int *cancel, struct cache_ivals *fetched, char *err)
{
	char cerr[CACHE_ERRLEN];
	int rc;

	r->pg_failed = false;
	atomic_store(&r->store_rc, 0);
	rc = fetch_pass(r, mine, use_prior, cancel, err);
	for (size_t i = 0; i < mine->n && !(rc && r->pg_failed); i++) {
		struct cache_query wq = query_part(r->q, mine->v[i].start, mine->v[i].end);
		if (rc) {	/* the collector's failure: the claims given back */
			if (cache_pg_release(r->pg, &wq, cerr)) {
				pg_give(r->e, r->pg, false);	/* they go with it */
				r->pg = NULL;
				break;
			}
		} else if ((rc = cache_pg_done(r->pg, &wq, cerr))) {
			r->pg_failed = true;
			snprintf(err, FETCH_ERRLEN, "the shared cache: %s", cerr);
		}
	}
	if (!rc && ivals_merge(fetched, mine)) {
		snprintf(err, FETCH_ERRLEN, "out of memory");
		rc = -ENOMEM;
	}
	return rc;
}

/*
 * Spans the shared cache holds as done that stay missing here after a
 * pull (a gap, or live windows older than live_ttl): fetched from the
 * collector and stored here only, since no claim covers them there.  0
 * with them added to fetched, or -errno with err.
 */
static int local_fetch(struct run *r, const struct cache_ivals *done, const atomic_int *cancel,
		       struct cache_ivals *fetched, char *err)
{
	struct cache_ivals stale = {0};
	struct cache_pg *pg = r->pg;
	int rc = local_missing(r, done, fetched, &stale, err);

	if (!rc && stale.n) {
		r->pg = NULL;
		atomic_store(&r->store_rc, 0);
		rc = fetch_pass(r, &stale, false, cancel, err);
		r->pg = pg;
		if (!rc && ivals_merge(fetched, &stale)) {
			snprintf(err, FETCH_ERRLEN, "out of memory");
			rc = -ENOMEM;
		}
	}
	cache_ivals_free(&stale);
	return rc;
}

/*
 * After the shared cache failed with rc (err says how): the session
 * closed (its unfinished claims free at once, or at its expiry when the
 * server is gone), and for a lost connection or claim a pause of
 * 'attempts' seconds before the next attempt with a new session.  0: try
 * again; rc: give up, err kept; -ECANCELED when cancelled meanwhile.
 */
static int shared_retry(struct run *r, unsigned *attempts, int rc, const atomic_int *cancel,
			char *err)
{
	bool transient = rc == -ECONNRESET || rc == -ESTALE || rc == -ECONNREFUSED ||
			 rc == -ETIMEDOUT;

	pg_give(r->e, r->pg, false);
	r->pg = NULL;
	if (!transient || ++*attempts > PG_ATTEMPTS)
		return rc;
	engine_log(r->e, FETCH_LOG_INFO, r->prog, "%s; trying again with a new session (%u of %u)",
		   err, *attempts, PG_ATTEMPTS);
	for (int64_t until = mono_ms() + *attempts * 1000; mono_ms() < until;) {
		if (cancel && atomic_load(cancel)) {
			snprintf(err, FETCH_ERRLEN, "interrupted");
			return -ECANCELED;
		}
		usleep(50 * 1000);
	}
	return 0;
}

/*
 * One pass of a query with a shared cache (docs/design.md, "The shared
 * cache", the engine's side), over missing0: until nothing of it is
 * missing here (but what this pass asked the collector itself), pull what
 * the team has done, claim the rest, fetch what was claimed (shared_fetch),
 * fetch here what is done there but of no use here (local_fetch), and wait
 * for what others hold (cache_pg_wait, bounded by half the expiry: a dead
 * holder's claims are freed by the next claim after its expiry).  A
 * failure of the shared cache is retried with a new session (shared_retry);
 * a failure of the collector or of the local cache ends the pass.  0, or
 * -errno with err.
 */
static int shared_pass(struct run *r, const struct cache_ivals *missing0, bool use_prior,
		       const atomic_int *cancel, char *err)
{
	struct fetch_engine *e = r->e;
	struct cache_ivals fetched = {0}, miss = {0};
	struct cache_pg_claim cl = {0};
	int wait_ms = e->o.pg_expiry_s * 500;
	unsigned attempts = 0;
	char cerr[CACHE_ERRLEN];
	int rc;

	if (wait_ms > 5000)
		wait_ms = 5000;
	for (;;) {
		bool shared = true;	/* a failure of rc is the shared cache's */
		cache_ivals_free(&miss);
		cache_pg_claim_free(&cl);
		if (cancel && atomic_load(cancel)) {
			snprintf(err, FETCH_ERRLEN, "interrupted");
			rc = -ECANCELED;
			break;
		}
		if (!r->pg && (rc = pg_take(e, &r->pg, err)))
			goto failed;
		if ((rc = cache_pg_pull(r->pg, r->q, r->cache, NULL, cerr))) {
			snprintf(err, FETCH_ERRLEN, "the shared cache: %s", cerr);
			goto failed;
		}
		if ((rc = local_missing(r, missing0, &fetched, &miss, err)))
			break;
		if (miss.n == 0)
			break;
		if ((rc = shared_claim(r, &miss, &cl, err)))
			goto failed;
		if (cl.mine.n) {
			rc = shared_fetch(r, &cl.mine, use_prior, cancel, &fetched, err);
			use_prior = false;
			shared = r->pg_failed;
			if (rc)
				goto failed;
		}
		if (cl.done.n) {
			if ((rc = cache_pg_pull(r->pg, r->q, r->cache, NULL, cerr))) {
				shared = true;
				snprintf(err, FETCH_ERRLEN, "the shared cache: %s", cerr);
				goto failed;
			}
			if ((rc = local_fetch(r, &cl.done, cancel, &fetched, err)))
				break;
		}
		if (cl.others.n && (rc = cache_pg_wait(r->pg, r->q, wait_ms, cerr))) {
			shared = true;
			snprintf(err, FETCH_ERRLEN, "the shared cache: %s", cerr);
			goto failed;
		}
		continue;
failed:
		if (!shared || (rc = shared_retry(r, &attempts, rc, cancel, err)))
			break;
	}
	pg_give(e, r->pg, !r->pg_failed);
	r->pg = NULL;
	r->pg_failed = false;
	cache_pg_claim_free(&cl);
	cache_ivals_free(&miss);
	cache_ivals_free(&fetched);
	return rc;
}

int fetch_audit(struct fetch_engine *e, struct cache *c, const struct cache_query *q,
		const struct fetch_result *res, struct cache_audit *a, char *err)
{
	char cerr[CACHE_ERRLEN];
	/* the query's own provisional rows were fetched at or after
	 * started_ms: "younger than 1 ms" then holds them whatever the TTL */
	int64_t ttl = e->o.live_ttl_ms > 0 ? e->o.live_ttl_ms : 1;
	int rc = cache_audit(c, q, res->started_ms ? res->started_ms : wall_ms(), ttl, a, cerr);

	if (rc)
		snprintf(err, FETCH_ERRLEN, "the cache's audit: %s", cerr);
	return rc;
}

void fetch_audit_holes_text(const struct cache_audit *a, char *buf, size_t len)
{
	char from[40], to[40];

	if (a->holes.n == 0) {
		snprintf(buf, len, "none");
		return;
	}
	cache_time_format(a->holes.v[0].start, from, sizeof(from));
	cache_time_format(a->holes.v[0].end, to, sizeof(to));
	if (a->holes.n == 1)
		snprintf(buf, len, "%s to %s", from, to);
	else
		snprintf(buf, len, "%s to %s and %zu more", from, to, a->holes.n - 1);
}

/* Extra passes over holes the audit finds after a pass (a planner that
 * stopped early; another process's provisional rows replaced meanwhile). */
#define AUDIT_PASSES 2


/*
 * The query: what the cache misses is fetched, then the store is audited
 * (fetch_audit); a hole it finds is fetched again, up to AUDIT_PASSES
 * times, each logged; a hole that remains is an error (-EIO, named in
 * err), never a success.  res->complete is the audit's word, not the
 * planner's.
 */
int fetch_query(struct fetch_engine *e, const struct cache_query *q,
		struct fetch_progress *prog, const atomic_int *cancel,
		struct fetch_result *res, char *err)
{
	struct run r;
	struct cache_ivals missing = {0};
	struct cache_audit audit = {0};
	char cerr[CACHE_ERRLEN];
	double t0 = mono_s();
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&r, 0, sizeof(r));
	res->started_ms = wall_ms();
	if (prog) {
		atomic_store(&prog->state, 1);
		atomic_store(&prog->started_ms, res->started_ms);
	}
	r.e = e;
	r.q = q;
	r.prog = prog;
	r.res = res;
	r.rng = (uint64_t)wall_ms() * 2654435761u | 1;
	r.collector_now = e->info.now_ms + (wall_ms() - e->info.probed_at_ms);
	res->collector_now_ms = r.collector_now;
	pthread_mutex_init(&r.statm, NULL);

	struct cache_identity id = fetch_engine_identity(e);
	rc = cache_open(e->cache_dir, &id, &r.cache, cerr);
	if (!rc)
		rc = cache_missing(r.cache, q, res->started_ms, e->o.live_ttl_ms, &missing, cerr);
	if (!rc && missing.n)
		rc = cache_clear_gaps(r.cache, q, cerr);
	if (rc) {
		snprintf(err, FETCH_ERRLEN, "the cache: %s", cerr);
		goto out;
	}
	for (unsigned pass = 0;; pass++) {
		if (missing.n && (rc = e->cache_url
					     ? shared_pass(&r, &missing, pass == 0, cancel, err)
					     : fetch_pass(&r, &missing, pass == 0, cancel, err)))
			break;
		cache_audit_free(&audit);
		if ((rc = fetch_audit(e, r.cache, q, res, &audit, err)))
			break;
		if (audit.holes.n == 0)
			break;
		char holes[160];
		fetch_audit_holes_text(&audit, holes, sizeof(holes));
		if (pass == AUDIT_PASSES) {
			snprintf(err, FETCH_ERRLEN,
				 "the cache does not cover %s of the range after %u passes "
				 "(a defect of flowfs: please report it with the log)", holes, pass + 1);
			rc = -EIO;
			break;
		}
		engine_log(e, FETCH_LOG_INFO, prog, "audit after pass %u: the cache does not cover %s; asking again",
			   pass + 1, holes);
		res->audit_passes++;
		cache_ivals_free(&missing);
		missing = audit.holes;	/* taken over */
		audit.holes = (struct cache_ivals){0};
	}
out:
	if (r.cache)
		cache_close(r.cache);
	res->body_max = e->body_max;
	res->held_max = e->held_max;
	res->held_peak = r.held_peak;
	res->decode_s = r.decode_s;
	res->store_s = r.store_s;
	res->seconds = mono_s() - t0;
	res->complete = rc == 0 && audit.holes.n == 0 && audit.ngaps == 0 && res->rejected == 0;
	if (prog)
		atomic_store(&prog->state, rc ? 3 : 2);
	cache_audit_free(&audit);
	cache_ivals_free(&missing);
	cache_ivals_free(&r.taint);
	pthread_mutex_destroy(&r.statm);
	return rc;
}
