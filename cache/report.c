/*
 * report.c - the files of a query folder meant for eyes rather than tools:
 * summary.txt (the query, totals, top peers, ports, protocols and
 * applications, volume by hour, gaps) and timeline.svg (flows and bytes
 * over the range); and, for the collector/ folder, the lookup tables as CSV
 * and the list of subjects the cache holds.
 *
 * Both reports run in one read transaction (render_begin), so every number
 * in them comes from one snapshot; names are resolved through the same maps
 * as flows.csv; ties are broken by key, and nothing depends on a clock or on
 * hash order, so the same cache state gives the same bytes.
 *
 * Why the summary counts in C, not with SQL GROUP BY.  SQLite has no hash
 * aggregation: a GROUP BY over an unindexed expression sorts every input
 * row first, and the store runs with temp_store=MEMORY, so the sort is held
 * in RAM.  Measured on 2,000,000 flows of one subject over a day (sqlite3
 * 3.40.1 with the store's pragmas, 2 vCPU Debian 12 VM shared with other
 * work): GROUP BY peer 5.8 s and 208 MB RSS, GROUP BY proto 1.9 s and
 * 115 MB (3.5 s and 37 MB with temp_store=FILE), against 0.84 s and 21 MB
 * for one plain scan of the same rows.  Four such GROUP BYs would take
 * about 15 s, and their memory grows with the flows.  So the summary reads
 * the flows once, in primary key order (the WHERE of flows.csv, eight
 * columns, no sort), and counts into open-addressing tables: memory grows
 * with the distinct peers, ports and applications (32 bytes a key, slots at
 * most 70% full), never with the flows.  The timeline needs no table: one
 * count(*)/sum(bytes) per bin over the primary key range, a few hundred SQL
 * aggregates that together read the rows once.
 *
 * Measured (the same 2,000,000 flows: 198,614 distinct peers, 113,483
 * distinct destination ports; debugoptimized build, TZ=Europe/Berlin,
 * output to /dev/null, warm file, load average 3-4 on the 2 vCPUs):
 * summary.txt 1.8-3.1 s elapsed, 1.4-1.8 s CPU, 57 MB peak RSS for the
 * whole process (SQLite's 16 MB page cache included; the counting tables
 * are about 30 MB of it); with a /16 peer (1.33M flows) 1.3-1.9 s;
 * timeline.svg 0.5-0.75 s, 24 MB.  What made the summary fast: a finalizer
 * hash (IPv4-mapped keys differ only in their last bytes; a weak hash took
 * 25 s) and reading 8 columns instead of the renderers' 23 (2.5 s -> 1.4 s
 * CPU).  perf on the heavy day of bench/run fs (2,031,218 flows) then put
 * a third of the summary's CPU in report_agg_add, the misses of the peers
 * and ports tables; the scan now reads rows REPORT_AHEAD ahead and
 * prefetches their slots: 1.34-1.41 s -> 1.14-1.23 s CPU (bench_render
 * summary, three rounds each, interleaved, load average 5 on 2 vCPUs).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arr.h"
#include "render_i.h"

#define REPORT_TOP 10		/* rows of a top list */
#define REPORT_BAR 40		/* the widest '#' bar of the volume by hour */
#define REPORT_HOURS_MAX 100000	/* longer ranges get no volume by hour */
#define REPORT_MIN 60000LL
#define REPORT_HOUR 3600000LL

/* Floor division and its remainder, for times before 1970. */
static int64_t report_floormod(int64_t a, int64_t b)
{
	int64_t m = a % b;
	return m < 0 ? m + b : m;
}

/* ---- text ------------------------------------------------------------------------------ */

/* Text into the output buffer (which keeps the first write error). */
static void report_puts(struct render_out *o, const char *s)
{
	render_put(o, s, strlen(s));
}

static void report_putc(struct render_out *o, char ch)
{
	render_put(o, &ch, 1);
}

/* printf into the output buffer: formatted in place, after a flush when
 * the rest of the buffer is too small (a report line is far below its
 * 256 KiB; a longer one would be cut). */
static void report_printf(struct render_out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void report_printf(struct render_out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->err)
		return;
	for (int tries = 0; tries < 2; tries++) {
		size_t room = RENDER_OUTBUF - o->n;
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->n, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room || tries == 1) {
			o->n += (size_t)n < room ? (size_t)n : room - 1;
			return;
		}
		if (render_flush(o))
			return;
	}
}

/*
 * The visible escape of the character at s (n >= 1 bytes left), if it needs
 * one: \n, \r, \t, or \xNN per byte for the other C0 controls, DEL, the C1
 * controls (U+0080 to U+009F, 0xc2 0x80 to 0xc2 0x9f in UTF-8) and a byte
 * that does not start valid UTF-8.  Returns the escape's length in esc (at
 * most 8, NUL-terminated), 0 when the character is written as it is; *used
 * is the bytes of s it stands for either way (a whole UTF-8 sequence).
 */
static size_t report_escape_at(const unsigned char *s, size_t n, char esc[9], size_t *used)
{
	size_t k = render_utf8_len(s, n);
	unsigned c = s[0];

	*used = k ? k : 1;
	if (c == '\n' || c == '\r' || c == '\t') {
		esc[0] = '\\';
		esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
		esc[2] = '\0';
		return 2;
	}
	if (c < 0x20 || c == 0x7f || k == 0)
		return (size_t)snprintf(esc, 9, "\\x%02x", c);
	if (k == 2 && c == 0xc2 && s[1] < 0xa0)
		return (size_t)snprintf(esc, 9, "\\x%02x\\x%02x", c, s[1]);
	return 0;
}

/*
 * Text from the collector or the user (names, gap reasons, TZ) in a plain
 * text report: control characters and bytes that are not UTF-8 are written
 * as report_escape_at spells them, since a newline in a name would break a
 * table and an ESC would drive the reader's terminal; everything else as it
 * is.
 */
static void report_text(struct render_out *o, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	char esc[9];
	size_t used;

	for (size_t i = 0; i < len; i += used) {
		size_t n = report_escape_at(u + i, len - i, esc, &used);
		if (n)
			render_put(o, esc, n);
		else
			render_put(o, s + i, used);
	}
}

/* The same spelling into a string, for logs and messages (cache.h). */
size_t cache_text_escape(char *out, size_t outlen, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t o = 0, used;
	char esc[9];

	if (outlen == 0)
		return 0;
	len = strnlen(s, len);
	for (size_t i = 0; i < len; i += used) {
		size_t n = report_escape_at(u + i, len - i, esc, &used);
		const char *w = n ? esc : s + i;
		if (!n)
			n = used;
		if (n >= outlen - o)
			break;
		memcpy(out + o, w, n);
		o += n;
	}
	out[o] = '\0';
	return o;
}

/*
 * Text as XML character data or attribute value: the five markup characters
 * as entities; what XML 1.0 cannot hold (control characters, invalid UTF-8,
 * on which a browser refuses the whole file) as U+FFFD.
 */
static void report_xml(struct render_out *o, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len = strlen(s);

	for (size_t i = 0; i < len;) {
		size_t n = render_utf8_len(u + i, len - i);
		switch (n ? u[i] : 0) {
		case '<': report_puts(o, "&lt;"); break;
		case '>': report_puts(o, "&gt;"); break;
		case '&': report_puts(o, "&amp;"); break;
		case '"': report_puts(o, "&quot;"); break;
		case '\'': report_puts(o, "&apos;"); break;
		default:
			if (n == 0 || (u[i] < 0x20 && u[i] != '\t' && u[i] != '\n') || u[i] == 0x7f)
				report_puts(o, "\xef\xbf\xbd");
			else
				render_put(o, (const char *)u + i, n);
		}
		i += n ? n : 1;
	}
}

/* v >= 0 with an SI prefix and three significant digits: "999", "1.5k",
 * "74.7G"; with a unit: "999 B", "1.5 kB".  buf: at least 24 bytes. */
static void report_si(int64_t v, const char *unit, char *buf, size_t len)
{
	static const char prefix[] = "kMGTPE";
	double x = (double)v;
	int u = -1;

	while (u < 5 && x >= 999.5) {
		x /= 1000.0;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%lld%s%s", (long long)v, *unit ? " " : "", unit);
	else
		snprintf(buf, len, "%.3g%s%c%s", x, *unit ? " " : "", prefix[u], unit);
}

/* A length of time by its non-zero parts: "1 d 2 h", "30 min", "250 ms". */
static void report_duration(int64_t ms, char *buf, size_t len)
{
	static const struct {
		int64_t ms;
		const char *unit;
	} parts[] = {{CACHE_DAY_MS, "d"}, {REPORT_HOUR, "h"}, {REPORT_MIN, "min"}, {1000, "s"},
		     {1, "ms"}};
	size_t used = 0;

	buf[0] = '\0';
	if (ms <= 0) {
		snprintf(buf, len, "0 s");
		return;
	}
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && used < len; i++) {
		int64_t n = ms / parts[i].ms;
		ms %= parts[i].ms;
		if (n)
			used += (size_t)snprintf(buf + used, len - used, "%s%lld %s",
						 used ? " " : "", (long long)n, parts[i].unit);
	}
}

/* The zone's name as the user gave it (TZ without its ':'), for headers. */
static const char *report_zone(void)
{
	const char *tz = getenv("TZ");

	if (!tz || !*tz)
		return "system default (/etc/localtime)";
	return tz[0] == ':' && tz[1] ? tz + 1 : tz;
}

/* -EINVAL unless c, q (a forward range) and out are given; then the
 * output buffer onto out (-ENOMEM). */
static int report_open(struct cache *c, const struct cache_query *q, FILE *out,
		       struct render_out *o, char *err)
{
	if (!c || !q || q->start > q->end)
		return cache_fail(err, -EINVAL, "bad query");
	if (!out)
		return cache_fail(err, -EINVAL, "no output stream");
	o->f = out;
	o->buf = malloc(RENDER_OUTBUF);
	if (!o->buf)
		return cache_fail(err, -ENOMEM, "out of memory");
	return 0;
}

/* ---- local time ------------------------------------------------------------------------ */

/* The latest t <= ms at which the process's zone shows a multiple of unit
 * (unit divides a day or a week: 15 min, 1 h, 1 d, ...). */
static int64_t report_local_floor(struct cache_tz *tz, int64_t ms, int64_t unit)
{
	int64_t local = ms + (int64_t)cache_tz_offset(tz, ms) * 1000;

	/* weeks start on Monday: 1970-01-01 was a Thursday */
	if (unit % (7 * CACHE_DAY_MS) == 0)
		local -= 4 * CACHE_DAY_MS;
	return ms - report_floormod(local, unit);
}

/* The next local multiple of unit after t (itself one): t + unit moved to
 * the nearest local multiple, so day ticks stay on midnight across a DST
 * change; never t or earlier. */
static int64_t report_local_next(struct cache_tz *tz, int64_t t, int64_t unit)
{
	int64_t c = t + unit;
	int64_t local = c + (int64_t)cache_tz_offset(tz, c) * 1000;
	int64_t r;

	if (unit % (7 * CACHE_DAY_MS) == 0)
		local -= 4 * CACHE_DAY_MS;
	r = report_floormod(local, unit);
	c = r * 2 > unit ? c + (unit - r) : c - r;
	return c > t ? c : t + unit;
}

/* ---- counting -------------------------------------------------------------------------- */

/* One key of a top list: a 16-byte key whose byte order is the order ties
 * are broken in, and its counts. */
struct report_entry {
	uint8_t key[16];
	int64_t flows, bytes;	/* flows 0: an empty slot */
};

/* An open-addressing table of entries (linear probing, at most 70% full). */
struct report_agg {
	struct report_entry *v;
	size_t cap, n;		/* cap: 0 or a power of two */
};

/* Both halves of the key through MurmurHash3's finalizer: every key bit
 * reaches the low bits that pick the slot (an IPv4-mapped address or a
 * big-endian number varies only in its last bytes). */
static uint64_t report_hash(const uint8_t k[16])
{
	uint64_t a, b;

	memcpy(&a, k, 8);
	memcpy(&b, k + 8, 8);
	a = a * 0x9e3779b97f4a7c15ULL ^ b;
	a ^= a >> 33;
	a *= 0xff51afd7ed558ccdULL;
	a ^= a >> 33;
	a *= 0xc4ceb9fe1a85ec53ULL;
	return a ^ (a >> 33);
}

/* Double the table (64 slots first).  -ENOMEM, the table unchanged. */
static int report_agg_grow(struct report_agg *a)
{
	size_t cap = a->cap ? a->cap * 2 : 64;
	struct report_entry *v = calloc(cap, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < a->cap; i++) {
		if (!a->v[i].flows)
			continue;
		size_t j = report_hash(a->v[i].key) & (cap - 1);
		while (v[j].flows)
			j = (j + 1) & (cap - 1);
		v[j] = a->v[i];
	}
	free(a->v);
	a->v = v;
	a->cap = cap;
	return 0;
}

/* Count one flow of bytes (unknown: < 0, counted as 0) under key.  -ENOMEM. */
static int report_agg_add(struct report_agg *a, const uint8_t key[16], int64_t bytes)
{
	size_t i;

	if ((a->n + 1) * 10 > a->cap * 7 && report_agg_grow(a))
		return -ENOMEM;
	i = report_hash(key) & (a->cap - 1);
	while (a->v[i].flows && memcmp(a->v[i].key, key, 16) != 0)
		i = (i + 1) & (a->cap - 1);
	if (!a->v[i].flows) {
		memcpy(a->v[i].key, key, 16);
		a->n++;
	}
	a->v[i].flows++;
	if (bytes > 0)
		a->v[i].bytes += bytes;
	return 0;
}

/* An integer as key bytes whose order is the numeric order (-1 first);
 * two of them fill a key. */
static void report_key_put(uint8_t *k, int64_t v)
{
	uint64_t u = (uint64_t)v ^ (1ULL << 63);

	for (int i = 0; i < 8; i++)
		k[i] = (uint8_t)(u >> (56 - 8 * i));
}

static int64_t report_key_get(const uint8_t *k)
{
	uint64_t u = 0;

	for (int i = 0; i < 8; i++)
		u = u << 8 | k[i];
	return (int64_t)(u ^ (1ULL << 63));
}

/* Does a rank before b: more flows (or bytes), then the smaller key? */
static bool report_before(const struct report_entry *a, const struct report_entry *b,
			  bool by_bytes)
{
	int64_t x = by_bytes ? a->bytes : a->flows, y = by_bytes ? b->bytes : b->flows;

	if (x != y)
		return x > y;
	return memcmp(a->key, b->key, 16) < 0;
}

/* The first REPORT_TOP entries of a in that order into top; returns how
 * many.  One pass, an insertion into at most REPORT_TOP. */
static size_t report_top(const struct report_agg *a, bool by_bytes,
			 const struct report_entry *top[REPORT_TOP])
{
	size_t n = 0;

	for (size_t i = 0; i < a->cap; i++) {
		const struct report_entry *e = &a->v[i];
		size_t k;
		if (!e->flows || (n == REPORT_TOP && !report_before(e, top[n - 1], by_bytes)))
			continue;
		k = n < REPORT_TOP ? n++ : n - 1;
		while (k > 0 && report_before(e, top[k - 1], by_bytes)) {
			top[k] = top[k - 1];
			k--;
		}
		top[k] = e;
	}
	return n;
}

/* ---- summary.txt ----------------------------------------------------------------------- */

enum { RD_PEERS, RD_PORTS, RD_PROTOS, RD_APPS, RD_COUNT };

/* One hour of the volume by hour: from start to the next hour's start. */
struct report_hour {
	int64_t start, flows, bytes;
};

/* Everything the summary counts in its one pass over the flows. */
struct report_sum {
	int64_t flows, pkts, bytes, no_pkts, no_bytes, first, last;
	struct report_agg dim[RD_COUNT];
	struct report_hour *hours;
	size_t nhours;
	bool too_long;		/* more than REPORT_HOURS_MAX hours: none counted */
};

/* The protocols whose flows carry ports: TCP, UDP, DCCP, SCTP, UDP-Lite. */
static bool report_has_ports(int proto)
{
	return proto == 6 || proto == 17 || proto == 33 || proto == 132 || proto == 136;
}

/* The local hours that meet [q->start, q->end), in order.  -ENOMEM. */
static int report_hours(struct render_ctx *ctx, const struct cache_query *q,
			struct report_sum *s)
{
	size_t n = 0;
	int64_t h;

	for (h = report_local_floor(&ctx->tz, q->start, REPORT_HOUR); h < q->end;
	     h = report_local_next(&ctx->tz, h, REPORT_HOUR))
		if (++n > REPORT_HOURS_MAX) {
			s->too_long = true;
			return 0;
		}
	s->hours = calloc(n ? n : 1, sizeof(*s->hours));
	if (!s->hours)
		return -ENOMEM;
	h = report_local_floor(&ctx->tz, q->start, REPORT_HOUR);
	for (size_t i = 0; i < n; i++, h = report_local_next(&ctx->tz, h, REPORT_HOUR))
		s->hours[i].start = h;
	s->nhours = n;
	return 0;
}

/* The keys of r in the two large tables: its peer (the side that is not
 * the subject; the destination when both are: a flow inside a subject
 * prefix) and, for a protocol with ports, its destination port; false
 * when it has no port key. */
static bool report_keys(const struct cache_query *q, const struct flow_rec *r,
			const uint8_t **peer, uint8_t port[16])
{
	*peer = cache_prefix_contains(&q->subject, r->src) ? r->dst : r->src;
	if (r->dport < 0 || !report_has_ports(r->proto))
		return false;
	report_key_put(port, r->dport);
	report_key_put(port + 8, r->proto);
	return true;
}

/* Ask the CPU for the slots r's keys hash to in the peers and ports
 * tables, a few rows before report_count needs them: the tables outgrow
 * the caches (200,000 peers: 16 MiB), so most lookups miss. */
static void report_prefetch(const struct report_sum *s, const struct cache_query *q,
			    const struct flow_rec *r)
{
	const struct report_agg *peers = &s->dim[RD_PEERS], *ports = &s->dim[RD_PORTS];
	const uint8_t *peer;
	uint8_t k[16];

	bool port = report_keys(q, r, &peer, k);
	if (peers->cap)
		__builtin_prefetch(&peers->v[report_hash(peer) & (peers->cap - 1)]);
	if (port && ports->cap)
		__builtin_prefetch(&ports->v[report_hash(k) & (ports->cap - 1)]);
}

/* Count one flow into every table. */
static int report_count(struct report_sum *s, const struct cache_query *q,
			const struct flow_rec *r, size_t *hour)
{
	const uint8_t *peer;
	uint8_t k[16];
	int rc;

	if (s->flows++ == 0)
		s->first = r->start_ms;
	s->last = r->start_ms;
	if (r->pkts >= 0)
		s->pkts += r->pkts;
	else
		s->no_pkts++;
	if (r->bytes >= 0)
		s->bytes += r->bytes;
	else
		s->no_bytes++;
	bool port = report_keys(q, r, &peer, k);
	rc = report_agg_add(&s->dim[RD_PEERS], peer, r->bytes);
	if (!rc && port)
		rc = report_agg_add(&s->dim[RD_PORTS], k, r->bytes);
	if (!rc) {
		report_key_put(k, r->proto);
		report_key_put(k + 8, 0);
		rc = report_agg_add(&s->dim[RD_PROTOS], k, r->bytes);
	}
	if (!rc) {
		report_key_put(k, r->app);
		rc = report_agg_add(&s->dim[RD_APPS], k, r->bytes);
	}
	if (s->nhours) {
		while (*hour + 1 < s->nhours && s->hours[*hour + 1].start <= r->start_ms)
			(*hour)++;
		s->hours[*hour].flows++;
		if (r->bytes > 0)
			s->hours[*hour].bytes += r->bytes;
	}
	return rc;
}

/* The columns the summary counts, from the rows flows.csv shows (the same
 * WHERE), in primary key order: no sort.  Eight columns, not the
 * renderers' 23: decoding them was half the time of a pass. */
#define REPORT_SQL_SCAN                                                        \
	"SELECT start,src,dst,proto,dport,app,pkts,bytes FROM flows"           \
	" WHERE subject=?1 AND start>=?2 AND start<?3"
#define REPORT_SQL_ORDER " ORDER BY start,id"

/* A 16-byte address column into a (zeros if it is not one). */
static void report_col_addr(sqlite3_stmt *st, int i, uint8_t a[16])
{
	const void *b = sqlite3_column_blob(st, i);

	if (b && sqlite3_column_bytes(st, i) == 16)
		memcpy(a, b, 16);
	else
		memset(a, 0, 16);
}

/* How many rows ahead of the counting the scan reads (report_prefetch). */
#define REPORT_AHEAD 8

/* One pass over the flows q selects, in start order, into s. */
static int report_scan(struct cache *c, const struct cache_query *q, struct report_sum *s,
		       char *err)
{
	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN];
	sqlite3_stmt *st = NULL;
	struct flow_rec ring[REPORT_AHEAD];
	size_t hour = 0, k = 0, counted = 0;
	int rc;

	rc = sqlite3_prepare_v2(c->db,
				q->has_peer ? REPORT_SQL_SCAN CACHE_PEER_WHERE REPORT_SQL_ORDER
					    : REPORT_SQL_SCAN REPORT_SQL_ORDER,
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return cache_sqlite_fail(c->db, rc, err, "prepare summary");
	cache_query_keys(q, subject, peer);
	rc = cache_bind_query(st, q, subject);
	if (rc != SQLITE_OK) {
		rc = cache_sqlite_fail(c->db, rc, err, "bind query");
		goto out;
	}
	/* rows are counted REPORT_AHEAD rows after they are read, their slots
	 * prefetched meanwhile; counted is always k - REPORT_AHEAD or more */
	for (;;) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW && k - counted == REPORT_AHEAD) {
			if (report_count(s, q, &ring[counted % REPORT_AHEAD], &hour))
				goto nomem;
			counted++;
		}
		if (rc != SQLITE_ROW)
			break;
		struct flow_rec *r = &ring[k++ % REPORT_AHEAD];
		r->start_ms = sqlite3_column_int64(st, 0);
		report_col_addr(st, 1, r->src);
		report_col_addr(st, 2, r->dst);
		r->proto = (int32_t)cache_col_opt(st, 3);
		r->dport = (int32_t)cache_col_opt(st, 4);
		r->app = cache_col_opt(st, 5);
		r->pkts = cache_col_opt(st, 6);
		r->bytes = cache_col_opt(st, 7);
		report_prefetch(s, q, r);
	}
	if (rc != SQLITE_DONE) {
		rc = cache_sqlite_fail(c->db, rc, err, "read flows");
		goto out;
	}
	for (rc = 0; counted < k; counted++)
		if (report_count(s, q, &ring[counted % REPORT_AHEAD], &hour))
			goto nomem;
	goto out;
nomem:
	rc = cache_fail(err, -ENOMEM, "out of memory counting flows");
out:
	sqlite3_finalize(st);
	return rc;
}

/* Decimal digits of v >= 0. */
static int report_digits(int64_t v)
{
	int n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/* part of whole as "12.5%", "-" when whole is 0. */
static void report_pct(int64_t part, int64_t whole, char *buf, size_t len)
{
	if (whole <= 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f%%", (double)part * 100.0 / (double)whole);
}

/* The label of a key of dimension d, as flows.csv names it. */
static void report_label(struct render_out *o, struct render_ctx *ctx, int d, const uint8_t *k)
{
	char buf[64];
	int64_t v = report_key_get(k);
	const char *name;

	switch (d) {
	case RD_PEERS:
		render_put(o, buf, cache_addr_text(k, buf));
		return;
	case RD_PORTS:
		name = cache_proto_name((int)report_key_get(k + 8));
		if (name)
			report_printf(o, "%lld/%s", (long long)v, name);
		else
			report_printf(o, "%lld/%lld", (long long)v,
				      (long long)report_key_get(k + 8));
		return;
	case RD_PROTOS:
		name = v >= 0 ? cache_proto_name((int)v) : NULL;
		if (name)
			report_puts(o, name);
		else if (v >= 0)
			report_printf(o, "%lld", (long long)v);
		else
			report_puts(o, "(unknown)");
		return;
	default: {
		const struct render_map_entry *e =
			v >= 0 ? render_find(&ctx->map[CACHE_APPS], v, 0, false) : NULL;
		if (e)
			report_text(o, e->name, e->len);
		else if (v >= 0)
			report_printf(o, "%lld", (long long)v);
		else
			report_puts(o, "(unknown)");
	}
	}
}

/* A table of entries: flows, share, bytes, share, then the label (last, so
 * that a long name never pushes a column). */
static void report_table(struct render_out *o, struct render_ctx *ctx,
			 const struct report_sum *s, int d,
			 const char *column, const struct report_entry *const *v, size_t n)
{
	int wf = report_digits(s->flows), wb = report_digits(s->bytes);
	char pf[16], pb[16];

	wf = wf < 5 ? 5 : wf;
	wb = wb < 5 ? 5 : wb;
	report_printf(o, "  %*s  %6s  %*s  %6s  %s\n", wf, "flows", "%", wb, "bytes", "%", column);
	for (size_t i = 0; i < n; i++) {
		report_pct(v[i]->flows, s->flows, pf, sizeof(pf));
		report_pct(v[i]->bytes, s->bytes, pb, sizeof(pb));
		report_printf(o, "  %*lld  %6s  %*lld  %6s  ", wf, (long long)v[i]->flows, pf, wb,
			(long long)v[i]->bytes, pb);
		report_label(o, ctx, d, v[i]->key);
		report_putc(o, '\n');
	}
}

/*
 * One dimension: every key (by flows) when there are at most REPORT_TOP,
 * else the top REPORT_TOP by flows and the top REPORT_TOP by bytes.
 */
static void report_section(struct render_out *o, struct render_ctx *ctx, const struct report_sum *s,
			   int d)
{
	static const char *const title[RD_COUNT] = {"Peers", "Destination ports", "Protocols",
						     "Applications"};
	static const char *const lower[RD_COUNT] = {"peers", "destination ports", "protocols",
						     "applications"};
	static const char *const column[RD_COUNT] = {"peer", "port", "protocol", "application"};
	const struct report_agg *a = &s->dim[d];
	const struct report_entry *top[REPORT_TOP];
	size_t n;

	report_putc(o, '\n');
	if (a->n == 0) {
		report_printf(o, "%s: none\n", title[d]);
		return;
	}
	n = report_top(a, false, top);
	if (a->n <= REPORT_TOP) {
		report_printf(o, "%s (all %zu, by flows)\n", title[d], a->n);
		report_table(o, ctx, s, d, column[d], top, n);
		return;
	}
	report_printf(o, "Top %d %s by flows (of %zu)\n", REPORT_TOP, lower[d], a->n);
	report_table(o, ctx, s, d, column[d], top, n);
	n = report_top(a, true, top);
	report_printf(o, "\nTop %d %s by bytes (of %zu)\n", REPORT_TOP, lower[d], a->n);
	report_table(o, ctx, s, d, column[d], top, n);
}

/* An hour's start as "2023-09-15T10:00Z" / "...T10:00+05:30" (the seconds
 * and milliseconds of cache_time_text are always zero there). */
static size_t report_hour_text(struct render_ctx *ctx, int64_t ms, char out[32])
{
	char t[32];
	size_t n = cache_time_text(&ctx->tz, ms, t);

	memcpy(out, t, 16);
	memcpy(out + 16, t + 23, n - 23 + 1);
	return n - 7;
}

/* Volume by hour: one line an hour of the range, a bar of '#' for flows;
 * for a live q, an hour that starts at or after live_as_of_ms is "not yet
 * exported" (with what came so far, if anything), and the hour it falls in
 * says up to when it is exported. */
static void report_volume(struct render_out *o, struct render_ctx *ctx, const struct report_sum *s,
			  const struct cache_query *q)
{
	int64_t edge = q->live_as_of_ms > 0 ? q->live_as_of_ms : INT64_MAX;
	int wf = report_digits(s->flows), wb = report_digits(s->bytes);
	int64_t max = 0;
	size_t wh = 4;
	char h[32];

	report_putc(o, '\n');
	if (s->too_long) {
		report_printf(o, "Volume by hour: not shown, the range has more than %d hours\n",
			REPORT_HOURS_MAX);
		return;
	}
	if (s->nhours == 0) {
		report_printf(o, "Volume by hour: none, the range is empty\n");
		return;
	}
	for (size_t i = 0; i < s->nhours; i++) {
		size_t n = report_hour_text(ctx, s->hours[i].start, h);
		wh = n > wh ? n : wh;
		max = s->hours[i].flows > max ? s->hours[i].flows : max;
	}
	wf = wf < 5 ? 5 : wf;
	wb = wb < 5 ? 5 : wb;
	report_printf(o, "Volume by hour (# = flows)\n");
	report_printf(o, "  %-*s  %*s  %*s\n", (int)wh, "hour", wf, "flows", wb, "bytes");
	for (size_t i = 0; i < s->nhours; i++) {
		const struct report_hour *v = &s->hours[i];
		int64_t end = i + 1 < s->nhours ? s->hours[i + 1].start : q->end;
		report_hour_text(ctx, v->start, h);
		if (v->start >= edge && !v->flows) {
			report_printf(o, "  %-*s  %*s  %*s  not yet exported\n", (int)wh, h, wf, "-",
				      wb, "-");
			continue;
		}
		report_printf(o, "  %-*s  %*lld  %*lld", (int)wh, h, wf, (long long)v->flows, wb,
			(long long)v->bytes);
		if (v->flows) {
			int64_t bar = (v->flows * REPORT_BAR + max - 1) / max;
			report_puts(o, "  ");
			for (int64_t b = 0; b < bar; b++)
				report_putc(o, '#');
		}
		if (v->start >= edge) {
			report_puts(o, "  (so far: not yet exported)");
		} else if (end > edge) {
			char t[40];
			cache_time_text(&ctx->tz, edge, t);
			report_printf(o, "  (exported up to %s)", t);
		}
		report_putc(o, '\n');
	}
}

/* "unknown for 3 flows": how many flows did not say. */
static void report_unknown(struct render_out *o, int64_t n)
{
	report_printf(o, "unknown for %lld flow%s", (long long)n, n == 1 ? "" : "s");
}

size_t cache_live_text(const struct cache_query *q, char *buf, size_t len)
{
	char t[40];
	int n;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	if (!q || q->live_as_of_ms <= 0)
		return 0;
	cache_time_format(q->live_as_of_ms, t, sizeof(t));
	n = snprintf(buf, len, "live, complete up to %s, refreshed at most every %d s", t,
		     q->live_refresh_s);
	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

/* The header, the query and the totals. */
static void report_head(struct render_out *o, struct render_ctx *ctx, const struct cache_query *q,
			const struct report_sum *s, size_t ngaps)
{
	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN], t[32], d[64];
	int w = report_digits(s->flows), wp;

	cache_query_keys(q, subject, peer);
	if (q->has_peer)
		report_printf(o, "Summary of the flows between %s and %s\n\n", subject, peer);
	else
		report_printf(o, "Summary of the flows of %s (any peer)\n\n", subject);
	report_printf(o, "Query\n");
	report_printf(o, "  %-16s%s\n", "subject", subject);
	report_printf(o, "  %-16s%s\n", "peer", q->has_peer ? peer : "any");
	cache_time_text(&ctx->tz, q->start, t);
	report_printf(o, "  %-16s%s\n", "from", t);
	cache_time_text(&ctx->tz, q->end, t);
	report_duration(q->end - q->start, d, sizeof(d));
	report_printf(o, "  %-16s%s  (excluded; %s)\n", "to", t, d);
	report_printf(o, "  %-16s", "zone");
	report_text(o, report_zone(), strlen(report_zone()));
	if (q->live_as_of_ms > 0) {
		char live[160];
		cache_live_text(q, live, sizeof(live));
		report_printf(o, "\n  %-16s%s", "status", live);
	}
	if (ngaps)
		report_printf(o, "\n  %-16s%zu (listed at the end: flows there may be missing)\n",
			      "gaps", ngaps);
	else
		report_printf(o, "\n  %-16snone%s\n", "gaps",
			      q->live_as_of_ms > 0 ? " (up to the time it is complete to)" : "");

	w = report_digits(s->pkts) > w ? report_digits(s->pkts) : w;
	w = report_digits(s->bytes) > w ? report_digits(s->bytes) : w;
	wp = report_digits((int64_t)s->dim[RD_PEERS].n);
	w = wp > w ? wp : w;
	report_printf(o, "\nTotals\n");
	report_printf(o, "  %-16s%*lld\n", "flows", w, (long long)s->flows);
	report_printf(o, "  %-16s%*lld", "packets", w, (long long)s->pkts);
	if (s->no_pkts) {
		report_puts(o, "  (");
		report_unknown(o, s->no_pkts);
		report_putc(o, ')');
	}
	report_si(s->bytes, "B", d, sizeof(d));
	report_printf(o, "\n  %-16s%*lld  (%s", "bytes", w, (long long)s->bytes, d);
	if (s->no_bytes) {
		report_puts(o, "; ");
		report_unknown(o, s->no_bytes);
	}
	report_printf(o, ")\n  %-16s%*zu\n", "distinct peers", w, s->dim[RD_PEERS].n);
	if (s->flows) {
		cache_time_text(&ctx->tz, s->first, t);
		report_printf(o, "  %-16s%s\n", "first flow", t);
		cache_time_text(&ctx->tz, s->last, t);
		report_printf(o, "  %-16s%s  (start)\n", "last flow", t);
	}
}

/* Every gap of q, one a line, or "Gaps: none". */
static void report_gaps(struct render_out *o, struct render_ctx *ctx, const struct cache_gap *g,
			size_t n)
{
	char a[32], b[32], d[64];

	report_putc(o, '\n');
	if (n == 0) {
		report_printf(o, "Gaps: none\n");
		return;
	}
	report_printf(o, "Gaps: %zu (windows that could not be fetched whole: flows in them may be "
		     "missing)\n", n);
	for (size_t i = 0; i < n; i++) {
		cache_time_text(&ctx->tz, g[i].start, a);
		cache_time_text(&ctx->tz, g[i].end, b);
		report_duration(g[i].end - g[i].start, d, sizeof(d));
		report_printf(o, "  %s to %s (%s): ", a, b, d);
		report_text(o, g[i].reason, strnlen(g[i].reason, sizeof(g[i].reason)));
		/* the narrowest peer tried and the records of the last (saturated)
		 * answer, where there were any */
		if (g[i].peer[0]) {
			report_puts(o, " (peer ");
			report_text(o, g[i].peer, strnlen(g[i].peer, sizeof(g[i].peer)));
		}
		if (g[i].seen > 0)
			report_printf(o, "%s%lld records seen", g[i].peer[0] ? ", " : " (",
				(long long)g[i].seen);
		if (g[i].peer[0] || g[i].seen > 0)
			report_putc(o, ')');
		report_putc(o, '\n');
	}
}

/*
 * summary.txt: count the flows in one pass (report_scan), then write the
 * query, the totals, the four dimensions, the volume by hour and the gaps.
 * -EINVAL for a bad query; -ENOMEM; SQLite and write errors as -errno.
 */
int cache_render_summary(struct cache *c, const struct cache_query *q, FILE *out,
			 char *err)
{
	struct render_ctx *ctx = NULL;
	struct render_out o = {0};
	struct report_sum s;
	struct cache_gap *gaps = NULL;
	size_t ngaps = 0;
	int rc;

	memset(&s, 0, sizeof(s));
	rc = report_open(c, q, out, &o, err);
	if (rc)
		return rc;
	rc = render_begin(c, &ctx, err);
	if (rc)
		goto out;
	if (report_hours(ctx, q, &s)) {
		rc = cache_fail(err, -ENOMEM, "out of memory");
		goto out;
	}
	rc = report_scan(c, q, &s, err);
	if (!rc)
		rc = cache_gaps(c, q, &gaps, &ngaps, err);
	if (rc)
		goto out;
	report_head(&o, ctx, q, &s, ngaps);
	for (int d = 0; d < RD_COUNT; d++)
		report_section(&o, ctx, &s, d);
	report_volume(&o, ctx, &s, q);
	report_gaps(&o, ctx, gaps, ngaps);
	rc = render_finish(&o, err);
out:
	if (ctx)
		render_end(c, ctx);
	free(o.buf);
	for (int d = 0; d < RD_COUNT; d++)
		free(s.dim[d].v);
	free(s.hours);
	free(gaps);
	return rc;
}

/* ---- timeline.svg ---------------------------------------------------------------------- */

#define TL_W 1000
#define TL_H 550
#define TL_X0 80		/* the plots' left edge */
#define TL_PW 880		/* and width (40 px right of it for the last label) */
#define TL_PH 170		/* each plot's height */
#define TL_TOP1 80		/* the flows plot's top edge */
#define TL_TOP2 292		/* the bytes plot's top edge */
#define TL_BINS_MAX 300
#define TL_TICKS_MAX 10
#define TL_TICKS_CAP 32		/* ticks kept (more than TL_TICKS_MAX across DST) */
#define TL_FLOWS "#4c72b0"
#define TL_BYTES "#55a868"
#define TL_GAP "#d62728"

/* Round steps for bins and ticks: 1-2-5 below a second, then clock steps. */
static const int64_t tl_steps[] = {
	1, 2, 5, 10, 20, 50, 100, 200, 500,
	1000, 2000, 5000, 10000, 15000, 30000,
	REPORT_MIN, 2 * REPORT_MIN, 5 * REPORT_MIN, 10 * REPORT_MIN, 15 * REPORT_MIN,
	30 * REPORT_MIN, REPORT_HOUR, 2 * REPORT_HOUR, 3 * REPORT_HOUR, 6 * REPORT_HOUR,
	12 * REPORT_HOUR, CACHE_DAY_MS, 2 * CACHE_DAY_MS, 7 * CACHE_DAY_MS, 14 * CACHE_DAY_MS,
	28 * CACHE_DAY_MS,
};
#define TL_NSTEPS (sizeof(tl_steps) / sizeof(tl_steps[0]))

/* The i-th round step: tl_steps, then multiples of 28 days. */
static int64_t tl_step(size_t i)
{
	return i < TL_NSTEPS ? tl_steps[i] : 28 * CACHE_DAY_MS * (int64_t)(i - TL_NSTEPS + 2);
}

/* The first bin or tick: the local multiple of step at or before from;
 * *n gets how many steps from there reach to (at least 1). */
static int64_t tl_align(struct render_ctx *ctx, int64_t from, int64_t to, int64_t step,
			int64_t *n)
{
	int64_t b0 = report_local_floor(&ctx->tz, from, step);

	*n = to > b0 ? (to - b0) / step + ((to - b0) % step != 0) : 1;
	return b0;
}

/* One bin's flows and bytes: ?2 and ?3 are the bin's bounds (the query's
 * where it starts or ends inside a bin), the rest as cache_bind_query. */
#define TL_SQL_BIN                                                             \
	"SELECT count(*),sum(bytes) FROM flows WHERE subject=?1"               \
	" AND start>=?2 AND start<?3"

/* The bins: [b0 + i * step, b0 + (i + 1) * step), i < n. */
struct tl_bins {
	int64_t b0, step;
	size_t n;
	int64_t flows[TL_BINS_MAX + 1], bytes[TL_BINS_MAX + 1];
	int64_t max_flows, max_bytes, total_flows, total_bytes;
	int64_t tick, ticks[TL_TICKS_CAP];	/* the x ticks: their step, their times */
	size_t nticks;
};

/*
 * Choose the bins: the smallest round step giving at most 300 of them from
 * a local multiple of the step, so more than 120 wherever the range is
 * longer than 100 ms (consecutive steps differ by 2.5 times at most; 85
 * between 2 d and 7 d).  Fill them with one count(*)/sum(bytes) per bin
 * over the primary key range: the rows are read once in all, nothing is
 * sorted, and memory is the 300 bins.
 */
static int tl_fill(struct cache *c, struct render_ctx *ctx, const struct cache_query *q,
		   struct tl_bins *b, char *err)
{
	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN];
	sqlite3_stmt *st = NULL;
	int64_t n = TL_BINS_MAX + 1;
	int rc;

	for (size_t i = 0; n > TL_BINS_MAX; i++) {
		b->step = tl_step(i);
		b->b0 = tl_align(ctx, q->start, q->end, b->step, &n);
	}
	b->n = (size_t)n;
	rc = sqlite3_prepare_v2(c->db, q->has_peer ? TL_SQL_BIN CACHE_PEER_WHERE : TL_SQL_BIN, -1,
				&st, NULL);
	if (rc != SQLITE_OK)
		return cache_sqlite_fail(c->db, rc, err, "prepare timeline");
	cache_query_keys(q, subject, peer);
	rc = cache_bind_query(st, q, subject);
	for (size_t i = 0; rc == SQLITE_OK && i < b->n; i++) {
		int64_t lo = b->b0 + (int64_t)i * b->step, hi = lo + b->step;
		lo = lo < q->start ? q->start : lo;
		hi = hi > q->end ? q->end : hi;
		sqlite3_bind_int64(st, 2, lo);
		sqlite3_bind_int64(st, 3, hi);
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW)
			break;
		b->flows[i] = sqlite3_column_int64(st, 0);
		b->bytes[i] = sqlite3_column_int64(st, 1);
		b->total_flows += b->flows[i];
		b->total_bytes += b->bytes[i];
		b->max_flows = b->flows[i] > b->max_flows ? b->flows[i] : b->max_flows;
		b->max_bytes = b->bytes[i] > b->max_bytes ? b->bytes[i] : b->max_bytes;
		rc = sqlite3_reset(st);
	}
	if (rc != SQLITE_OK && rc != SQLITE_DONE)
		rc = cache_sqlite_fail(c->db, rc, err, "timeline");
	else
		rc = 0;
	sqlite3_finalize(st);
	return rc;
}

/*
 * The y axes are logarithmic: a flood of 15,000 flows in one bin beside
 * bins of ten would leave those a pixel high on a linear axis (and an
 * ordinary day looks empty).  A value v is drawn at TL_PH x log10(1 + v) /
 * log10(1 + top), top the power of ten at or above the panel's largest
 * value (10 at least, 10^18 at most): 0 is the baseline, 1 is a few
 * pixels, and every power of ten is a grid line (every second or third
 * when there are more than six).  The panels' titles say "log scale".
 */
#define TL_DECADES_MAX 18

/* The decades of a panel's axis: the power of ten at or above max. */
static int tl_decades(int64_t max)
{
	int d = 1;

	for (int64_t p = 10; p < max && d < TL_DECADES_MAX; p *= 10)
		d++;
	return d;
}

/* The height of value v on an axis of d decades, TL_PH at most. */
static double tl_height(int64_t v, int d)
{
	double h = TL_PH * log10(1.0 + (double)v) / log10(1.0 + pow(10.0, d));

	return h > TL_PH ? TL_PH : h;
}

/* The x of time t on the plots. */
static double tl_x(const struct tl_bins *b, int64_t t)
{
	double span = (double)b->step * (double)b->n;

	return TL_X0 + (double)(t - b->b0) * TL_PW / span;
}

/* The x ticks: a round step giving at most TL_TICKS_MAX of them over the
 * bins, each on a local multiple of the step (day ticks stay on midnight
 * across a DST change). */
static void tl_tick_times(struct render_ctx *ctx, struct tl_bins *b)
{
	int64_t end = b->b0 + b->step * (int64_t)b->n, t = 0, n = TL_TICKS_MAX + 1;

	for (size_t i = 0; n > TL_TICKS_MAX; i++) {
		b->tick = tl_step(i);
		t = tl_align(ctx, b->b0, end, b->tick, &n);
	}
	if (t < b->b0)
		t = report_local_next(&ctx->tz, t, b->tick);
	for (b->nticks = 0; t <= end && b->nticks < TL_TICKS_CAP;
	     t = report_local_next(&ctx->tz, t, b->tick))
		b->ticks[b->nticks++] = t;
}

/* One panel: its title, frame, grid, y labels, and the bars of the
 * non-empty bins (one rect each, inside <g id="flows-bars"> or
 * "bytes-bars"); narrow bins touch, so that many read as an area. */
static void tl_panel(struct render_out *o, const struct tl_bins *b, const int64_t *v,
		     int64_t max, int top, const char *id, const char *color, const char *title,
		     const char *unit)
{
	char l[32];
	int d = tl_decades(max), every = d <= 6 ? 1 : (d + 5) / 6;
	double bw = (double)TL_PW / (double)b->n;
	double pad = bw >= 6 ? 0.5 : 0;

	report_printf(o, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">%s "
		      "<tspan font-weight=\"normal\" fill=\"#555555\">(log scale)</tspan></text>\n",
		      TL_X0, top - 8, title);
	report_printf(o, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fbfbfb\" "
		     "stroke=\"#bbbbbb\"/>\n", TL_X0, top, TL_PW, TL_PH);
	for (size_t i = 0; i < b->nticks; i++) {
		double x = tl_x(b, b->ticks[i]);
		report_printf(o, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" "
			     "stroke=\"#e4e4e4\"/>\n", x, top, x, top + TL_PH);
	}
	/* 0 at the baseline, then the powers of ten */
	report_printf(o, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>\n", TL_X0 - 6,
		      top + TL_PH + 4);
	int64_t p = 1;
	for (int k = 0; k <= d; k++) {
		if (k > 0)
			p *= 10;
		/* 1 only when clear of the 0 under it */
		if ((k % every != 0 && k != d) || (k == 0 && tl_height(1, d) < 14))
			continue;
		double y = top + TL_PH - tl_height(p, d);
		report_si(p, unit, l, sizeof(l));
		if (k < d)
			report_printf(o, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\" "
				     "stroke=\"#e4e4e4\"/>\n", TL_X0, y, TL_X0 + TL_PW, y);
		report_printf(o, "<text x=\"%d\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n",
			TL_X0 - 6, y + 4, l);
	}
	report_printf(o, "<g id=\"%s\" fill=\"%s\" shape-rendering=\"crispEdges\">\n", id, color);
	for (size_t i = 0; i < b->n; i++) {
		if (v[i] <= 0)
			continue;
		double h = tl_height(v[i], d);
		h = h < 1 ? 1 : h;
		report_printf(o, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n",
			TL_X0 + (double)i * bw + pad, top + TL_PH - h, bw - 2 * pad, h);
	}
	report_printf(o, "</g>\n");
	if (b->total_flows == 0)
		report_printf(o, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#888888\">"
			     "no flows in this range</text>\n", TL_X0 + TL_PW / 2, top + TL_PH / 2);
}

/* A tick label centred on x, or ending (starting) there near the right
 * (left) edge so that it stays on the canvas. */
static void tl_label(struct render_out *o, double x, int y, const char *fill, const char *s,
		     int len)
{
	double half = 3.5 * len;
	const char *anchor = x + half > TL_W - 2 ? "end" : x - half < 2 ? "start" : "middle";

	report_printf(o, "<text x=\"%.2f\" y=\"%d\" text-anchor=\"%s\" fill=\"%s\">%.*s</text>\n",
		x, y, anchor, fill, len, s);
}

/* The x axis under the lower plot: a mark and a label a tick in the
 * process's zone (the time, and the date under the first tick and where it
 * changes; the date alone for ticks of a day or more). */
static void tl_axis(struct render_out *o, struct render_ctx *ctx, const struct tl_bins *b)
{
	char s[32], last_date[11] = "";
	int y = TL_TOP2 + TL_PH;

	for (size_t i = 0; i < b->nticks; i++) {
		double x = tl_x(b, b->ticks[i]);
		cache_time_text(&ctx->tz, b->ticks[i], s);
		report_printf(o, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" "
			     "stroke=\"#888888\"/>\n", x, y, x, y + 5);
		if (b->tick >= CACHE_DAY_MS) {
			tl_label(o, x, y + 18, "#000000", s, 10);
			continue;
		}
		/* HH:MM, HH:MM:SS or HH:MM:SS.mmm as the tick needs */
		tl_label(o, x, y + 18, "#000000", s + 11,
			 b->tick % REPORT_MIN == 0 ? 5 : b->tick % 1000 == 0 ? 8 : 12);
		if (strncmp(last_date, s, 10) != 0) {
			memcpy(last_date, s, 10);
			tl_label(o, x, y + 32, "#555555", s, 10);
		}
	}
}

/* Each gap shaded across both plots (2 px at least, so a 1 ms gap shows),
 * its times and reason as a tooltip. */
static void tl_gaps(struct render_out *o, struct render_ctx *ctx, const struct tl_bins *b,
		    const struct cache_gap *g, size_t n)
{
	int64_t end = b->b0 + b->step * (int64_t)b->n;
	char s[32], e[32];

	report_printf(o, "<g id=\"gaps\" fill=\"%s\" fill-opacity=\"0.3\">\n", TL_GAP);
	for (size_t i = 0; i < n; i++) {
		double x0 = tl_x(b, g[i].start < b->b0 ? b->b0 : g[i].start);
		double x1 = tl_x(b, g[i].end > end ? end : g[i].end);
		if (x1 - x0 < 2) {
			x0 = (x0 + x1) / 2 - 1;
			x1 = x0 + 2;
		}
		cache_time_text(&ctx->tz, g[i].start, s);
		cache_time_text(&ctx->tz, g[i].end, e);
		for (int p = 0; p < 2; p++) {
			report_printf(o, "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" "
				      "height=\"%d\"><title>gap %s to %s: ",
				      x0, p ? TL_TOP2 : TL_TOP1, x1 - x0, TL_PH, s, e);
			report_xml(o, g[i].reason);
			report_printf(o, "</title></rect>\n");
		}
	}
	report_printf(o, "</g>\n");
}

/* A live q's time from live_as_of_ms to the end shaded grey across both
 * plots, labelled "not yet exported", its edge as a tooltip. */
static void tl_live(struct render_out *o, struct render_ctx *ctx, const struct tl_bins *b,
		    const struct cache_query *q)
{
	int64_t end = b->b0 + b->step * (int64_t)b->n;
	char t[32];

	if (q->live_as_of_ms <= 0 || q->live_as_of_ms >= q->end)
		return;
	double x0 = tl_x(b, q->live_as_of_ms < b->b0 ? b->b0 : q->live_as_of_ms);
	double x1 = tl_x(b, q->end > end ? end : q->end);
	cache_time_text(&ctx->tz, q->live_as_of_ms, t);
	report_printf(o, "<g id=\"not-exported\" fill=\"#888888\" fill-opacity=\"0.2\">\n");
	for (int p = 0; p < 2; p++)
		report_printf(o, "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\">"
			      "<title>not yet exported: live, complete up to %s</title></rect>\n",
			      x0, p ? TL_TOP2 : TL_TOP1, x1 - x0, TL_PH, t);
	report_printf(o, "</g>\n<text x=\"%.2f\" y=\"%d\" fill=\"#444444\">not yet exported"
		      "</text>\n", x0 + 4, TL_TOP1 + 14);
}

/* The legend line under the ticks. */
static void tl_legend(struct render_out *o, size_t ngaps)
{
	int y = TL_H - 16;

	report_printf(o, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>\n",
		      TL_X0, y - 10, TL_FLOWS);
	report_printf(o, "<text x=\"%d\" y=\"%d\">flows</text>\n", TL_X0 + 18, y);
	report_printf(o, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>\n",
		TL_X0 + 80, y - 10, TL_BYTES);
	report_printf(o, "<text x=\"%d\" y=\"%d\">bytes</text>\n", TL_X0 + 98, y);
	report_printf(o, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\" "
		     "fill-opacity=\"0.3\" stroke=\"%s\"/>\n", TL_X0 + 160, y - 10, TL_GAP, TL_GAP);
	if (ngaps)
		report_printf(o, "<text x=\"%d\" y=\"%d\">gap: %zu window%s not fetched whole, "
			      "flows there may be missing (see summary.txt)</text>\n",
			      TL_X0 + 178, y, ngaps, ngaps == 1 ? "" : "s");
	else
		report_printf(o, "<text x=\"%d\" y=\"%d\">gaps: none</text>\n", TL_X0 + 178, y);
}

/* The title (the <title> element and the heading) and the line under it. */
static void tl_head(struct render_out *o, struct render_ctx *ctx, const struct cache_query *q,
		    const struct tl_bins *b)
{
	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN], from[32], to[32], title[256];
	char st[64], f[24], by[24];

	cache_query_keys(q, subject, peer);
	cache_time_text(&ctx->tz, q->start, from);
	cache_time_text(&ctx->tz, q->end, to);
	if (q->has_peer)
		snprintf(title, sizeof(title), "Flows between %s and %s", subject, peer);
	else
		snprintf(title, sizeof(title), "Flows of %s (any peer)", subject);
	report_printf(o, "<title>%s, %s to %s</title>\n", title, from, to);
	report_printf(o, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", TL_W, TL_H);
	report_printf(o, "<text x=\"%d\" y=\"26\" font-size=\"16\" font-weight=\"bold\">"
		      "%s</text>\n", TL_X0, title);
	report_duration(b->step, st, sizeof(st));
	report_si(b->total_flows, "", f, sizeof(f));
	report_si(b->total_bytes, "B", by, sizeof(by));
	report_printf(o, "<text x=\"%d\" y=\"46\" fill=\"#444444\">%s to %s (zone ", TL_X0,
		      from, to);
	report_xml(o, report_zone());
	report_printf(o, "): %s flows, %s, bins of %s</text>\n", f, by, st);
}

/*
 * timeline.svg: the bins (tl_fill), then the SVG in drawing order: title,
 * the two panels, the ticks, the gaps over the bars, the legend.  Numbers
 * are printed with fixed decimals, so the same state gives the same bytes.
 * -EINVAL for a bad query; -ENOMEM; SQLite and write errors as -errno.
 */
int cache_render_timeline(struct cache *c, const struct cache_query *q, FILE *out,
			  char *err)
{
	struct render_ctx *ctx = NULL;
	struct render_out o = {0};
	struct tl_bins *b = NULL;
	struct cache_gap *gaps = NULL;
	size_t ngaps = 0;
	char st[64], title[96];
	int rc;

	rc = report_open(c, q, out, &o, err);
	if (rc)
		return rc;
	b = calloc(1, sizeof(*b));
	if (!b) {
		rc = cache_fail(err, -ENOMEM, "out of memory");
		goto out;
	}
	rc = render_begin(c, &ctx, err);
	if (rc)
		goto out;
	rc = tl_fill(c, ctx, q, b, err);
	if (!rc)
		rc = cache_gaps(c, q, &gaps, &ngaps, err);
	if (rc)
		goto out;
	tl_tick_times(ctx, b);
	report_printf(&o, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
		     "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
		     "font-size=\"12\">\n", TL_W, TL_H, TL_W, TL_H);
	tl_head(&o, ctx, q, b);
	report_duration(b->step, st, sizeof(st));
	snprintf(title, sizeof(title), "Flows per %s", st);
	tl_panel(&o, b, b->flows, b->max_flows, TL_TOP1, "flows-bars", TL_FLOWS, title, "");
	snprintf(title, sizeof(title), "Bytes per %s", st);
	tl_panel(&o, b, b->bytes, b->max_bytes, TL_TOP2, "bytes-bars", TL_BYTES, title, "B");
	tl_axis(&o, ctx, b);
	tl_gaps(&o, ctx, b, gaps, ngaps);
	tl_live(&o, ctx, b, q);
	tl_legend(&o, ngaps);
	report_puts(&o, "</svg>\n");
	rc = render_finish(&o, err);
out:
	if (ctx)
		render_end(c, ctx);
	free(o.buf);
	free(gaps);
	free(b);
	return rc;
}

/* ---- lookup tables as CSV ---------------------------------------------------------------- */

/* The rows of each file, ordered by id (and ifindex): exporters joined with
 * their interfaces (?1 the exporters' table, ?2 the interfaces'), and
 * interfaces of an exporter the collector did not list. */
static const char report_sql_exporters[] =
	"SELECT e.key, e.name, e.extra, i.key2, i.name, i.extra FROM lookup e"
	" LEFT JOIN lookup i ON i.tbl=?2 AND i.key=e.key WHERE e.tbl=?1"
	" UNION ALL"
	" SELECT i.key, NULL, NULL, i.key2, i.name, i.extra FROM lookup i WHERE i.tbl=?2"
	" AND NOT EXISTS (SELECT 1 FROM lookup e WHERE e.tbl=?1 AND e.key=i.key)"
	" ORDER BY 1, 4";
static const char report_sql_table[] =
	"SELECT key, name, key2 FROM lookup WHERE tbl=?1 ORDER BY key, key2";

/* Column i of st as a CSV field: integers as they are, text quoted as
 * flows.csv quotes it, NULL empty, and so is a text this program could not
 * have stored (render_name_ok: a planted name of 200 KiB). */
static void report_csv_col(struct render_out *o, sqlite3_stmt *st, int i)
{
	struct render_field f = {.kind = RK_SAFE, .s = ""};
	char num[24];

	if (sqlite3_column_type(st, i) == SQLITE_INTEGER) {
		f.len = (uint32_t)cache_i64_text(sqlite3_column_int64(st, i), num);
		f.s = num;
	} else if (sqlite3_column_type(st, i) != SQLITE_NULL) {
		f.kind = RK_TEXT;
		f.s = (const char *)sqlite3_column_text(st, i);
		f.len = (uint32_t)sqlite3_column_bytes(st, i);
		if (!f.s || !render_name_ok(f.s, f.len)) {
			f.s = "";
			f.len = 0;
		}
	}
	render_csv_field(o, &f);
}

/*
 * One SELECT (a single statement sees one snapshot), every row written
 * through render_csv_field.  -EINVAL for a bad table; -ENOMEM; SQLite and
 * write errors as -errno.
 */
int cache_render_lookup(struct cache *c, enum cache_table t, FILE *out, char *err)
{
	static const char *const header[CACHE_NTABLES] = {
		[CACHE_APPS] = "id,name\n",
		[CACHE_GROUPS] = "id,name,parent\n",
		[CACHE_EXPORTERS] = "id,name,address,ifindex,interface,description\n",
		[CACHE_IFS] = "id,name,address,ifindex,interface,description\n",
	};
	struct render_out o = {.f = out};
	sqlite3_stmt *st = NULL;
	bool exporters = t == CACHE_EXPORTERS || t == CACHE_IFS;
	int ncols = t == CACHE_APPS ? 2 : exporters ? 6 : 3;
	int rc;

	if (!c || !out || (int)t < 0 || t >= CACHE_NTABLES)
		return cache_fail(err, -EINVAL, "bad lookup table");
	o.buf = malloc(RENDER_OUTBUF);
	if (!o.buf)
		return cache_fail(err, -ENOMEM, "out of memory");
	rc = sqlite3_prepare_v2(c->db, exporters ? report_sql_exporters : report_sql_table, -1,
				&st, NULL);
	if (rc != SQLITE_OK) {
		rc = cache_sqlite_fail(c->db, rc, err, "prepare lookup table");
		goto out;
	}
	sqlite3_bind_int(st, 1, exporters ? CACHE_EXPORTERS : (int)t);
	if (exporters)
		sqlite3_bind_int(st, 2, CACHE_IFS);
	render_put(&o, header[t], strlen(header[t]));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && !o.err) {
		for (int i = 0; i < ncols; i++) {
			if (i)
				render_put(&o, ",", 1);
			report_csv_col(&o, st, i);
		}
		render_put(&o, "\n", 1);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rc = cache_sqlite_fail(c->db, rc, err, "read lookup table");
		goto out;
	}
	rc = render_finish(&o, err);
out:
	sqlite3_finalize(st);
	free(o.buf);
	return rc;
}

/* ---- subjects ---------------------------------------------------------------------------- */

/*
 * SELECT DISTINCT over the coverage index (subject, peer, ...), parsed back.
 * A row that does not parse (never written by this program) is skipped, so
 * that one bad row cannot empty a listing.  -ENOMEM; SQLite errors.
 */
int cache_subjects(struct cache *c, struct cache_query **out, size_t *n, char *err)
{
	sqlite3_stmt *st = NULL;
	struct cache_query *v = NULL;
	size_t cnt = 0, cap = 0;
	int rc;

	if (!c || !out || !n)
		return cache_fail(err, -EINVAL, "bad arguments");
	*out = NULL;
	*n = 0;
	rc = sqlite3_prepare_v2(c->db, "SELECT DISTINCT subject, peer FROM coverage"
				       " ORDER BY subject, peer", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return cache_sqlite_fail(c->db, rc, err, "prepare subjects");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);
		const char *p = (const char *)sqlite3_column_text(st, 1);
		struct cache_query q;
		memset(&q, 0, sizeof(q));
		if (!s || cache_prefix_parse(s, &q.subject) != 0)
			continue;
		if (p && *p) {
			if (cache_prefix_parse(p, &q.peer) != 0)
				continue;
			q.has_peer = true;
		}
		if (arr_grow(&v, &cap, cnt + 1, sizeof(*v))) {
			rc = cache_fail(err, -ENOMEM, "out of memory");
			goto fail;
		}
		v[cnt++] = q;
	}
	if (rc != SQLITE_DONE) {
		rc = cache_sqlite_fail(c->db, rc, err, "read subjects");
		goto fail;
	}
	sqlite3_finalize(st);
	*out = v;
	*n = cnt;
	return 0;
fail:
	sqlite3_finalize(st);
	free(v);
	return rc;
}
