/*
 * cache.h - the whole face of the cache room: the SQLite store of flows,
 * coverage and lookup tables, and the renderers that turn a query into the
 * files users read (CSV, JSON Lines, a standalone SQLite database).
 *
 * Who uses it: fetch/ (the engine) writes windows and reads coverage;
 * flowfetch and fs/ render.  The room depends on SQLite and nothing else
 * of the project.
 *
 * Layout on disk.  One database file per collector, named after a hash of
 * its URL, inside the cache directory (created 0700, files 0600): two
 * collectors can never mix, and the collector's identity (URL, product) is
 * kept in the file and checked on open.
 *
 * Storage, and why.  Flows are clustered by (subject, start, id) in a
 * WITHOUT ROWID table, and each window's records are sorted before they are
 * inserted: random-key inserts ran at 21,600 rows/s and ascending-key
 * inserts at 180,000 rows/s or more (docs/design.md, "Measured facts"), and a renderer that
 * reads in key order needs no sort.  The price is that a flow between two
 * subjects that were both queried is stored once per subject; the measured
 * speed outweighs the "stored once" (a measurement beats a
 * sentence).  A query with a peer reads its subject's rows and filters them.
 *
 * Durability.  WAL, busy_timeout, BEGIN IMMEDIATE for every write.  A
 * window's records and its coverage row are written in one transaction, so
 * after a crash the cache holds whole windows or nothing of them; records
 * are inserted with "ON CONFLICT DO NOTHING" on the key, so a window fetched twice stores each flow
 * once.
 *
 * Conventions: every function returns 0 or a negative errno and, on error,
 * writes a one-line cause into 'err' (CACHE_ERRLEN bytes) when err is not
 * NULL.  A struct cache is used by one thread at a time (open one per
 * thread: SQLite connections are not shared).
 */
#ifndef FLOWFS_CACHE_H
#define FLOWFS_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define CACHE_ERRLEN 256
#define CACHE_ID_MAX 64		/* longest record id accepted (docs/collector-api.md) */
#define CACHE_NAME_MAX 127	/* longest lookup name (and 'extra') stored, in bytes */
#define CACHE_GROUPS_MAX 16	/* host groups kept per side of a flow */
#define CACHE_EXTRA_LEN 384	/* flow_rec.extra, with its NUL */
#define CACHE_CID_LEN 32	/* flow_rec.community_id, with its NUL */
#define CACHE_SCHEMA_VERSION 2
/* A day of UTC, in ms (times here are ms since the epoch; a day of a zone
 * with DST is not this long). */
#define CACHE_DAY_MS 86400000LL

/* ---- the common flow record --------------------------------------------- */

/*
 * One flow, as every driver delivers it.  Addresses are 16 bytes, IPv4
 * mapped (::ffff:a.b.c.d), so a prefix is a byte range.  Optional numbers
 * are -1 when the collector did not say.
 *
 * 'extra' keeps what a collector says that has no field here: one compact
 * JSON object (a whole one, never cut; its keys are the driver's, README
 * lists them), or "" when there is nothing more (the reference dialect's
 * records).  The cache stores it as it is (NULL when ""), flows.sqlite
 * shows it in its column 'extra'; CSV and JSON Lines leave it out.  384
 * bytes hold every SNA field with realistic values; a driver whose JSON
 * would be longer drops its least useful members instead.
 */
struct flow_rec {
	char id[CACHE_ID_MAX + 1];
	int64_t start_ms, end_ms;
	uint8_t src[16], dst[16];
	int32_t sport, dport;		/* -1 unknown */
	int32_t proto;			/* IANA number, -1 unknown */
	int32_t tcp_flags;		/* -1 unknown (and for non-TCP) */
	int32_t icmp_type, icmp_code;	/* -1 unless ICMP / ICMPv6 */
	int64_t pkts, bytes;		/* -1 unknown */
	int64_t in_if, out_if;		/* ifIndex, -1 unknown */
	int64_t exporter;		/* exporter id, -1 unknown */
	int64_t app;			/* application id, -1 unknown */
	int64_t src_as, dst_as;		/* -1 unknown */
	int64_t sampling;		/* 1 in N, -1 unknown */
	uint32_t src_groups[CACHE_GROUPS_MAX], dst_groups[CACHE_GROUPS_MAX];
	uint8_t nsrc_groups, ndst_groups;
	char community_id[CACHE_CID_LEN];	/* "1:" + base64 of SHA-1, "" unknown */
	char extra[CACHE_EXTRA_LEN];	/* a JSON object, or "" */
};

/* ---- addresses and prefixes --------------------------------------------- */

/* A prefix on the 16-byte form: an IPv4 /24 has len 120 and v4 set. */
struct cache_prefix {
	uint8_t addr[16];
	int len;
	bool v4;
};

/* Parse an address or CIDR prefix, any valid spelling; host bits must be
 * zero for a prefix ("10.0.0.1/24" is -EINVAL: say what you mean).
 * -EINVAL on anything else. */
int cache_prefix_parse(const char *text, struct cache_prefix *out);

/* cache_prefix_parse, saying why it refuses: *why a short static phrase
 * ("not an IPv4 address: each of its four numbers is 0 to 255", "host bits
 * are set ..."), NULL on success.  network, when not NULL, is zeroed, and
 * filled when the host bits are the only fault with the prefix meant
 * (10.0.1.1/24: 10.0.1.0/24), for a "did you mean". */
int cache_prefix_parse_why(const char *text, struct cache_prefix *out, const char **why,
			   struct cache_prefix *network);

/* Canonical text: "10.0.0.1", "10.0.0.0/24", "2001:db8::1", "2001:db8::/32"
 * (no "/32" or "/128" for a single address).  buf: at least 64 bytes. */
void cache_prefix_format(const struct cache_prefix *p, char *buf, size_t len);

/* Canonical text of a 16-byte address.  buf: at least 46 bytes. */
void cache_addr_format(const uint8_t a[16], char *buf, size_t len);

/* Fast formatting, for hot loops (the renderers, fetch/nfdump.c's ids):
 * cache_addr_format's text into out (>= 46 bytes, not NUL-terminated),
 * and the decimal text of v (>= 21 bytes, as %lld, not NUL-terminated);
 * each returns its length. */
size_t cache_addr_text(const uint8_t a[16], char *out);
size_t cache_i64_text(int64_t v, char *out);

bool cache_prefix_contains(const struct cache_prefix *p, const uint8_t a[16]);

/* The first and last address of a prefix, as 16-byte strings. */
void cache_prefix_range(const struct cache_prefix *p, uint8_t lo[16], uint8_t hi[16]);

/* ---- intervals ---------------------------------------------------------- */

/* Half-open [start, end) in ms. */
struct cache_ival {
	int64_t start, end;
};

struct cache_ivals {
	struct cache_ival *v;
	size_t n, cap;
};

/* Append, then normalise: sorted, merged where they touch or overlap. */
int cache_ivals_add(struct cache_ivals *s, int64_t start, int64_t end);
/* out = [start, end) minus the union of s (out is reset first). */
int cache_ivals_subtract(const struct cache_ivals *s, int64_t start, int64_t end,
			 struct cache_ivals *out);
void cache_ivals_free(struct cache_ivals *s);

/* ---- the store ---------------------------------------------------------- */

struct cache;

/* The collector a cache file belongs to. */
struct cache_identity {
	const char *url;	/* normalised base URL, no credentials */
	const char *product;	/* from /info, e.g. "flowsim" */
	const char *driver;	/* e.g. "flowapi" */
};

/*
 * The cache directory, opened for use: created 0700 (parents too) when
 * missing, opened O_DIRECTORY | O_NOFOLLOW, and checked on that
 * descriptor: it must belong to the effective user and not be writable by
 * its group or others, since whoever can write there could read the flows,
 * plant flows and coverage that are served as complete, or swap a file for
 * a link.  Returns the descriptor (O_CLOEXEC; the caller closes it), or a
 * negative errno with err saying what is wrong and how to fix it: -ELOOP
 * (a symbolic link), -ENOTDIR, -EPERM (another owner, or group or others
 * may write: "chmod 700 DIR, or use another"), or mkdir's and open's.
 */
int cache_dir_open(const char *dir, char *err);

/*
 * Open (creating when needed) the cache of one collector inside 'dir'.
 * Checks 'dir' as cache_dir_open does (creating it 0700); creates the file
 * 0600 and never opens it, or its -wal, -shm or -journal file, through a
 * symbolic link (-ELOOP) or when it belongs to another user (-EPERM);
 * migrates an older schema; refuses a file whose stored product differs
 * (-EEXIST: "the cache for URL belongs to product X") and a schema newer
 * than this program (-EPROTO).  cache_path is then the file's path with no
 * symbolic link in it.
 */
int cache_open(const char *dir, const struct cache_identity *id,
	       struct cache **out, char *err);
void cache_close(struct cache *c);

/* The path of the database file (for messages). */
const char *cache_path(const struct cache *c);

/*
 * A way to stop a long read early (a render on unmount): while *cancel is
 * non-zero, every statement on c ends within CACHE_CANCEL_STEPS of SQLite's
 * virtual machine steps (a few hundred rows of a render at most), and the
 * call running it (cache_render, cache_render_summary, ...) fails with
 * -EINTR, "interrupted" in err; a render leaves no file behind, as on any
 * error.  Checked on c's own connection and on the one that writes
 * CACHE_SQLITE's file (it reads the cache itself).  cancel NULL removes
 * the hook; *cancel must outlive c or the next call here.  Writes on c are
 * not meant to be cancelled this way (a transaction would roll back).
 */
#define CACHE_CANCEL_STEPS 10000
void cache_set_cancel(struct cache *c, const atomic_int *cancel);

/*
 * What a query is about.  'subject' is the address or prefix asked for;
 * 'peer' restricts the other side (has_peer false: anything).  The subject's
 * canonical text is its key in the store.
 */
struct cache_query {
	struct cache_prefix subject;
	struct cache_prefix peer;
	bool has_peer;
	int64_t start, end;	/* [start, end) in ms, UTC */
	/* Reports only: coverage fetched after this time (ms), or committed
	 * after the mark as_of_seq (cache_coverage_mark), is left out, so that
	 * a snapshot rendered again shows what it showed (as_of_ms 0: all).
	 * Both are needed: a row stamped before as_of_ms by another process's
	 * download may be committed after the mark. */
	int64_t as_of_ms;
	int64_t as_of_seq;
	/* Reports only: a live range (one reaching into the collector's
	 * export delay).  live_as_of_ms > 0: the collector had exported every
	 * flow that started before it when the range was fetched, and not yet
	 * all of those after it; summary.txt and timeline.svg say "live,
	 * complete up to" it (cache_live_text) and mark the time after it as
	 * not yet exported.  live_refresh_s: how often the front fetches it
	 * again at most (flowfs's live_ttl).  0: a final range. */
	int64_t live_as_of_ms;
	int live_refresh_s;
};

/*
 * The parts of [q->start, q->end) that are not covered for q: coverage rows
 * for (subject, the same peer) and, for a query with a peer, also rows for
 * (subject, any peer).  A provisional row (fetched while its window reached
 * into the collector's export delay) counts only while it is younger than
 * live_ttl_ms at now_ms.
 */
int cache_missing(struct cache *c, const struct cache_query *q, int64_t now_ms,
		  int64_t live_ttl_ms, struct cache_ivals *out, char *err);

/* A window that was fetched whole. */
struct cache_cover {
	int64_t start, end;
	int64_t fetched_ms;	/* when (our clock) */
	bool provisional;	/* reached into the export delay */
	int64_t records;	/* how many records the window held */
};

/*
 * Store one answer: its records (sorted here by start then id, inserted
 * under q's subject, a record already there kept as it is) and, when 'cover' is not NULL, the coverage of
 * [cover->start, cover->end) for (q's subject, q's peer), in one
 * transaction.  A covered window replaces provisional rows it overlaps.
 * 'recs' may be reordered.
 */
int cache_put_window(struct cache *c, const struct cache_query *q,
		     struct flow_rec *recs, size_t n,
		     const struct cache_cover *cover, char *err);

/* The store's key order of records (start, then id), for qsort: windows
 * sorted so before cache_put_window are not sorted again. */
int cache_rec_cmp(const void *a, const void *b);

/* A window that could not be closed: recorded, reported, never hidden. */
struct cache_gap {
	int64_t start, end;
	char peer[64];		/* the narrowest peer prefix tried, canonical */
	int64_t seen;		/* records seen in its last (saturated) answer */
	char reason[128];
};

int cache_put_gap(struct cache *c, const struct cache_query *q,
		  const struct cache_gap *g, char *err);
/* The gaps recorded for q's subject that overlap q's range.  *out is
 * malloc'd. */
int cache_gaps(struct cache *c, const struct cache_query *q,
	       struct cache_gap **out, size_t *n, char *err);
/* Forget q's gaps (before a new attempt at closing them). */
int cache_clear_gaps(struct cache *c, const struct cache_query *q, char *err);

/* The newest coverage row committed so far, as a mark for
 * cache_query.as_of_seq (0 when there is none).  An SQLite error is
 * returned as a negative errno with err set. */
int cache_coverage_mark(struct cache *c, int64_t *seq, char *err);

/* Coverage rows for q (as cache_missing sees them), for provenance. */
int cache_coverage(struct cache *c, const struct cache_query *q, int64_t now_ms,
		   int64_t live_ttl_ms, struct cache_cover **out, size_t *n,
		   char *err);

/*
 * Which of n consecutive days the cache holds whole, from one read of the
 * coverage: day i is [bounds[i], bounds[i + 1]) (bounds holds n + 1
 * times, ascending); fetched[i] gets the newest fetch time (ms) of the
 * usable coverage rows over it (as cache_missing counts them at now_ms)
 * when their union holds the whole day, else 0.  q names the subject and
 * the peer; its range is not used.  -EINVAL for n 0 or bounds out of
 * order; -ENOMEM or an SQLite error, with err set and fetched all 0.
 */
int cache_days_fetched(struct cache *c, const struct cache_query *q, const int64_t *bounds,
		       size_t n, int64_t now_ms, int64_t live_ttl_ms, int64_t *fetched, char *err);

/* The start times of the flows q selects, ascending (*out malloc'd): what
 * earlier answers showed, for the planner. */
int cache_starts(struct cache *c, const struct cache_query *q, int64_t **out, size_t *n,
		 char *err);

/* Number of stored flows that q selects (start in range, peer filter). */
int cache_count(struct cache *c, const struct cache_query *q, int64_t *count,
		char *err);

/*
 * The audit: what the store proves about q's range, from its rows alone
 * (never from what a planner believes).  'holes' are the parts of
 * [q->start, q->end) that no usable coverage row (as cache_coverage counts
 * them at now_ms, and as of q's mark) and no recorded gap of q (its
 * subject and peer) accounts for, in order; 'ngaps' counts q's gaps that
 * are not spanned by coverage (the ones reported to the user).  q's range
 * holds every flow of the collector exactly when holes.n == 0 and
 * ngaps == 0.  One read transaction; -ENOMEM or an SQLite error, with out
 * empty.  Free with cache_audit_free.
 */
struct cache_audit {
	struct cache_ivals holes;
	size_t ngaps;
	int64_t covered_ms;	/* the union of the coverage inside the range */
	int64_t gap_ms;		/* the reported gaps' time inside the range */
};
int cache_audit(struct cache *c, const struct cache_query *q, int64_t now_ms,
		int64_t live_ttl_ms, struct cache_audit *out, char *err);
void cache_audit_free(struct cache_audit *a);

/* ---- lookup tables -------------------------------------------------------- */

enum cache_table { CACHE_APPS, CACHE_GROUPS, CACHE_EXPORTERS, CACHE_IFS, CACHE_NTABLES };

/* One row of a lookup table.  key2 is the ifIndex for CACHE_IFS (key is the
 * exporter id) and the parent for CACHE_GROUPS; 'extra' is the exporter's
 * address or the interface's description. */
struct cache_lookup {
	int64_t key, key2;
	char name[CACHE_NAME_MAX + 1];
	char extra[CACHE_NAME_MAX + 1];
};

/* Replace a whole table and stamp it with fetched_ms. */
int cache_put_lookup(struct cache *c, enum cache_table t,
		     const struct cache_lookup *rows, size_t n, int64_t fetched_ms,
		     char *err);
/* When the table was last fetched (0: never). */
int cache_lookup_age(struct cache *c, enum cache_table t, int64_t *fetched_ms,
		     char *err);

/* ---- rendering ------------------------------------------------------------ */

enum cache_format { CACHE_CSV, CACHE_NDJSON, CACHE_SQLITE };

/* Provenance written into flows.sqlite's 'query' table as key/value rows. */
struct cache_meta {
	const char *key, *value;
};

/*
 * Render the flows q selects (start in [q->start, q->end), q's peer filter),
 * ordered by start then id, with the columns of docs/design.md, "flows.csv":
 * names resolved through the lookup tables, times with the offset of the
 * process's time zone (TZ, set once by the front), Community ID, ...
 *
 * CSV and NDJSON stream to 'out'.  CACHE_SQLITE writes a new database at
 * 'path' (rollback journal; a 'flows' table with the same columns plus the
 * raw numeric fields and 'extra'; tables 'query' (meta), 'coverage' and
 * 'gaps'); 'out' is then unused.  The same cache state renders byte-identical output, and
 * memory does not grow with the number of flows.  *rows gets the number of
 * flows written.
 */
int cache_render(struct cache *c, const struct cache_query *q,
		 enum cache_format fmt, FILE *out, const char *path,
		 const struct cache_meta *meta, size_t nmeta, int64_t *rows,
		 char *err);

/* ---- reports (cache/report.c) ------------------------------------------------ */

/*
 * summary.txt of the flows q selects: the query (subject, peer, range with
 * offsets), totals (flows, packets, bytes, distinct peers), the top 10
 * peers, destination ports, protocols and applications by flows and by
 * bytes, the volume by hour of the range (flows, bytes), and every gap
 * recorded for q (or "Gaps: none").  Names resolved as in flows.csv.
 * Deterministic for a cache state.  One scan in key order into small
 * hash tables: memory grows with distinct peers, ports and applications,
 * never with flows (SQLite's GROUP BY sorts every row: 5.8 s and 208 MB
 * for a 2M-flow day, against 0.84 s and 21 MB for the scan).  A live q
 * (live_as_of_ms) says so under the query, and its hours from
 * live_as_of_ms on are "not yet exported" rather than 0.
 */
int cache_render_summary(struct cache *c, const struct cache_query *q, FILE *out,
			 char *err);

/*
 * What a live range's reports say of it, one line without a newline:
 * "live, complete up to 2026-12-06T07:25:00.000+01:00, refreshed at most
 * every 60 s" (the process's zone), into buf (cut to len - 1 bytes).
 * Returns the length, or 0 with buf empty when q is not live
 * (live_as_of_ms 0).  summary.txt writes it, and so does flowfs's
 * query.json.
 */
size_t cache_live_text(const struct cache_query *q, char *buf, size_t len);

/*
 * timeline.svg: a standalone SVG (no script, no external resource) showing
 * flows and bytes over [q->start, q->end) in about 100 to 300 bins, two
 * stacked panels with axes, tick labels in the process's zone, a title
 * naming the subject, peer and range, and gaps marked; a live q's time
 * from live_as_of_ms on is shaded "not yet exported".  Readable at a
 * glance in a browser.  Deterministic for a cache state.
 */
int cache_render_timeline(struct cache *c, const struct cache_query *q, FILE *out,
			  char *err);

/* A lookup table as CSV (RFC 4180, header row):
 * applications.csv "id,name"; hostgroups.csv "id,name,parent";
 * exporters.csv "id,name,address,ifindex,interface,description" (one row
 * per interface; an exporter without any has one row with empty interface
 * columns).  CACHE_IFS renders the same as CACHE_EXPORTERS. */
int cache_render_lookup(struct cache *c, enum cache_table t, FILE *out, char *err);

/* The subjects that have coverage: (subject, peer) pairs, distinct, in a
 * stable order (by canonical text).  *out is malloc'd; start/end unused. */
int cache_subjects(struct cache *c, struct cache_query **out, size_t *n, char *err);

/* ---- formatting helpers shared with the fronts ----------------------------- */

/* Is tz a zone this machine knows: "UTC", an IANA name with a file under
 * /usr/share/zoneinfo ("Europe/Berlin"), a path to a zone file, or a POSIX
 * rule ("CET-1CEST,M3.5.0,M10.5.0/3")?  glibc takes an unknown name
 * silently as UTC, which would mislabel evidence. */
bool cache_tz_valid(const char *tz);

/* mktime() for a wall time in the process's zone (tm_isdst ignored), the
 * same on every call: a time that occurs twice is its first occurrence, a
 * time the clocks skip moves forward by the change (02:30 becomes 03:30).
 * Like mktime, *tm becomes the local time of the result (a day that does
 * not exist, 2023-02-29, comes back as another); (time_t)-1 on failure. */
time_t cache_mktime(struct tm *tm);

/*
 * A point in time or a date as a person writes it (flowfs's folder names,
 * flowfetch's --from and --to; the one grammar of both): "2026-12-05" (also
 * "2026-12-5"), "2026-12-05T10:00", "...T10:00:30", "...T10:00:30.250"
 * ('T' or a space; an hour of one digit; a fraction of up to nine digits,
 * none of them past the millisecond but zeros; 24:00 is the next midnight),
 * then, unless flags has CACHE_WHEN_LOCAL, "Z" or "+hh:mm"/"-hh:mm".  A
 * date, or a time without an offset, is in the process's zone (TZ), read
 * as cache_mktime does.  s is len bytes, not NUL-terminated.
 *
 * Returns 0 with *out filled and *why NULL, or -EINVAL with *out untouched
 * and *why a short static phrase saying what is wrong ("no such day: that
 * month is shorter", "day and month ... in an order that is not certain:
 * write the year first, yyyy-mm-dd"), fit to print after the text.  Times
 * before 1970 are refused (the collector's times are not negative).
 */
#define CACHE_WHEN_LOCAL 1u	/* refuse zone offsets: the text is in the local zone */
struct cache_when {
	int64_t ms;		/* the instant; a date: its first local instant (midnight) */
	bool is_date;		/* a date alone, no time of day */
	bool has_offset;	/* Z or +hh:mm was given */
};
int cache_when_parse(const char *s, size_t len, unsigned flags, struct cache_when *out,
		     const char **why);

/* The forms cache_when_parse takes, for messages:
 * "yyyy-mm-dd or yyyy-mm-ddThh:mm[:ss[.mmm]]". */
extern const char cache_when_forms[];

/* The canonical local spelling of ms, which cache_when_parse(CACHE_WHEN_LOCAL)
 * reads back as ms (but for the second of a wall time the clocks pass
 * twice, which reads as the first): "yyyy-mm-dd" when date_only, else
 * "yyyy-mm-ddThh:mm", with ":ss" when the seconds are not 0 and ".mmm"
 * when the milliseconds are not.  Cut to len - 1 bytes (32 suffice). */
void cache_when_name(int64_t ms, bool date_only, char *buf, size_t len);

/* "TCP", "UDP", "ICMP", "ICMP6", "GRE", "ESP", ...; NULL where no name. */
const char *cache_proto_name(int proto);

/* TCP flags as 8 characters CWR ECE URG ACK PSH RST SYN FIN ("...AP.SF"). */
void cache_tcp_flags(int flags, char out[9]);

/* ISO 8601 with milliseconds and the zone's offset ("...T10:00:00.123Z" or
 * "+02:00").  out: at least 32 bytes.  Returns the length. */
int cache_time_format(int64_t ms, char *out, size_t len);

/*
 * Text from a collector (a server's error message, a search's status) made
 * safe for one line of a log, a message or a terminal, as summary.txt writes
 * names: control characters (C0, DEL, and C1 in UTF-8: U+0080 to U+009F)
 * become \n, \r, \t or \xNN (one per byte), and so does every byte that is
 * not part of valid UTF-8; the rest stays as it is.  s ends at len bytes or
 * at a NUL.  Writes at most outlen - 1 bytes and a NUL (nothing when outlen
 * is 0), never half an escape or half a character, and returns the bytes
 * written; a text that does not fit is cut there.
 */
size_t cache_text_escape(char *out, size_t outlen, const char *s, size_t len);

/* The version of the SQLite library this process runs with ("3.40.1"). */
const char *cache_sqlite_version(void);

#endif
