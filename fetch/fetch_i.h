/*
 * fetch_i.h - internal interfaces of the engine room: the HTTP client and
 * the driver interface.  Nothing outside fetch/ includes this.
 *
 * LOCKING
 *
 * The engine's state is written before its threads start and read after;
 * what threads share while a query runs is guarded so:
 *
 *   e->http_lock (engine.c)  e->http, the client of the probe, the lookup
 *       tables and the logins, one user at a time once the engine is
 *       open; held over those requests (network I/O by design: a login
 *       waits for the one under way rather than making another).
 *   the driver's session lock (sna.c: d->lock, a struct mtx)  the
 *       session's cookies, XSRF token, generation and login time; taken
 *       by the session, sign and logout ops; held over a login and a
 *       logout (sna_login asserts it in debug builds).
 *   the run's queues (engine.c: struct queue's m, with its condition),
 *       the run's statm (its timings) and the renderer's pipe (cache/
 *       render.c: render_pipe's m): leaves, memory only.
 *
 * Order: e->http_lock before the driver's session lock (the engine calls
 * ops->session with http_lock held; sign takes only the session lock);
 * nothing is taken under a leaf.  Each decoding thread has its own cJSON
 * arena and hash state (json.c, community.c: thread-local), and a cache
 * connection is used by one thread at a time (the store thread has its
 * own), so they need no lock.  A struct
 * http is used by one thread at a time, but http_wakeup may be called by
 * any.  flowfs's locks (fs.h, LOCKING) are never held across a call into
 * the engine.
 */
#ifndef FLOWFS_FETCH_I_H
#define FLOWFS_FETCH_I_H

#include <curl/curl.h>

#include "fetch.h"
#include "nfdump_ssh.h"

/* ---- http.c: libcurl multi ---------------------------------------------- */

struct http_opts {
	const char *token;		/* "Authorization: Bearer ..." unless NULL (any length:
					 * the header is built to fit, zeroed when freed) */
	unsigned max_inflight;
	long connect_timeout_ms, stall_s, request_timeout_ms;
	bool compress, insecure;
	const char *ca_file;
	size_t max_body;
	/* The driver whose answers these are: an error answer's body is read
	 * into the cause through ops->error_text(drv, ...) (NULL: not read). */
	const struct driver_ops *ops;
	struct driver *drv;
};

/* A session's cookies and its XSRF token, as sent back (issue 11: real
 * Managers' tokens and cookie lists can be long; what does not fit is
 * refused with a clear error, never cut). */
#define HTTP_COOKIE_MAX 8192
#define HTTP_XSRF_MAX 1024
#define HTTP_AUTH_MAX 4096

/* A request to send. */
struct http_ask {
	char url[4096];
	const char *method;		/* NULL: GET */
	const char *body;		/* POST body, or NULL (copied when sent) */
	const char *content_type;
	/* A session's credentials, filled by the driver's sign op right
	 * before the request is sent (empty: none). */
	char cookie[HTTP_COOKIE_MAX];	/* "name=value; ..." for the Cookie header */
	char xsrf[HTTP_XSRF_MAX];	/* the X-XSRF-TOKEN header's value */
	/* The Authorization header's value ("bearer TOKEN"), for a session
	 * whose token changes (Flowmon's OAuth); it replaces http_opts.token's */
	char auth[HTTP_AUTH_MAX];
	uint64_t auth_gen;		/* the session it was signed with */
	int64_t delay_ms;		/* send no sooner than this after it is made */
	long timeout_ms;		/* this request's deadline (0: the client's) */
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
	size_t alloc;			/* bytes allocated for body (its buffer's size) */
	size_t limit;			/* the bound body was held to (too_big: exceeded) */
	char set_cookie[HTTP_COOKIE_MAX];	/* its Set-Cookie values ("name=value"), one a line */
	bool set_cookie_cut;		/* more Set-Cookie than set_cookie holds */
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

/* What to do with an answer of h: retry it, or fail the query with an
 * errno; why says what, with the server's message in it (its driver's
 * error_text, see http_opts). */
enum http_verdict { HTTP_OK, HTTP_RETRY, HTTP_FATAL };
enum http_verdict http_judge(const struct http *h, const struct http_resp *r, int *errnum,
			     char *why, size_t len);

/* Backoff before attempt 'attempt' (1, 2, ...): exponential with full
 * jitter, capped at 30 s; a 429's Retry-After wins.  In ms. */
int64_t http_backoff_ms(const struct http_resp *r, unsigned attempt, uint64_t *rng);

/* ---- drivers (the table: drivers.c; its lines: fetch.h) ----------------- */

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
	/*
	 * In: the cap the request asked for (0: none).  An answer of more
	 * records is not what the dialect sends: it is refused (-EBADMSG, the
	 * cause in why) before anything is allocated for its records.  The
	 * engine sets it for window_next; the decoders that take no limit
	 * (flowapi_decode_flows, sna_decode_answer) clear it.
	 */
	size_t limit;
	bool sampled;			/* out: see sample_at */
	/* out: records the driver itself found outside the question and did
	 * not put in recs (a driver that selects them, as nfdump's does):
	 * counted as the engine counts those it drops (fetch_result.foreign) */
	size_t foreign;
	/* out: records kept whose values the collector sent inexact (Flowmon's
	 * scaled "1.3 M": the text in extra, the column empty): stored, but
	 * their window is not covered, and a gap says why (engine.c, taint) */
	size_t inexact;
	/* out: a window the driver asked in disjoint parts (Flowmon's
	 * filters), each answered whole: "[FILTER] KEPT/ANSWERED; ..." for
	 * each part, FILTER what the part adds to the window's own filter;
	 * malloc'd, freed by decoded_free (NULL: asked whole) */
	char *parts;
	unsigned nparts;
};

void decoded_free(struct decoded *d);

struct driver;

/* A driver's notes on one window's exchange (the engine keeps them between
 * the requests of an asynchronous dialect's ask, poll and read). */
struct driver_win {
	int stage;
	unsigned polls;
	int64_t started_ms;		/* monotonic, when the exchange began */
	char id[64];			/* the collector's id of the exchange */
	char body[4096];		/* the first request's body (a peer set: up to
					 * PLAN_PEER_SET_MAX prefixes) */
	/* The driver's own memory for the exchange (NULL: none), owned by
	 * the one copy of these notes the engine holds at a time and given
	 * back through driver_ops.window_drop when the exchange ends or is
	 * abandoned (a driver that returns 0 from window_next frees or moves
	 * it itself and sets it NULL). */
	void *priv;
};

/*
 * A dialect.  Drivers are sibling files behind this table, like SQLite's
 * VFS, each a line of the table of drivers (drivers.c) with its
 * capabilities (FETCH_DRIVER_*, fetch.h): the planner only sees
 * granularity_ms, max_window_ms and split_dims (FETCH_SPLIT_PEER_SET: it
 * asks for lists of peers).
 *
 * A driver that speaks HTTP (FETCH_DRIVER_HTTP): a window is an exchange
 * of one or more requests (a dialect with asynchronous queries asks,
 * polls, then reads): window_first builds the first request, window_next
 * turns each answer into the next request (1) or the decoded records (0).
 * info_ask/info_decode, lookup_ask/lookup_decode and error_text are its
 * other HTTP ops.
 *
 * A driver that does not (no FETCH_DRIVER_HTTP; a driver that runs a
 * local program for each window): info_run, lookup_run (optional) and
 * window_run instead, each called synchronously; no HTTP client is opened
 * for it, and its HTTP ops are NULL.
 */
struct driver_ops {
	int64_t granularity_ms;
	int64_t max_window_ms;
	unsigned split_dims;
	/* The largest record the dialect's answers may hold, in bytes (a
	 * generous bound over what collectors send): an answer is bounded by
	 * the cap times this (fetch_result's body_max). */
	size_t record_max;
	/* A driver whose collector has no cap (an archive): the most records
	 * a window holds when the user sets no max_records, which bounds the
	 * window's memory, not the collector's answers (0: the engine's
	 * default, 10,000). */
	uint32_t window_records;
	int (*open)(struct driver **out, const struct fetch_opts *o, char *err);
	void (*close)(struct driver *d);
	/*
	 * Dialects with sessions (NULL otherwise).  session: make the session
	 * usable, logging in through h when there is none, when it is the one
	 * of generation stale_gen (a request signed with it was refused), or
	 * when it is about to expire; 0, or -EACCES and the cause.  Thread-safe.
	 * sign: put the session's credentials on a request (thread-safe).
	 */
	int (*session)(struct driver *d, struct http *h, uint64_t stale_gen, char *err);
	void (*sign)(struct driver *d, struct http_ask *a);
	/* End the session on the collector, if one is open (NULL: no
	 * sessions); called once, when the engine closes. */
	void (*logout)(struct driver *d, struct http *h);
	int (*info_ask)(struct driver *d, struct http_ask *a);
	int (*info_decode)(struct driver *d, const char *body, size_t len,
			   struct fetch_info *info, char *err);
	/* lookup table t: 0 none, 1 ask filled */
	int (*lookup_ask)(struct driver *d, enum cache_table t, struct http_ask *a);
	int (*lookup_decode)(struct driver *d, enum cache_table t, const char *body,
			     size_t len, struct cache_lookup **rows, size_t *n, char *err);
	int (*window_first)(struct driver *d, const struct cache_query *q,
			    const struct plan_req *r, uint32_t limit, struct driver_win *w,
			    struct http_ask *a);
	/*
	 * An answer (HTTP 200) of the window's exchange: 0 with the records in
	 * out; 1 with the next request in *a (a->delay_ms: how long to wait
	 * before sending it); -EAGAIN when the exchange failed and the window
	 * must be asked again from the start (w->id says why in err);
	 * -EBADMSG for an answer that is not what the dialect sends (asked
	 * again); any other -errno ends the query.  Thread-safe: called from
	 * decoding threads.
	 */
	int (*window_next)(struct driver *d, const struct http_resp *resp, struct driver_win *w,
			   struct http_ask *a, struct decoded *out, char *err);
	/*
	 * The server's message in an error answer's body (HTTP 4xx, 5xx), in
	 * the dialect's own format, into buf (len bytes; "" when the body has
	 * none): at most its first 200 bytes, with control characters made
	 * visible (cache_text_escape), since it goes into the log, .progress
	 * and flowfetch's stderr.  Never fails.  Thread-safe.  NULL: bodies
	 * are not read.
	 */
	void (*error_text)(struct driver *d, const struct http_resp *resp, char *buf, size_t len);
	/* Free w->priv of an exchange that ended without window_next's 0
	 * (failed, asked again, the query ended); NULL: the driver keeps none. */
	void (*window_drop)(struct driver *d, struct driver_win *w);

	/* -- a driver without HTTP (no FETCH_DRIVER_HTTP) -- */

	/* What the collector says about itself (as info_decode's answer):
	 * 0, or -errno with the cause in err (the engine does not open). */
	int (*info_run)(struct driver *d, struct fetch_info *info, char *err);
	/* Lookup table t into *rows (malloc'd, *n rows): 0 (n may be 0: none),
	 * or -errno (the table is left as it was; names are a comfort).
	 * NULL: no tables. */
	int (*lookup_run)(struct driver *d, enum cache_table t, struct cache_lookup **rows,
			  size_t *n, char *err);
	/*
	 * Window r of query q, start to end, synchronously: its records into
	 * out, as window_next's 0 fills it (out->sample_at and out->limit are
	 * set by the engine, see struct decoded: at most 'limit' records, the
	 * cap the planner works with; a window of more is answered with its
	 * first 'limit' and out->answered >= limit, so that the planner
	 * splits it).  Called on the engine's decoding threads, several at
	 * once (thread-safe), each call given the query's cancel flag (may
	 * be NULL) and the window's deadline (monotonic ms, CLOCK_MONOTONIC:
	 * request_timeout from the call).  Returns 0; -ECANCELED once
	 * *cancel is set (promptly: a child process is killed); -ETIMEDOUT
	 * past the deadline and -EAGAIN for a failure worth another attempt
	 * (both retried with backoff, up to the retries, the cause in err);
	 * -EBADMSG for an output that is not what the program writes
	 * (retried); any other -errno ends the query.
	 */
	int (*window_run)(struct driver *d, const struct cache_query *q, const struct plan_req *r,
			  uint32_t limit, const atomic_int *cancel, int64_t deadline_ms,
			  struct decoded *out, char *err);
};

/* ---- json.c: what the drivers of JSON dialects share ---------------------- */

/* fetch_json_int: -ENOENT when missing or null, -EINVAL when not an
 * integer in [lo, hi].  fetch_json_addr: an IPv4 or IPv6 address string to
 * the 16-byte form, -EINVAL.  fetch_json_groups: an array of group ids
 * (null or absent: none), -EINVAL.  fetch_json_str: copy a string member
 * that fits; false otherwise.  fetch_lookup_add: append a row to a growing
 * array, -ENOMEM. */
struct cJSON;
int fetch_json_int(const struct cJSON *it, double lo, double hi, int64_t *out);
int fetch_json_addr(const struct cJSON *s, uint8_t out[16]);
int fetch_json_groups(const struct cJSON *arr, uint32_t *out, uint8_t *n);
bool fetch_json_str(const struct cJSON *o, const char *key, char *dst, size_t len);
int fetch_lookup_add(struct cache_lookup **rows, size_t *n, size_t *cap,
		     const struct cache_lookup *r);
/* application/x-www-form-urlencoded (and URL query) spelling of s into
 * out (len bytes): true, or false when it does not fit (out then holds a
 * cut text: not to be sent). */
bool fetch_form_encode(const char *s, char *out, size_t len);
#define FETCH_EXACT_MAX 9007199254740992.0	/* 2^53: the integers a double holds */

/* The nodes of a parsed answer whose key or string value a NUL cut short
 * (cJSON ends a string at a "\u0000" escape or a raw NUL byte): found by
 * reading the body (json.c says how).  fetch_json_cuts: root parsed from
 * body and len; 0 (n == 0 for nearly every answer: none), or -ENOMEM.
 * fetch_json_cut: is node, or anything under it, cut?  fetch_json_cut_node:
 * is node's own key or value cut (a "flows\u0000x" member is not "flows")?
 * (c may be NULL.) */
struct fetch_cuts {
	const struct cJSON **v;	/* sorted by address */
	size_t n;
};
int fetch_json_cuts(const char *body, size_t len, const struct cJSON *root,
		    struct fetch_cuts *c);
bool fetch_json_cut(const struct fetch_cuts *c, const struct cJSON *node);
bool fetch_json_cut_node(const struct fetch_cuts *c, const struct cJSON *node);
void fetch_cuts_free(struct fetch_cuts *c);

/* A driver's record decoder: whole, or only what a sample needs (start,
 * src, dst); -EINVAL with the cause in why. */
typedef int (*fetch_rec_fn)(const struct cJSON *o, struct flow_rec *f, bool sample, char *why,
			    size_t len);
/* The records of a JSON array into out, each through 'one' (as samples
 * when out->sample_at is reached, see struct decoded); rejects counted,
 * among them every record in cuts (one holding a string a NUL cut short,
 * see fetch_json_cuts; cuts may be NULL).  0, -ENOMEM, or -EBADMSG for an
 * array longer than out->limit (when not 0), the cause in out->why,
 * nothing allocated. */
int fetch_decode_array(const struct cJSON *arr, const struct fetch_cuts *cuts,
		       struct decoded *out, fetch_rec_fn one);

/* For a driver's error_text: an error answer's body parsed (free with
 * cJSON_Delete; NULL when there is none, it is over 64 KiB or not JSON),
 * and its message m (NULL, or not a string: "") into out as error_text
 * promises (200 bytes at most, control characters made visible). */
struct cJSON *fetch_error_json(const struct http_resp *r);
void fetch_error_message(const struct cJSON *m, char *out, size_t len);

/* Parse an answer into the calling thread's arena for cJSON (NULL when
 * not JSON), and release the tree and the arena at once (a decoding
 * thread parses one answer at a time). */
struct cJSON *fetch_arena_parse(const char *body, size_t len);
void fetch_arena_release(struct cJSON *root);

/* Route cJSON's memory through the decoding threads' arenas (once, before
 * threads start), and free a thread's arena (and its Community ID state)
 * when it ends. */
void fetch_json_init_hooks(void);
void fetch_json_thread_done(void);

/* ---- the drivers' decoders, exposed for the unit tests and fuzzers ------ */

/* Decode one flowapi/1 record (flowapi.c). -EINVAL with the cause in why. */
int flowapi_decode_record(const struct cJSON *o, struct flow_rec *f, char *why, size_t len);

/* Decode an SNA search's results answer ({"data":{"flows":[...]}}), as
 * flowapi_decode_flows does a flowapi/1 answer (exposed for the tests). */
int sna_decode_answer(const char *body, size_t len, size_t sample_at, struct decoded *out,
		      char *err);
/* The same, refusing an answer of more than 'limit' records (0: none)
 * with -EBADMSG before anything is allocated for them (struct decoded). */
int sna_decode_capped(const char *body, size_t len, size_t sample_at, size_t limit,
		      struct decoded *out, char *err);

/* Decode a whole /flows answer, len bytes at body (which need not end in a
 * NUL): 0, or -EBADMSG (err says why) for an answer that is not JSON or
 * has no "flows" array, -ENOMEM.  An answer of sample_at records or more
 * (0: never) is decoded as a sample only (see struct decoded).  Rejected
 * records are counted in out, not fatal. */
int flowapi_decode_flows(const char *body, size_t len, size_t sample_at, struct decoded *out,
			 char *err);
/* The same, refusing an answer of more than 'limit' records (0: none)
 * with -EBADMSG before anything is allocated for them (struct decoded). */
int flowapi_decode_capped(const char *body, size_t len, size_t sample_at, size_t limit,
			  struct decoded *out, char *err);

/* ---- flowmon.c: the Flowmon driver's parts, for the unit tests ----------- */

/* One part of a window split by disjoint filters: a set of protocol
 * classes (FLOWMON_TCP | FLOWMON_UDP | FLOWMON_OTHER; FLOWMON_ANY all
 * three), a destination and a source port range (inclusive). */
enum { FLOWMON_TCP = 1, FLOWMON_UDP = 2, FLOWMON_OTHER = 4, FLOWMON_ANY = 7 };
struct flowmon_part {
	uint8_t proto;
	uint16_t dlo, dhi, slo, shi;
};
/* What a full answer says of a part's rows, to guide its split: each
 * row's protocol class (one FLOWMON_* bit) and ports as nfdump's filter
 * reads them (ICMP: dst port type * 256 + code, src port 0). */
struct flowmon_key {
	uint8_t cls;
	uint16_t dp, sp;
};
/*
 * The parts of p, disjoint and covering p whatever the keys, into kids;
 * 0 when p is one protocol class and one port each side (it cannot be
 * split).  keys (n of them, any order; reordered in place) are rows of p's
 * full answer, a sample: the split follows them so that each part holds
 * about half of them.  A part of several classes is split into the
 * class most keys have and the others; else the destination port range,
 * else the source port's: at the keys' median, or, when half the keys
 * or more have one port, into that port and the ranges either side of
 * it (3 parts); without keys in the range, halved.
 */
int flowmon_split(const struct flowmon_part *p, struct flowmon_key *keys, size_t n,
		  struct flowmon_part kids[3]);
/* The nfdump filter of part p of a window whose own filter is 'window'
 * (cut to len). */
void flowmon_filter(const char *window, const struct flowmon_part *p, char *out, size_t len);
/* A row's time "YYYY-MM-DD HH:MM[:SS[.mmm]]" in zone tz to UTC ms (a
 * repeated hour's time: the earlier): 0, or -EINVAL. */
struct nfd_tz;
int flowmon_parse_time(const struct nfd_tz *tz, const char *s, int64_t *out);
/* One row (every value a string, keys the column ids or the internal
 * names) into f, or only its start and addresses when 'sample': 0
 * (*inexact when a count was scaled: the column -1, the text in extra),
 * or -EINVAL with the cause in why. */
int flowmon_decode_row(const struct cJSON *o, const struct nfd_tz *tz, bool sample,
		       struct flow_rec *f,
		       bool *inexact, char *why, size_t len);
/* The rows' ids: a hash of each one's fields, identical rows numbered
 * ".2", ".3", ... in their order.  0, or -ENOMEM. */
int flowmon_ids(struct flow_rec *recs, size_t n);

/* ---- nfdump_drv.c: the nfdump driver's parts, for the unit tests -------- */

/* The nfdump driver's options, as read from fetch_opts. */
struct nfd_drv_cfg {
	char root[4096];		/* the archive: an absolute path, no trailing '/' */
	char files_tz[64];		/* "": the process's zone (TZ) */
	int64_t active_ms;		/* the exporters' active timeout */
	char prog[4096];		/* the nfdump program (for ssh: on the collector) */
	bool ssh;			/* nfdump+ssh://: the archive is on url's host */
	struct nfd_ssh_url url;		/* root is url.path */
	char ssh_config[1024], identity[1024], known_hosts[1024];	/* "": ssh's defaults */
	int connect_timeout_s;		/* ssh's ConnectTimeout */
};

/* o's URL (the part after "nfdump:", or after "nfdump+": "ssh://..."),
 * files_tz, active_timeout_s, nfdump and the ssh options into cfg, with
 * their defaults: 0, or -EINVAL with err saying what is wrong and what is
 * taken (a relative path, a path with ':', a URL nfd_ssh_parse refuses, an
 * ssh file name nfd_ssh_argv refuses, ssh options for a local archive, a
 * zone nfd_archive refuses, a timeout over FETCH_ACTIVE_TIMEOUT_MAX),
 * -E2BIG for a path too long.  Touches no file, runs nothing. */
int nfd_drv_config(const struct fetch_opts *o, struct nfd_drv_cfg *cfg, char *err);

/*
 * A window's decoded output (nfd_decode's) as the engine's answer: the
 * records moved from in to out (in is left empty), foreign and rejected
 * counted (foreign as the engine's own, decoded.foreign), answered the
 * records of the output that answered the question or were malformed
 * (not those of other windows).  overflow: the output passed its bound,
 * so the window holds more than was read: answered is at least limit
 * (full: the planner splits it).  More than limit records are thinned
 * evenly to limit.  sampled as struct decoded says (out->sample_at).
 * Returns 0; it cannot fail.
 */
struct nfd_out;
int nfd_drv_convert(struct nfd_out *in, size_t limit, bool overflow, struct decoded *out);

#endif
