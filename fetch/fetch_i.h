/*
 * fetch_i.h - internal interfaces of the engine room: the HTTP client and
 * the driver interface.  Nothing outside fetch/ includes this.
 */
#ifndef FLOWFS_FETCH_I_H
#define FLOWFS_FETCH_I_H

#include <curl/curl.h>

#include "fetch.h"

/* ---- http.c: libcurl multi ---------------------------------------------- */

struct http_opts {
	const char *token;		/* "Authorization: Bearer ..." unless NULL */
	unsigned max_inflight;
	long connect_timeout_ms, stall_s, request_timeout_ms;
	bool compress, insecure;
	const char *ca_file;
	size_t max_body;
};

/* A request to send. */
struct http_ask {
	char url[4096];
	const char *method;		/* NULL: GET */
	const char *body;		/* POST body, or NULL */
	const char *content_type;
};

/* A finished exchange.  body is malloc'd and NUL-terminated. */
struct http_resp {
	uint64_t tag;
	long status;			/* 0: no HTTP answer (see cerr) */
	CURLcode cerr;
	char error[CURL_ERROR_SIZE + 64];
	char *body;
	size_t len;
	long retry_after_s;		/* -1 when absent */
	double seconds;
	bool too_big;
};

struct http;

int http_new(const struct http_opts *o, struct http **out, char *err);
void http_free(struct http *h);

/* Start a request; its answer comes back from http_wait with 'tag'.
 * -EBUSY when max_inflight requests are running. */
int http_submit(struct http *h, const struct http_ask *a, uint64_t tag);

/* Run transfers for up to timeout_ms (less when something finishes or
 * http_wakeup is called); append finished exchanges to *done (malloc'd
 * array, *ndone entries; free each with http_resp_free, then the array). */
int http_wait(struct http *h, int timeout_ms, struct http_resp **done, size_t *ndone);
unsigned http_inflight(const struct http *h);
/* Make a waiting http_wait return now (any thread). */
void http_wakeup(struct http *h);
void http_resp_free(struct http_resp *r);

/* One request to the end, with the engine's retry rules; for the probe and
 * the lookup tables.  0 with *resp (status 200) or -errno with the cause. */
int http_get_retry(struct http *h, const struct http_ask *a, unsigned max_retries,
		   struct http_resp *resp, char *err);

/* What to do with an answer: retry it, or fail the query with an errno. */
enum http_verdict { HTTP_OK, HTTP_RETRY, HTTP_FATAL };
enum http_verdict http_judge(const struct http_resp *r, int *errnum, char *why, size_t len);

/* Backoff before attempt 'attempt' (1, 2, ...): exponential with full
 * jitter, capped at 30 s; a 429's Retry-After wins.  In ms. */
int64_t http_backoff_ms(const struct http_resp *r, unsigned attempt, uint64_t *rng);

/* ---- drivers -------------------------------------------------------------- */

/* One decoded answer. */
struct decoded {
	struct flow_rec *recs;
	size_t n;			/* records kept */
	size_t answered;		/* records in the answer, kept or not */
	size_t rejected;		/* malformed records (counted, never stored) */
	char why[160];			/* the first rejection's cause */
	/*
	 * In: an answer of at least this many records (0: none) is only a
	 * sample of a window that will be split, so only its records' start,
	 * src and dst are decoded, and 'sampled' is set.  Its records are not
	 * kept: the window's parts fetch every one of them again, whole.
	 */
	size_t sample_at;
	bool sampled;			/* out: see sample_at */
};

void decoded_free(struct decoded *d);

struct driver;

/*
 * A dialect.  Drivers are sibling files behind this table, like SQLite's
 * VFS: the planner only sees granularity_ms, max_window_ms and split_dims.
 * A window is an exchange of one or more requests (a dialect with
 * asynchronous queries asks, polls, then reads): window_first builds the
 * first request, window_next turns each answer into the next request (1) or
 * the decoded records (0).
 */
struct driver_ops {
	const char *name;
	int64_t granularity_ms;
	int64_t max_window_ms;
	unsigned split_dims;
	int (*open)(struct driver **out, const char *base_url, char *err);
	void (*close)(struct driver *d);
	int (*info_ask)(struct driver *d, struct http_ask *a);
	int (*info_decode)(struct driver *d, const char *body, size_t len,
			   struct fetch_info *info, char *err);
	/* lookup table t: 0 none, 1 ask filled */
	int (*lookup_ask)(struct driver *d, enum cache_table t, struct http_ask *a);
	int (*lookup_decode)(struct driver *d, enum cache_table t, const char *body,
			     size_t len, struct cache_lookup **rows, size_t *n, char *err);
	int (*window_first)(struct driver *d, const struct cache_query *q,
			    const struct plan_req *r, uint32_t limit, struct http_ask *a);
	/* thread-safe: called from decoding threads */
	int (*window_next)(struct driver *d, const struct http_resp *resp,
			   struct http_ask *a, struct decoded *out, char *err);
};

extern const struct driver_ops flowapi_driver;

/* Decode one flowapi/1 record (exposed for the unit tests). -EINVAL with
 * the cause in why. */
struct cJSON;
int flowapi_decode_record(const struct cJSON *o, struct flow_rec *f, char *why, size_t len);
/* Route cJSON's memory through the decoding threads' arenas (once, before
 * threads start), and free a thread's arena when it ends. */
void flowapi_init_hooks(void);
void flowapi_thread_done(void);

/* Decode a whole /flows answer: 0, or -EBADMSG (err says why) for an
 * answer that is not JSON or has no "flows" array, -ENOMEM.  An answer of
 * sample_at records or more (0: never) is decoded as a sample only (see
 * struct decoded).  Rejected records are counted in out, not fatal. */
int flowapi_decode_flows(const char *body, size_t len, size_t sample_at, struct decoded *out,
			 char *err);

#endif
