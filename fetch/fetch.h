/*
 * fetch.h - the whole face of the engine room: it downloads the flows of a
 * query from a collector, losslessly, into the cache.
 *
 * The collector caps every answer (max_records), has no pagination and
 * answers in no order.  The engine therefore asks for windows: a window
 * whose answer holds fewer than max_records records is complete; a full
 * ("saturated") answer is a sample of the window, which the planner splits
 * where the sample says (time first, then the peer prefix at the driver's
 * time granularity) until every part is complete.  A part that cannot be
 * split further is a gap: recorded with the count it saw, reported, never
 * hidden.
 *
 * Layers, each in its own file:
 *   plan.c      the planner: pure logic over windows and samples, no I/O
 *               (unit-tested against an in-process fake collector)
 *   http.c      libcurl multi: bounded requests in flight, deadlines
 *   drivers.c   the table of drivers (name, URL prefix, capabilities, ops)
 *               and the one reading of "URL + driver option"
 *   flowapi.c   the reference dialect's driver (flowapi/1): requests,
 *               decoding, its error format
 *   flowmon.c   the Flowmon appliance's driver (OAuth, asynchronous
 *               listings of 5-minute slots, a slot split by filters)
 *   sna.c       the SNA driver; each dialect is one file behind
 *               fetch_i.h's struct driver_ops, and one line of drivers.c
 *   nfdump_drv.c the nfdump archive's driver (no HTTP: it runs nfdump for
 *               each window), over nfdump.c, the dialect's core
 *   json.c      what the JSON dialects' drivers share (arena, strict readers)
 *   community.c Community ID v1
 *   engine.c    the loop: planner + HTTP + retries + decoding threads +
 *               one store thread writing windows into the cache
 *
 * Conventions: 0 or a negative errno; on error a one-line cause in 'err'
 * (FETCH_ERRLEN bytes).  The cause is logged once, by the front that turns
 * it into an exit status or errno.
 */
#ifndef FLOWFS_FETCH_H
#define FLOWFS_FETCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "opttab.h"

#define FETCH_ERRLEN 512

/* The longest token accepted, in bytes: OAuth and JWT bearer tokens of real
 * identity providers are often 1 to 4 KiB.  A longer one is refused with a
 * message, never cut (issue 12). */
#define FETCH_TOKEN_MAX 16384

/* The smallest cap (max_records) the engine works with, from /info or the
 * option: under it a day becomes hundreds of thousands of windows. */
#define FETCH_CAP_MIN 100

/*
 * The engine's options that both fronts take (flowfs -o NAME=, flowfetch
 * --NAME with '-' for '_'): the one place where each one's range, default
 * and help are written (issue 15).  Both fronts' option tables take their
 * entry from FETCH_OPTTAB (opttab.h), so a value is refused by both alike,
 * with the same words, and fetch_engine_open fills a 0 with the same
 * default.  In seconds, but max_inflight, retries and max_records.
 */
#define FETCH_MAX_INFLIGHT_MIN 1
#define FETCH_MAX_INFLIGHT_MAX 64
#define FETCH_MAX_INFLIGHT_FLAGS 0
#define FETCH_MAX_INFLIGHT_DEF 4
#define FETCH_MAX_INFLIGHT_ARG "N"
#define FETCH_MAX_INFLIGHT_HELP "requests in flight for a query"
#define FETCH_LIVE_TTL_MIN 0
#define FETCH_LIVE_TTL_MAX 86400
#define FETCH_LIVE_TTL_FLAGS 0
#define FETCH_LIVE_TTL_DEF 60
#define FETCH_LIVE_TTL_ARG "S"
#define FETCH_LIVE_TTL_HELP "the windows inside the collector's export delay (still " \
	"filling) are fetched again when fetched more than S seconds ago"
#define FETCH_STALL_TIMEOUT_MIN 1
#define FETCH_STALL_TIMEOUT_MAX 3600
#define FETCH_STALL_TIMEOUT_FLAGS 0
#define FETCH_STALL_TIMEOUT_DEF 30
#define FETCH_STALL_TIMEOUT_ARG "S"
#define FETCH_STALL_TIMEOUT_HELP "a request that receives nothing for S seconds fails " \
	"(and is retried)"
#define FETCH_REQUEST_TIMEOUT_MIN 1
#define FETCH_REQUEST_TIMEOUT_MAX 86400
#define FETCH_REQUEST_TIMEOUT_FLAGS 0
#define FETCH_REQUEST_TIMEOUT_DEF 300
#define FETCH_REQUEST_TIMEOUT_ARG "S"
#define FETCH_REQUEST_TIMEOUT_HELP "a request that lasts S seconds in all fails (and is retried)"
#define FETCH_CONNECT_TIMEOUT_MIN 1
#define FETCH_CONNECT_TIMEOUT_MAX 600
#define FETCH_CONNECT_TIMEOUT_FLAGS 0
#define FETCH_CONNECT_TIMEOUT_DEF 10
#define FETCH_CONNECT_TIMEOUT_ARG "S"
#define FETCH_CONNECT_TIMEOUT_HELP "a connection (HTTP, or ssh's) not made in S seconds fails"
#define FETCH_RETRIES_MIN 1
#define FETCH_RETRIES_MAX 100
#define FETCH_RETRIES_FLAGS 0
#define FETCH_RETRIES_DEF 6
#define FETCH_RETRIES_ARG "N"
#define FETCH_RETRIES_HELP "attempts per window after the first, with exponential backoff"
#define FETCH_MAX_RECORDS_MIN FETCH_CAP_MIN
#define FETCH_MAX_RECORDS_MAX 10000000
/* 0 (not given) means the collector's word, else the default: the
 * fronts keep the difference (cap_assumed) */
#define FETCH_MAX_RECORDS_FLAGS OPTTAB_UNSET
#define FETCH_MAX_RECORDS_DEF 10000
#define FETCH_MAX_RECORDS_ARG "N"
#define FETCH_MAX_RECORDS_HELP "the collector's cap when it does not say (sna; flowmon: " \
	"at most its 10000); nfdump: " \
	"the most records a window may hold (the driver sets its own default)"
/* An nfdump archive's exporters' active timeout: a flow that started in a
 * window may be written this long (and one file) after it. */
#define FETCH_ACTIVE_TIMEOUT_MIN 1
#define FETCH_ACTIVE_TIMEOUT_MAX 86400
#define FETCH_ACTIVE_TIMEOUT_FLAGS 0
#define FETCH_ACTIVE_TIMEOUT_DEF 300
#define FETCH_ACTIVE_TIMEOUT_ARG "S"
#define FETCH_ACTIVE_TIMEOUT_HELP "nfdump, flowmon: the exporters' active timeout (how " \
	"long after its start a flow may be exported)"
#define FETCH_ACTIVE_TIMEOUT_DEFAULT FETCH_ACTIVE_TIMEOUT_DEF
/* The team's shared cache (cache_url, cache/pg.h): its session's heartbeat
 * period, and the silence after which a session is expired and its claims
 * are taken by others (a crashed or stopped client).  The expiry must
 * exceed the heartbeat (fetch_engine_open refuses it otherwise). */
#define FETCH_PG_HEARTBEAT_MIN 1
#define FETCH_PG_HEARTBEAT_MAX 3600
#define FETCH_PG_HEARTBEAT_FLAGS 0
#define FETCH_PG_HEARTBEAT_DEF 5
#define FETCH_PG_HEARTBEAT_ARG "S"
#define FETCH_PG_HEARTBEAT_HELP "with cache_url: the session's heartbeat, every S seconds"
#define FETCH_PG_EXPIRY_MIN 2
#define FETCH_PG_EXPIRY_MAX 86400
#define FETCH_PG_EXPIRY_FLAGS 0
#define FETCH_PG_EXPIRY_DEF 30
#define FETCH_PG_EXPIRY_ARG "S"
#define FETCH_PG_EXPIRY_HELP "with cache_url: a session without a heartbeat for S " \
	"seconds is expired, and others fetch what it had claimed (more than pg_heartbeat)"

/* The help of the text options both fronts take, written once (the
 * fronts' tables use these; the defaults spell the front's own option). */
#define FETCH_HELP_TOKEN_FILE "the bearer token: the file's first line (the file private " \
	"to you: chmod 600; never the token on the command line); for an SNA Manager " \
	"or a Flowmon appliance user:password"
#define FETCH_HELP_CACHE "the cache directory (yours, mode 0700; shared by flowfs and " \
	"flowfetch)"
#define FETCH_DEF_CACHE "$XDG_CACHE_HOME/flowfs, else ~/.cache/flowfs"
#define FETCH_HELP_CACHE_URL "the team's shared cache on PostgreSQL: a libpq connection " \
	"string (postgresql://user@host/db, key=value pairs or service=NAME); the password " \
	"from ~/.pgpass, PGPASSFILE or the service file, never here; the local cache stays " \
	"as its mirror"
#define FETCH_DEF_CACHE_URL "none: this machine's cache only"
#define FETCH_HELP_DRIVER "the collector's dialect (a driver with logins takes " \
	"user:password as the token)"
#define FETCH_HELP_TENANT "sna: the tenant (domain) id, when the Manager has several"
#define FETCH_HELP_PROFILE "flowmon: the profile whose channels are read"
#define FETCH_DEF_PROFILE "live"
#define FETCH_HELP_CHANNELS "flowmon: the channels to read, comma-separated (their names, " \
	"the text after the last /)"
#define FETCH_DEF_CHANNELS "every channel of the profile"
#define FETCH_HELP_COLLECTOR_TZ "flowmon: the appliance's zone, of its searches' from/to " \
	"and of its rows' times: UTC, an offset (+01:00) or a zone's name (Europe/Prague); " \
	"wrong, flows land on the wrong day"
#define FETCH_HELP_FILES_TZ "nfdump: the zone of the archive's file names: UTC, an " \
	"offset (+01:00) or an IANA zone (Europe/Prague); checked at start against the " \
	"newest file's flows"
#define FETCH_HELP_NFDUMP "nfdump: the nfdump program (over ssh: on the collector's PATH)"
#define FETCH_DEF_NFDUMP "nfdump on PATH"
#define FETCH_HELP_SSH_CONFIG "nfdump+ssh: ssh's configuration file (ssh -F)"
#define FETCH_HELP_IDENTITY "nfdump+ssh: the private key (ssh -i)"
#define FETCH_HELP_KNOWN_HOSTS "nfdump+ssh: the known hosts"
#define FETCH_DEF_KNOWN_HOSTS "the user's"
#define FETCH_HELP_CA_FILE "trust this CA bundle too"
#define FETCH_HELP_INSECURE "do not verify TLS certificates (say so in your case notes)"

/* The drivers, for the driver option's help: an opttab_prog.values. */
void fetch_driver_values(int key, char *buf, size_t len);

/* The struct opttab entry of engine option ID (MAX_INFLIGHT, ...) named
 * 'name' ("max_inflight"), with the program's key, stored at 'at'. */
#define FETCH_OPTTAB(ID, nm, k, where)                                               \
	{.name = nm, .type = OPTTAB_INT, .arg = FETCH_##ID##_ARG, .lo = FETCH_##ID##_MIN, \
	 .hi = FETCH_##ID##_MAX, .def = FETCH_##ID##_DEF, .help = FETCH_##ID##_HELP,     \
	 .flags = FETCH_##ID##_FLAGS, .key = k, .at = where}

/* ---- the planner -------------------------------------------------------- */

/* Dimensions a driver can split a query by, besides time. */
#define FETCH_SPLIT_PEER 1u
#define FETCH_SPLIT_PROTO 2u
#define FETCH_SPLIT_PORT 4u
/* The driver can ask for several peer prefixes in one request (SNA's
 * peer.ipAddresses.includes is a list): the planner then asks the light
 * prefixes of a peer split together, up to PLAN_PEER_SET_MAX of them. */
#define FETCH_SPLIT_PEER_SET 8u
/* The driver splits a full window of one slot itself first (Flowmon's
 * disjoint filters): the planner splits a slot by peer only once it came
 * back full, never at once from a parent's sample (plan_slot_by_peer). */
#define FETCH_SPLIT_PEER_LAST 16u
#define PLAN_PEER_SET_MAX 48

struct plan_cfg {
	uint32_t cap;			/* max_records of the collector */
	int64_t granularity_ms;		/* smallest time step the driver can ask */
	int64_t max_window_ms;		/* longest window the driver can ask */
	unsigned split_dims;		/* FETCH_SPLIT_* */
	struct cache_prefix subject;
	struct cache_prefix peer;	/* the query's peer: all of the family when absent */
	bool has_peer;
	double fill;			/* aim each leaf at fill * cap (default 0.9) */
	/* The start times earlier answers showed for the same hours of
	 * another day, moved onto the query's range (ascending), or NULL:
	 * with them, the planner sizes and places its first windows without
	 * a probe. */
	const int64_t *prior;
	size_t nprior;
};

struct plan;

/* One request the planner wants sent. */
struct plan_req {
	uint64_t id;		/* give it back with the answer */
	int64_t start, end;
	struct cache_prefix peer;
	bool has_peer;		/* false only when the query has no peer and no split was needed */
	/* With FETCH_SPLIT_PEER_SET: when npeer_set > 1, the peer filter is
	 * any of peer_set[0..npeer_set) (peer is the first); the planner's
	 * memory, valid until plan_free. */
	const struct cache_prefix *peer_set;
	size_t npeer_set;
};

/* What an answer closed. */
enum plan_ev_kind {
	PLAN_COVER,		/* [start, end) is complete for the query's peer */
	PLAN_GAP,		/* [start, end) x peer could not be closed */
};

struct plan_ev {
	enum plan_ev_kind kind;
	int64_t start, end;
	struct cache_prefix peer;	/* PLAN_GAP: the narrowest peer tried */
	int64_t records;		/* PLAN_COVER: records answered inside it (leaf windows) */
	int64_t seen;			/* PLAN_GAP: records in its saturated answer */
};

/* Start planning the given missing intervals.  -EINVAL on a bad config. */
int plan_new(const struct plan_cfg *cfg, const struct cache_ivals *missing,
	     struct plan **out);
void plan_free(struct plan *p);

/* The next request to send: 0 and *req filled, or -EAGAIN when nothing can
 * be asked until an answer comes back. */
int plan_next(struct plan *p, struct plan_req *req);

/*
 * The answer to request 'id': how many records it held ('answered', which
 * decides whether it was full), and the start times and peer-side
 * addresses of the n of them that could be read (peers may be NULL when
 * the driver cannot split by peer).  The events it closes are returned in
 * *ev (malloc'd, *nev entries; free with free()).  -ENOENT for an unknown
 * or already answered id, -ENOMEM.
 */
int plan_answer(struct plan *p, uint64_t id, size_t answered, size_t n,
		const int64_t *starts, const uint8_t (*peers)[16], struct plan_ev **ev,
		size_t *nev);

/* True when every window is answered, covered or a gap. */
bool plan_done(const struct plan *p);

struct plan_stats {
	uint64_t requests;	/* handed out by plan_next */
	uint64_t saturated;	/* answers that were full */
	uint64_t peer_splits;	/* windows split by peer */
	uint64_t gaps;
	uint64_t outstanding;	/* handed out, not yet answered */
	uint64_t planned;	/* windows planned so far (queued + handed out) */
	uint64_t rescales;	/* unsent windows planned again at a corrected size */
};
void plan_get_stats(const struct plan *p, struct plan_stats *st);

/* The other side of a flow as the planner splits it: dst when src lies in
 * the subject, else src. */
const uint8_t *plan_peer_of(const struct cache_prefix *subject, const uint8_t src[16],
			    const uint8_t dst[16]);

/* ---- Community ID ------------------------------------------------------- */

/* Community ID v1 of a flow (seed 0): "1:" + base64(SHA-1).  out: 32 bytes.
 * Empty string when the protocol is unknown. */
void fetch_community_id(const struct flow_rec *f, uint16_t seed, char out[32]);
/* Free the calling thread's hashing state (at the end of a thread that
 * computed IDs). */
void fetch_community_done(void);

/* ---- drivers.c: the table of drivers ------------------------------------- */

/* What a driver can do besides what its ops say (fetch_i.h); the engine
 * and the fronts test these, never a driver's name. */
enum {
	/* It speaks HTTP through http.c: its URL (after its prefix) is
	 * http:// or https://, the token is sent to it, the TLS options
	 * apply.  Without it, the driver runs each window itself
	 * (driver_ops.window_run) and the engine opens no HTTP client for it. */
	FETCH_DRIVER_HTTP = 1u << 0,
	/* It logs in with the token as user:password and keeps a session
	 * (driver_ops.session, sign and logout). */
	FETCH_DRIVER_SESSIONS = 1u << 1,
};

#define FETCH_DRIVER_PREFIXES 2

struct driver_ops;

/* One line of the table of drivers (drivers.c). */
struct fetch_driver {
	const char *name;		/* -o driver=, --driver, fetch_opts.driver */
	/* URL prefixes that name the driver ("sna+"; NULL: none); what follows
	 * the prefix is the URL the driver is given */
	const char *prefix[FETCH_DRIVER_PREFIXES];
	const char *url_form;		/* a URL with the prefix, for --help; NULL */
	const char *what;		/* what it talks to, for messages: "an SNA Manager" */
	const char *secret;		/* its token, for warnings: "the token", "the SNA password";
					 * NULL: it takes none (the fronts neither read nor
					 * warn about one) */
	unsigned caps;			/* FETCH_DRIVER_* */
	const struct driver_ops *ops;	/* the driver itself (fetch_i.h) */
};

/*
 * The driver that a collector's URL and the driver option (-o driver=,
 * --driver; NULL when not given) name: a URL that starts with a driver's
 * prefix names that driver ("sna+https://m" is sna at "https://m"), else
 * the option names it, else the table's first line.  0 with *drv and
 * *transport_url (url past the prefix, pointing into url); -EINVAL with
 * the cause in err for an unknown name (the message lists the table's
 * names), a prefix and an option that disagree, or, for a driver with
 * FETCH_DRIVER_HTTP, a URL that is not http:// or https://.  Both fronts
 * and the engine call it: nothing else reads a prefix.
 */
int fetch_driver_resolve(const char *url, const char *driver_opt, const struct fetch_driver **drv,
			 const char **transport_url, char *err);
/* The line of that name, or NULL. */
const struct fetch_driver *fetch_driver_find(const char *name);
/* The table's i-th line (0 is the default), NULL past its end. */
const struct fetch_driver *fetch_driver_at(size_t i);
/* The drivers for --help: "flowapi (default) or sna (also: a URL
 * sna+https://MANAGER)"; cut to len. */
void fetch_driver_help(char *buf, size_t len);

/* ---- the engine ---------------------------------------------------------- */

struct fetch_opts {
	const char *url;		/* the collector's base URL */
	const char *token;		/* bearer token; for sna "user:password" (never logged) */
	const char *driver;		/* a driver's name (fetch_driver_resolve: the URL's
					 * prefix may name it); NULL: the default */
	/* A driver that is not in the table (NULL: resolve url and driver):
	 * for the unit tests' fake drivers; url is then given to it whole. */
	const struct fetch_driver *driver_def;
	const char *tenant;		/* sna: the tenant (domain) id; NULL: the only one */
	/* flowmon: the profile (NULL: "live"), its channels (comma-separated
	 * names; NULL: all of them) and the appliance's zone (NULL: UTC; as
	 * files_tz: an offset or an IANA name); active_timeout_s applies too */
	const char *profile, *channels, *collector_tz;
	/* nfdump (an archive of nfcapd files): the zone of the file names
	 * (NULL: the process's zone, TZ), the exporters' active timeout in
	 * seconds (0: FETCH_ACTIVE_TIMEOUT_DEFAULT; at most
	 * FETCH_ACTIVE_TIMEOUT_MAX) and the nfdump program (NULL: "nfdump"
	 * on PATH) */
	const char *files_tz;
	unsigned active_timeout_s;
	const char *nfdump;
	/* nfdump+ssh:// (an archive on another host, read through ssh): ssh's
	 * -F config file, -i identity file and UserKnownHostsFile (NULL: ssh's
	 * own defaults, the user's); nfdump is then the program on the
	 * collector, and connect_timeout_ms ssh's ConnectTimeout */
	const char *ssh_config;
	const char *identity;
	const char *known_hosts;
	const char *cache_dir;
	/* The team's shared cache (cache/pg.h): a libpq connection string,
	 * NULL for none (this machine's cache only, the path of old); never
	 * logged whole (cache_pg_target).  Its session's heartbeat and expiry
	 * in seconds (0: FETCH_PG_HEARTBEAT_DEF, FETCH_PG_EXPIRY_DEF). */
	const char *cache_url;
	int pg_heartbeat_s, pg_expiry_s;
	unsigned max_inflight;		/* requests in flight (default 4) */
	long connect_timeout_ms;	/* default 10,000 */
	long stall_s;			/* no byte for this long: give up (default 30) */
	long request_timeout_ms;	/* one request, start to end (default 300,000) */
	unsigned max_retries;		/* per window, 5xx/resets/timeouts/garbage (default 6) */
	int64_t live_ttl_ms;		/* refetch provisional windows older than this */
	uint32_t max_records;		/* used when /info does not say (default 10,000) */
	int compress;			/* 1 ask gzip, 0 never, -1 auto: not on loopback */
	bool insecure;			/* do not verify TLS (explicit user choice) */
	const char *ca_file;		/* extra CA bundle */
	unsigned decode_threads;	/* default: the number of online CPUs */
	size_t max_body;		/* largest answer accepted (default 256 MiB); a query's
					 * answers are bounded tighter, by the cap (fetch_result) */
	size_t max_held;		/* bytes of answers held at once by every query of the
					 * engine, received or waiting to be decoded (default
					 * 256 MiB; never under one answer's bound) */
	/* Where the engine reports what a front should log, with its level
	 * (FETCH_LOG_*: an audit pass that found holes is INFO, each window
	 * asked DEBUG) and the query it is about: tag, the log_tag of the
	 * fetch_progress given to fetch_query (NULL when none was given); NULL:
	 * nowhere.  Called on the querying thread.  Times in the line are ISO
	 * 8601 (cache_time_format), never epoch milliseconds. */
	void (*log)(void *arg, int level, void *tag, const char *line);
	void *log_arg;
};

/* The levels of the engine's log lines, and of the fronts' logs: a front
 * that logs at level L writes the lines of level L and below. */
enum fetch_log_level {
	FETCH_LOG_ERROR,	/* failures: a query that failed, a gap */
	FETCH_LOG_INFO,		/* what was done: a mount, a query's end, an audit pass */
	FETCH_LOG_DEBUG,	/* each window asked */
};

/* What the collector said about itself (GET /info). */
struct fetch_info {
	char product[64], version[32], dialect[32];
	uint32_t max_records;
	int retention_days;
	int64_t now_ms;			/* its clock at the probe */
	int64_t probed_at_ms;		/* our clock at the probe */
	int export_delay_s;
	bool cap_assumed;		/* max_records is our option, not the collector's word */
	/* The collector has no cap (an nfdump archive): max_records is only
	 * the most records a window may hold, the engine's own bound. */
	bool uncapped;
	/* What else the collector says about itself, for /collector/info.json:
	 * the text of a JSON object whose members are added there (an nfdump
	 * archive's first and last files, files_tz), or "". */
	char about[1024];
};

/* Live counters of a query; safe to read from any thread.  records
 * counts every record decoded, a split window's sample too; flows only
 * those handed to the store (the answers that were whole and clean). */
struct fetch_progress {
	atomic_uint_fast64_t requests, retries, records, bytes, flows;
	atomic_uint_fast64_t windows_done, windows_planned, gaps, rejected;
	atomic_int_fast64_t started_ms;
	atomic_int state;		/* 0 idle, 1 running, 2 done, 3 failed */
	/* The front's own word for the query, set before fetch_query and never
	 * read by the engine: handed back to fetch_opts.log with each line
	 * about it (flowfs: the folder's node). */
	void *log_tag;
};

/* One moment of a query's progress, as flowfetch's progress line shows
 * it (fetch/progress.c). */
struct fetch_progress_view {
	uint64_t flows, windows_done, windows_planned, requests, retries;
	int64_t elapsed_ms;
};

/*
 * The progress line of v for a terminal `width` columns wide, into buf
 * (len bytes): at most width characters (and len - 1), all ASCII; when
 * narrow, fields are dropped least useful first (the bar, requests and
 * retries, the rate, the estimate, the elapsed time, the windows), and the
 * flows alone are cut to the width.  The rate is "-" before a second has
 * passed; the estimate ("~m:ss left") shows once a window is done and more
 * are planned.  Returns the line's length; it cannot fail.
 */
size_t fetch_progress_line(const struct fetch_progress_view *v, int width, char *buf, size_t len);

/* The outcome of one query. */
struct fetch_result {
	bool complete;			/* the audit: no hole, no gap, no rejected record */
	uint64_t requests, retries, records, rejected, gaps, windows;
	uint64_t foreign;		/* records outside the question (rejected too) */
	unsigned audit_passes;		/* extra passes for holes the audit found */
	int64_t started_ms;		/* wall clock when the query began */
	uint64_t http_4xx, http_5xx, transport_errors;
	double seconds;			/* wall time */
	double decode_s, store_s, wait_s; /* time in each stage (summed over threads) */
	int64_t collector_now_ms;
	/* Memory (issue 12): one answer's bound (max_records x the driver's
	 * largest record + 1 MiB, at most max_body), the engine's bound on the
	 * bytes of answers held at once (max_held), and the most this query saw
	 * held (a request in flight counts as its whole bound, a received
	 * answer as its buffer, until it is decoded). */
	uint64_t body_max, held_max, held_peak;
};

struct fetch_engine;

/* Initialise libcurl for the process; call before any thread starts.
 * -EIO on failure. */
int fetch_global_init(void);

/* ---- the fronts' guards (guard.c) ------------------------------------------- */

/*
 * The token file open on fd (named path in messages) may hold a secret
 * only when, as ssh asks of a private key, it belongs to the effective
 * user and gives group and others no access at all: 0, or -EPERM with err
 * saying what to run ("chmod 600 FILE"), or fstat's -errno.
 */
int fetch_token_file_check(int fd, const char *path, char *err);

/*
 * The token both fronts send: the first line of the file at path (its CR
 * or LF dropped; the file private, fetch_token_file_check; empty refused),
 * or, without a path, $FLOWFS_TOKEN as it is, or none ("").  A token
 * longer than FETCH_TOKEN_MAX is refused, never cut.  out: at least
 * FETCH_TOKEN_MAX + 2 bytes.  0, or -errno (-EPERM, -EINVAL, fopen's) with
 * the cause in err and out "".
 */
int fetch_token_read(const char *path, char *out, size_t len, char *err);

/*
 * The cache directory both fronts use, absolute, into out (len bytes):
 * the one given (-o cache=, --cache; relative to the working directory),
 * else $XDG_CACHE_HOME/flowfs, else $HOME/.cache/flowfs.  It is not
 * opened or checked here (cache_dir_open does).  0, or -ENOENT (none of
 * them), -ENAMETOOLONG, getcwd's -errno, with the cause in err.
 */
int fetch_cache_dir(const char *given, char *out, size_t len, char *err);

/* "libcurl 7.88.1, SQLite 3.40.1": the libraries this process runs with,
 * for --version.  Never fails (cut to len). */
void fetch_versions(char *buf, size_t len);

/* Make the process undumpable (PR_SET_DUMPABLE 0): no core file holds
 * the token, and other processes of the user cannot trace it or read its
 * memory.  0, or -errno with err. */
int fetch_no_dump(char *err);

/* A URL with user information ("https://user:password@host", also after
 * a driver's prefix) is refused: -EINVAL, with err naming token_opt (the front's
 * token file option), where credentials belong. */
int fetch_url_check(const char *url, const char *token_opt, char *err);

/* True, with the warning in msg, when 'what' (the driver's secret: the
 * token, the SNA password) would be sent over plain http:// to a host that
 * is not loopback (127.0.0.0/8, ::1, localhost); false otherwise.  url is
 * the URL the driver is given (fetch_driver_resolve's transport_url). */
bool fetch_clear_text_warning(const char *url, const char *what, char *msg, size_t len);

/*
 * Probe the collector (its /info and the token), open the cache of that
 * collector, fetch the lookup tables when missing or older than a day.
 * -ECONNREFUSED, -ETIMEDOUT, -EACCES (token), -EPROTO (not a collector),
 * ... with the cause in err.  With o->cache_url, also open a session of
 * the team's shared cache (cache_pg_open): a connection string libpq
 * cannot read, a server that cannot be reached or that refuses the
 * credentials fails here, with err naming the target without its
 * password ("the shared cache: ...").
 */
int fetch_engine_open(const struct fetch_opts *o, struct fetch_engine **out,
		      char *err);
void fetch_engine_close(struct fetch_engine *e);

const struct fetch_info *fetch_engine_info(const struct fetch_engine *e);
struct cache *fetch_engine_cache(struct fetch_engine *e);
/* The driver's name ("flowapi"). */
const char *fetch_engine_driver(const struct fetch_engine *e);
/* The cache's key of the collector: its URL (without a driver prefix such
 * as "sna+"), its product and the driver; fronts open the cache with it. */
struct cache_identity fetch_engine_identity(const struct fetch_engine *e);

/*
 * Make the cache hold every flow of q: fetch what it does not cover.
 * Returns 0 when the query ran to its end (res->complete says whether every
 * window was closed), or -errno when it could not (unreachable, 401, 400,
 * retries exhausted, out of space; cause in err).  'cancel', when not NULL,
 * stops the query early (-ECANCELED) once set.  'prog' may be NULL.
 *
 * With a shared cache (fetch_opts.cache_url), what the team holds is
 * copied in first, the rest is claimed and fetched here, and spans another
 * member is fetching are waited for (docs/design.md, "The shared cache",
 * the engine's side).  A lost connection or claim is retried with a new
 * session a few times; then the query fails with "the shared cache: ..."
 * in err, and nothing is marked done in the shared cache that was not
 * committed there.
 */
int fetch_query(struct fetch_engine *e, const struct cache_query *q,
		struct fetch_progress *prog, const atomic_int *cancel,
		struct fetch_result *res, char *err);

/*
 * The audit of q behind every "complete" (cache_audit, over the store's
 * rows alone), as of the query that res describes: its own provisional
 * windows count however long it took, older ones as cache_missing counted
 * them when it began.  Both fronts call it before they say complete.
 * 0 with *a filled (free with cache_audit_free), or an error of the store
 * with err set.
 */
int fetch_audit(struct fetch_engine *e, struct cache *c, const struct cache_query *q,
		const struct fetch_result *res, struct cache_audit *a, char *err);

/* "2026-11-27T03:17:00.250Z to ...T03:17:00.251Z" (the process's zone):
 * the first of the audit's holes and how many more, for messages. */
void fetch_audit_holes_text(const struct cache_audit *a, char *buf, size_t len);

#endif
