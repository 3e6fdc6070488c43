/*
 * sim.h - the whole face of flowsim, the simulated flow collector.
 *
 * flowsim serves the reference dialect (flowapi/1, see
 * docs/collector-api.md) over HTTP with every nasty property that
 * dialect allows: a per-request cap, an arbitrary subset and a shuffled
 * order when more records match, unordered answers, internal ids, and
 * injected faults.  Behind --truth it also answers what the real API never
 * does: the exact set of flows a query matches, and request counters.
 *
 * The room uses nothing of fs/, fetch/ or cache/: a simulator that shared
 * the client's address parser or matcher would hide the client's bugs.
 *
 * Data model.  A scenario is a list of streams (a steady host, a heavy host,
 * a port scan, a flood, ...).  A stream's flows for one UTC day are a
 * "chunk": only the sorted start times are stored (8 bytes a flow); every
 * other field of a flow is a pure function of (dataset seed, stream, day,
 * position), computed when it is served.  Chunks are generated on first use
 * and kept, so start-up is instant and a query costs time in proportion to
 * the records it touches, never to the dataset.
 *
 * Conventions: functions return 0 or a negative errno; on error they write
 * a one-line cause into the caller's err buffer (SIM_ERRLEN bytes) and
 * change nothing the caller owns.
 */
#ifndef FLOWSIM_SIM_H
#define FLOWSIM_SIM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_ERRLEN 256
#define SIM_DAY_MS 86400000LL
#define SIM_MAX_RANGE_MS (31LL * SIM_DAY_MS)
#define SIM_MAX_STREAMS 256

/* ---- addresses ---------------------------------------------------------- */

/* An address is 16 bytes; IPv4 is held IPv4-mapped (::ffff:a.b.c.d). */
struct sim_addr {
	uint8_t b[16];
};

/* A prefix: an address with its host bits cleared, a length counted on the
 * 16-byte form (an IPv4 /24 is 120), and the family it was written in.  A
 * prefix matches only addresses of its own family. */
struct sim_prefix {
	struct sim_addr addr;
	int len;	/* 0..128, on the 16-byte form */
	bool v4;
};

bool sim_addr_is_v4(const struct sim_addr *a);

/* Parse an address or CIDR prefix ("10.0.0.1", "2001:db8::/32").  A bare
 * address becomes a full-length prefix; host bits are cleared.  -EINVAL on
 * anything else. */
int sim_prefix_parse(const char *text, struct sim_prefix *out);

/* Canonical text of an address (inet_ntop); buf needs 46 bytes. */
void sim_addr_format(const struct sim_addr *a, char *buf, size_t len);

/* Text of an IPv6 address in one of several valid but non-canonical forms
 * chosen by 'style' (0 canonical, 1 fully expanded, 2 upper case, 3 expanded
 * upper case, 4 uncompressed zeros).  IPv4 is always dotted quad. */
void sim_addr_format_style(const struct sim_addr *a, unsigned style, char *buf,
			   size_t len);

bool sim_prefix_contains(const struct sim_prefix *p, const struct sim_addr *a);
/* True when every address of 'inner' lies in 'outer'. */
bool sim_prefix_covers(const struct sim_prefix *outer,
		       const struct sim_prefix *inner);
bool sim_prefix_intersects(const struct sim_prefix *a,
			   const struct sim_prefix *b);

/* ---- scenario ----------------------------------------------------------- */

enum sim_kind {
	SIM_STEADY,	/* N flows a day with a day/night curve */
	SIM_HEAVY,	/* like steady, millions a day */
	SIM_BURSTY,	/* most flows in a few short bursts a day */
	SIM_SCAN,	/* one attacker, many ports, inside a few seconds */
	SIM_FLOOD,	/* distinct sources, inside one millisecond */
};

/* One line of a scenario.  'day' is relative to the dataset's last day
 * (0 = today, -1 = yesterday) for events; ignored for hosts. */
struct sim_stream {
	enum sim_kind kind;
	char name[32];
	struct sim_prefix subject;	/* one address */
	struct sim_prefix peers;	/* where the other side is drawn from */
	uint32_t peer_pool;		/* distinct peers (0: as many as flows) */
	uint64_t flows;			/* a day (hosts) or in all (events) */
	int day;			/* events: day offset from today */
	int64_t at_ms;			/* events: offset into that day */
	int64_t span_ms;		/* events: length of the burst */
	uint32_t groups[4];		/* host group ids of the subject */
	int ngroups;
	int64_t max_dur_ms;		/* longest flow the stream makes */
};

struct sim_scenario {
	struct sim_stream streams[SIM_MAX_STREAMS];
	int nstreams;
};

/* Parse a scenario from text (see docs/flowsim.md for the format).  On a bad
 * line: -EINVAL and err names the line and the problem. */
int sim_scenario_parse(const char *text, struct sim_scenario *sc, char *err);

/* The built-in default scenario's text. */
extern const char sim_default_scenario[];

/* ---- the dataset -------------------------------------------------------- */

/* A stream's flows for one day, sorted by start time. */
struct sim_chunk {
	int64_t *start;		/* ms since the epoch, ascending */
	uint64_t n;
};

struct sim_dataset {
	struct sim_scenario sc;
	uint64_t seed;
	int64_t first_day_ms;	/* 00:00 UTC of the first day */
	int ndays;
	pthread_mutex_t lock;	/* guards lazy generation of chunks */
	struct sim_chunk *chunks;	/* nstreams * ndays, n == UINT64_MAX: not yet made */
};

/* Set up a dataset of 'ndays' days ending with the UTC day holding 'now_ms'.
 * Chunks are made lazily.  -ENOMEM on failure. */
int sim_dataset_init(struct sim_dataset *ds, const struct sim_scenario *sc,
		     uint64_t seed, int64_t now_ms, int ndays);
void sim_dataset_free(struct sim_dataset *ds);

/* The chunk of one stream and day, made on first use (thread-safe).
 * Returns NULL only when out of memory. */
const struct sim_chunk *sim_dataset_chunk(struct sim_dataset *ds, int stream,
					  int day);

/* A flow record as served. */
struct sim_flow {
	uint64_t id;
	int64_t start, end;
	struct sim_addr src, dst;
	uint16_t sport, dport;
	uint8_t proto, tcp_flags, icmp_type, icmp_code;
	uint64_t pkts, bytes;
	uint32_t in_if, out_if, exporter, app;
	uint32_t src_groups[4], dst_groups[4];
	uint8_t nsrc_groups, ndst_groups;
	uint32_t src_as, dst_as, sampling;
	uint8_t addr_style;	/* how an IPv6 address is spelled */
	uint8_t omit;		/* SIM_OMIT_* bits: optional fields left out */
	bool extra;		/* carries fields the API does not define */
};

#define SIM_OMIT_APP 1u
#define SIM_OMIT_AS 2u
#define SIM_OMIT_IF 4u

/* The first index of a chunk whose start is >= t (c->n when none). */
uint64_t sim_chunk_lower(const struct sim_chunk *c, int64_t t);

/* Fill 'f' with flow number 'pos' of stream 'stream' on day 'day'. */
void sim_flow_make(const struct sim_dataset *ds, int stream, int day,
		   uint64_t pos, int64_t start, struct sim_flow *f);

/* ---- queries ------------------------------------------------------------ */

enum sim_match { SIM_MATCH_START, SIM_MATCH_OVERLAP };

#define SIM_PEERS_MAX 64		/* prefixes in one SNA peer filter */

struct sim_query {
	struct sim_prefix ip;
	struct sim_prefix peer;		/* len 0 and has_peer false: anything */
	bool has_peer;
	/* the SNA dialect's peer filter is a list: peer, then these */
	struct sim_prefix more_peers[SIM_PEERS_MAX - 1];
	int nmore;
	int64_t start, end;		/* [start, end) in ms */
	enum sim_match match;
	int64_t visible_before;		/* flows not yet exported are hidden */
	int64_t export_delay_ms;
};

/* A reference to one flow of the dataset. */
struct sim_ref {
	int32_t stream, day;
	uint64_t pos;
};

/* The flows that match a query: contiguous runs of a chunk, plus single
 * flows that needed a per-flow test.  'total' counts both. */
struct sim_run {
	int32_t stream, day;
	uint64_t lo, hi;
};

struct sim_matches {
	struct sim_run *runs;
	size_t nruns, caprun;
	struct sim_ref *refs;
	size_t nrefs, capref;
	uint64_t total;
};

/* Does a flow match: (src in ip and dst in peer) or (dst in ip and src in
 * peer), the peer being everything when absent. */
bool sim_query_match_flow(const struct sim_query *q, const struct sim_flow *f);
/* a lies in the query's peer filter (any of its prefixes); false when the
 * query has no peer. */
bool sim_query_peer_contains(const struct sim_query *q, const struct sim_addr *a);

/* Collect every flow matching q.  Costs time in proportion to the flows in
 * the windows of the streams that can match, never to the dataset.
 * -ENOMEM on failure (m is then empty). */
int sim_query_collect(struct sim_dataset *ds, const struct sim_query *q,
		      struct sim_matches *m);
void sim_matches_free(struct sim_matches *m);

/* Reference number i (0 <= i < total) of the matches. */
struct sim_ref sim_matches_at(const struct sim_matches *m, uint64_t i);

/* Choose what a response carries: all matches when total <= limit, else
 * 'limit' distinct matches chosen at random; either way in a random order.
 * *out is malloc'd; *nout is its length.  -ENOMEM on failure. */
int sim_query_pick(const struct sim_matches *m, uint64_t limit, uint64_t rng,
		   struct sim_ref **out, size_t *nout);

/* The --foreign fault: spoil a picked answer as a collector that ignores
 * its filter would.  1 to 5 flows (never more than limit) that q does not
 * select are put at random places into refs[0..*n): exported flows whose
 * addresses do not match q, or that lie wholly outside its window (start
 * at or after its end, or end before its start), taken from the days of
 * the window and the day on each side.  The answer never grows past limit:
 * when it would, records of the true answer are left out so that it holds
 * exactly limit, and so looks saturated (it is incomplete).  The same
 * dataset, query, answer and seed give the same result.  0 with *refs
 * reallocated and *n updated (unchanged when no foreign flow was found in
 * a bounded number of tries); -ENOMEM leaves both as they were. */
int sim_query_foreign(struct sim_dataset *ds, const struct sim_query *q, uint64_t limit,
		      uint64_t seed, struct sim_ref **refs, size_t *n);

/* ---- output ------------------------------------------------------------- */

/* A growable buffer with a hard maximum: growing past it is -E2BIG. */
struct sim_buf {
	char *p;
	size_t len, cap, max;
};

int sim_buf_reserve(struct sim_buf *b, size_t more);
int sim_buf_add(struct sim_buf *b, const char *s, size_t n);
int sim_buf_printf(struct sim_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void sim_buf_free(struct sim_buf *b);

/* Write v in decimal at o (room for 20 digits); returns the new end. */
char *sim_put_u64(char *o, uint64_t v);

/* Append one record as a JSON object in the flowapi/1 form. */
int sim_json_flow(struct sim_buf *b, const struct sim_flow *f);

/* Append a JSON string literal (quoted and escaped). */
int sim_json_string(struct sim_buf *b, const char *s);

/* The lookup tables: fixed, with some names that are hostile to CSV. */
struct sim_hostgroup {
	uint32_t id, parent;	/* parent 0: a root */
	const char *name;
};
extern const struct sim_hostgroup sim_hostgroups[];
extern const size_t sim_nhostgroups;

int sim_json_applications(struct sim_buf *b);
int sim_json_hostgroups(struct sim_buf *b);
int sim_json_exporters(struct sim_buf *b);
/* Name of an application id, or NULL. */
const char *sim_app_name(uint32_t id);

/* ---- randomness --------------------------------------------------------- */

/* splitmix64: a bijective mix, the source of every derived field. */
static inline uint64_t sim_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* A small fast generator (xorshift64*) for per-request choices. */
static inline uint64_t sim_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [0, n) without modulo bias worth caring about (n < 2^32). */
static inline uint64_t sim_rand_below(uint64_t *s, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)sim_rand(s) * n) >> 64);
}

/* ---- the server --------------------------------------------------------- */

enum sim_fault {
	SIM_FAULT_500, SIM_FAULT_503, SIM_FAULT_429, SIM_FAULT_SLOW,
	SIM_FAULT_STALL, SIM_FAULT_RESET, SIM_FAULT_CUT, SIM_FAULT_MALFORMED,
	SIM_FAULT_HTML, SIM_FAULT_401, SIM_FAULT_FOREIGN, SIM_NFAULTS
};

extern const char *const sim_fault_names[SIM_NFAULTS];

enum sim_dialect { SIM_FLOWAPI, SIM_SNA, SIM_FLOWMON };

#define SIM_MAX_DAYS 400		/* --days at most */
#define SIM_SNA_STATUS_MAX 4		/* --sna-status-extra names at most */

struct sim_config {
	enum sim_dialect dialect;
	char listen[128];
	char port_file[512];
	char token[16385];	/* empty: no authentication; up to 16 KiB, as flowfs takes */
	uint64_t seed;
	int ndays;
	int64_t now_ms;		/* 0: the real clock */
	uint32_t max_records;
	enum sim_match match;
	int export_delay_s;
	int retention_days;
	bool truth;
	bool log;
	bool faults_all;	/* faults on every endpoint, not only /flows */
	double rate[SIM_NFAULTS];
	int retry_after_s;
	int slow_ms;
	int stall_s;
	uint64_t fault_seed;
	/* the SNA dialect (docs/flowsim.md, "The SNA dialect") */
	char sna_user[128], sna_password[128];
	int sna_session_s;		/* session lifetime */
	int sna_query_ms;		/* IN_PROGRESS this long */
	int sna_query_ttl_s;		/* kept this long once done */
	uint32_t sna_max_queries;
	int sna_tenants;		/* 1 or 2 */
	bool sna_any_accept;		/* tenants list whatever Accept says */
	bool sna_no_xsrf;		/* no XSRF-TOKEN cookie, no check */
	bool sna_xsrf_header_only;	/* the header alone, no cookie needed */
	int sna_xsrf_rotate_s;		/* a session's XSRF token changes (0: never) */
	bool sna_tags_display_name;	/* tag list items carry displayName too */
	double sna_fail_query;		/* rate of searches that end FAILED */
	double sna_cancel_query;	/* rate of searches that end CANCELED */
	/* non-final statuses a search shows before IN_PROGRESS */
	char sna_status_extra[SIM_SNA_STATUS_MAX][32];
	int sna_nstatus_extra;
	/* the Flowmon dialect (docs/flowsim.md, "The Flowmon dialect");
	 * its login is token ("user:password"; empty: admin:flowsim) */
	int fm_token_ttl_s;		/* expires_in of an access token */
	int fm_pending;			/* 202 answers a result gives before 200 */
	int fm_result_ttl_s;		/* a result is forgotten this long after its listing */
	int fm_active_timeout_s;	/* a flow is exported up to this long after its end */
	char fm_tz[65];			/* the collector's zone (IANA name) */
	bool fm_to_exclusive;		/* the slot starting at "to" is not read */
	bool fm_id_keys;		/* rows keyed by column ids, not internal names */
	uint64_t fm_scale_min;		/* numbers from this on are scaled ("1.3 G"); 0: never */
};

/* Check rates and limits; -EINVAL with the cause in err. */
int sim_config_check(const struct sim_config *cfg, char *err);

struct sim_server;

/* Listen, write the port file, serve in background threads.  -errno with the
 * cause in err. */
int sim_server_start(const struct sim_config *cfg, struct sim_dataset *ds,
		     struct sim_server **out, char *err);
/* Stop serving (wakes stalled answers), free everything. */
void sim_server_stop(struct sim_server *s);

/* The collector's clock. */
int64_t sim_now_ms(const struct sim_config *cfg);

/* Parse a time: integer ms since the epoch, or ISO 8601 UTC
 * ("2026-11-29T10:00:00Z", "2026-11-29").  -EINVAL on anything else. */
int sim_time_parse(const char *text, int64_t *ms);

/* ---- the SNA dialect (sna.c) ------------------------------------------- */

/*
 * flowsim --dialect sna serves the dataset through the flow search API of
 * Cisco Secure Network Analytics: cookie sessions with an XSRF header,
 * asynchronous searches, records keyed by (flowCollectorId, id).  server.c
 * owns HTTP; this module owns the sessions, the searches and the bodies.
 */

/* The SNA endpoints, in the order /_sim/counters lists them. */
enum sim_sna_ep {
	SIM_SNA_LOGIN, SIM_SNA_LOGOUT, SIM_SNA_TENANTS, SIM_SNA_CREATE,
	SIM_SNA_POLL, SIM_SNA_RESULTS, SIM_SNA_TAGS, SIM_SNA_HOST_TAGS, SIM_SNA_NEP
};
extern const char *const sim_sna_ep_names[SIM_SNA_NEP];

/* Where a request goes: ep -1 for an unknown path. */
struct sim_sna_route {
	int ep;
	bool method_ok;
	bool flows;		/* a flow search endpoint (fault scope "flows") */
	char tenant[64];	/* path segments, as sent */
	char id[64];		/* search id, or tag id ("" for the tag list) */
};

void sim_sna_route(const char *method, const char *url, struct sim_sna_route *r);

struct sim_sna_req {
	const char *method;
	const struct sim_sna_route *route;
	const char *jwt;	/* the stealthwatch.jwt cookie, or NULL */
	const char *xsrf;	/* the X-XSRF-TOKEN header, or NULL */
	const char *xsrf_cookie;	/* the XSRF-TOKEN cookie, or NULL */
	const char *accept;	/* the Accept header, or NULL */
	const char *body;	/* the request body (may be NULL when empty) */
	size_t body_len;
	bool foreign;		/* the foreign fault: results hold other flows too */
	uint64_t foreign_seed;	/* its choices (sim_query_foreign) */
};

struct sim_sna_answer {
	unsigned status;
	struct sim_buf body;	/* the caller frees it */
	const char *type;	/* Content-Type; NULL: none (a 204) */
	char cookie[2][400];	/* Set-Cookie values */
	int ncookies;
};

struct sim_sna;

/* The dialect's state (sessions, searches) over a dataset.  -ENOMEM. */
int sim_sna_new(const struct sim_config *cfg, struct sim_dataset *ds,
		struct sim_sna **out);
void sim_sna_free(struct sim_sna *s);

/* Answer one routed request (the route known, method allowed, no fault):
 * sessions, XSRF, Accept, tenant, body, search.  0 with *a filled, or -ENOMEM /
 * -E2BIG (the caller answers 500). */
int sim_sna_serve(struct sim_sna *s, const struct sim_sna_req *rq,
		  struct sim_sna_answer *a);

/* Whether an Accept header value admits the media type 'type' ("text/plain"):
 * comma-separated media ranges with optional parameters; the most specific
 * range that matches decides (text/plain before text/<star> before
 * <star>/<star>; a lone <star> counts as <star>/<star>; of equal ones the
 * highest q), and its q (default 1) must be above 0.  Parameters other than
 * q are ignored.  No header (NULL) or an empty one admits everything;
 * ranges that do not parse (a q outside 0 to 1 included) are skipped. */
bool sim_sna_accepts(const char *accept, const char *type);

/* A --sna-status-extra list ("PENDING,QUEUED") into the config: 1 to
 * SIM_SNA_STATUS_MAX names of A-Z, 0-9 and _, none of them IN_PROGRESS or a
 * final status.  -EINVAL (the config unchanged) otherwise. */
int sim_sna_parse_statuses(const char *list, struct sim_config *cfg);

/* {"errors":[{"code":..,"message":..}]} for a status. */
int sim_sna_error_body(struct sim_buf *b, unsigned status, const char *msg);

/* The SNA record id of a flow: 1 to 2^47, unique in the dataset, stable. */
uint64_t sim_sna_flow_id(const struct sim_dataset *ds, int stream, int day,
			 uint64_t pos);

/* Append one record in the SNA form: the subject is the side q->ip (with
 * q->peer) matched; with interfaces, the client side carries the flow's
 * interfaces (the search asked includeInterfaceData). */
int sim_sna_json_flow(struct sim_buf *b, const struct sim_flow *f, uint64_t sna_id,
		      const struct sim_query *q, int tenant, bool interfaces);

/* The "sna" object of /_sim/counters; reset zeroes the counts. */
int sim_sna_counters(struct sim_sna *s, struct sim_buf *b);
void sim_sna_counters_reset(struct sim_sna *s);
/* Expire every live session now; returns how many. */
int sim_sna_expire_sessions(struct sim_sna *s);

/* ---- the Flowmon dialect (flowmon.c) --------------------------------------- */

/*
 * flowsim --dialect flowmon serves the dataset through Flowmon's REST API:
 * OAuth password login, tokens that expire, asynchronous flow listings over
 * 5-minute slots of export time with an nfdump filter, rows of strings.
 * server.c owns HTTP; this module owns the tokens, the results, the filter
 * and the rows.  docs/flowmon.md gives the public sources.
 */
#define SIM_FM_SLOT_MS 300000LL		/* an nfcapd file's slot */

/* The Flowmon endpoints, in the order /_sim/counters lists them. */
enum sim_fm_ep {
	SIM_FM_TOKEN, SIM_FM_PROFILES, SIM_FM_CHANNELS, SIM_FM_NFCOLUMNS, SIM_FM_FLOWS,
	SIM_FM_RESULTS, SIM_FM_RESULT_LIST, SIM_FM_NEP
};
extern const char *const sim_fm_ep_names[SIM_FM_NEP];

/* Where a request goes: ep -1 for an unknown path. */
struct sim_fm_route {
	int ep;
	bool method_ok;
	bool flows;		/* a listing or a result (fault scope "flows") */
	char id[24];		/* the result id, digits */
};

void sim_fm_route(const char *method, const char *url, struct sim_fm_route *r);

struct sim_fm_req {
	const struct sim_fm_route *route;
	const char *auth;	/* the Authorization header, or NULL */
	const char *ctype;	/* the Content-Type header, or NULL */
	const char *body;	/* the request body (may be NULL when empty) */
	size_t body_len;
	/* a URL argument by name (decoded), or NULL */
	const char *(*arg)(void *cls, const char *name);
	void *arg_cls;
};

struct sim_fm_answer {
	unsigned status;
	struct sim_buf body;	/* the caller frees it */
	const char *type;	/* Content-Type; NULL: none (a 204) */
	const char *fm_message;	/* the X-FM-Message header, or NULL */
};

/* A parsed nfdump filter (the subset of docs/flowsim.md). */
struct sim_fm_filter;

/* Parse an nfdump filter; "" is "any".  -EINVAL with the cause (and where)
 * in err, -ENOMEM; *out is the caller's to free. */
int sim_fm_filter_parse(const char *text, struct sim_fm_filter **out, char *err);
bool sim_fm_filter_match(const struct sim_fm_filter *flt, const struct sim_flow *f);
void sim_fm_filter_free(struct sim_fm_filter *flt);

/* What a listing reads: the flows exported in [lo, hi) (ms), of the
 * channels in the bit mask (bit i: exporter i + 1), that the filter (NULL:
 * any) matches, in slots closed by visible_before. */
struct sim_fm_search {
	int64_t lo, hi;
	int64_t visible_before;
	int64_t active_timeout_ms;
	unsigned channels;
	const struct sim_fm_filter *filter;
};

/* When a flow is exported: its end plus a delay from 0 to the active
 * timeout, a pure function of the flow. */
int64_t sim_fm_export_ms(const struct sim_flow *f, int64_t active_timeout_ms);

/* Every flow a search selects, in no particular order: *out (malloc'd,
 * *n long).  Costs time in proportion to the flows that start within the
 * longest duration plus the timeout before the window.  -ENOMEM. */
int sim_fm_collect(struct sim_dataset *ds, const struct sim_fm_search *q,
		   struct sim_ref **out, size_t *n);

/* Make zone (an IANA name under /usr/share/zoneinfo, or UTC) the process's
 * local zone (TZ), before any thread starts.  -EINVAL / -ENOENT with err. */
int sim_fm_zone_set(const char *zone, char *err);
/* "YYYY-MM-DD HH:MM" of the local zone to ms.  -EINVAL when malformed,
 * -ERANGE when the zone has no such time (a DST gap). */
int sim_fm_time_parse(const char *text, int64_t *ms);
/* ms as "YYYY-MM-DD HH:MM:SS.mmm" of the local zone. */
void sim_fm_time_format(int64_t ms, char *buf, size_t len);
/* v as nfdump writes it: exact below scale_min (0: always exact), else
 * one decimal, a space and K, M, G or T (1000-based): "1.3 G". */
void sim_fm_number(uint64_t v, uint64_t scale_min, char *buf, size_t len);

/* Append one row: the columns cols[0..ncols) (indices of nfcolumns' list),
 * every value a string, keyed by the internal names or the column ids. */
int sim_fm_json_row(struct sim_buf *b, const struct sim_flow *f, const uint8_t *cols,
		    int ncols, bool id_keys, uint64_t scale_min);

struct sim_fm;

/* The dialect's state over a dataset.  -EINVAL when cfg->token is set but
 * not "user:password", -ENOMEM. */
int sim_fm_new(const struct sim_config *cfg, struct sim_dataset *ds, struct sim_fm **out);
void sim_fm_free(struct sim_fm *s);

/* Answer one routed request (route known, method allowed, no fault):
 * token grants, the bearer check, profiles, channels, nfcolumns, listings
 * and results.  0 with *a filled, or -ENOMEM / -E2BIG (the caller answers
 * 500). */
int sim_fm_serve(struct sim_fm *s, const struct sim_fm_req *rq, struct sim_fm_answer *a);

/* Error bodies: 405 a ValidationResult, 400/401 OAuth's {"error":...},
 * others {"code":N,"status":"error","message":...}. */
int sim_fm_error_body(struct sim_buf *b, unsigned status, const char *msg);
int sim_fm_validation_body(struct sim_buf *b, const char *field, const char *msg);

/* The "flowmon" object of /_sim/counters; reset zeroes the counts. */
int sim_fm_counters(struct sim_fm *s, struct sim_buf *b);
void sim_fm_counters_reset(struct sim_fm *s);
/* Expire every live access token now (refresh tokens stay good). */
int sim_fm_expire_tokens(struct sim_fm *s);

/* GET /_sim/flowmon/truth: {"count": N[, "rows": [...]]}, the uncapped
 * rows (every column, as served) of the flows exported in [from, to) ms.
 * A bad parameter sets *msg (for a 400) and returns 0. */
int sim_fm_truth(struct sim_fm *s, const char *from, const char *to, const char *filter,
		 const char *channels, bool rows, struct sim_buf *b, const char **msg);

#endif
