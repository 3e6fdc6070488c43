/*
 * format.c - the text of single values: protocol names, TCP flags, numbers
 * and times.
 *
 * Times are the expensive part of a CSV row.  engine-notes.md measured
 * nfdump at 67,000-76,000 rows/s when glibc re-reads /etc/localtime on every
 * localtime() call, so nothing here calls localtime per value: the offset of
 * the process's zone is looked up once per 15-minute bucket (every offset in
 * use is a multiple of 15 minutes and changes on a 15-minute boundary) and
 * cached in a few slots, and the calendar fields are computed by hand
 * (Howard Hinnant's days-to-civil algorithm), digits written directly.
 *
 * The zone is the process's (TZ, set once by the front).  A renderer resets
 * its slots (and calls tzset) when it starts; cache_time_format(), the public
 * entry, keeps per-thread slots and resets them when TZ changes.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache_i.h"

/* Names as design.md spells them; the numbers are IANA's. */
const char *cache_proto_name(int proto)
{
	switch (proto) {
	case 1: return "ICMP";
	case 2: return "IGMP";
	case 4: return "IPIP";
	case 6: return "TCP";
	case 17: return "UDP";
	case 41: return "IPv6";
	case 46: return "RSVP";
	case 47: return "GRE";
	case 50: return "ESP";
	case 51: return "AH";
	case 58: return "ICMP6";
	case 88: return "EIGRP";
	case 89: return "OSPF";
	case 103: return "PIM";
	case 112: return "VRRP";
	case 115: return "L2TP";
	case 132: return "SCTP";
	case 137: return "MPLS";
	default: return NULL;
	}
}

/* Eight characters, CWR first and FIN last, '.' for a clear bit; an empty
 * string for a negative (unknown) value. */
void cache_tcp_flags(int flags, char out[9])
{
	static const char names[] = "CEUAPRSF";

	if (flags < 0) {
		out[0] = '\0';
		return;
	}
	for (int i = 0; i < 8; i++)
		out[i] = (flags >> (7 - i)) & 1 ? names[i] : '.';
	out[8] = '\0';
}

static const char format_digits2[201] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* Two digits at a time from the right, then copied forward. */
size_t cache_i64_text(int64_t v, char *out)
{
	char t[24];
	char *p = t + sizeof(t);
	size_t len = 0, n;
	uint64_t u;

	if (v < 0) {
		out[len++] = '-';
		u = (uint64_t)0 - (uint64_t)v;
	} else {
		u = (uint64_t)v;
	}
	while (u >= 100) {
		unsigned d = (unsigned)(u % 100) * 2;
		u /= 100;
		*--p = format_digits2[d + 1];
		*--p = format_digits2[d];
	}
	if (u >= 10) {
		*--p = format_digits2[u * 2 + 1];
		*--p = format_digits2[u * 2];
	} else {
		*--p = (char)('0' + u);
	}
	n = (size_t)(t + sizeof(t) - p);
	memcpy(out + len, p, n);
	return len + n;
}

/* Exact decimal text of ms / 1000 with three decimals, no floating point. */
size_t cache_secs_text(int64_t ms, char *out)
{
	size_t len = 0;
	uint64_t u;

	if (ms < 0) {
		out[len++] = '-';
		u = (uint64_t)0 - (uint64_t)ms;
	} else {
		u = (uint64_t)ms;
	}
	len += cache_i64_text((int64_t)(u / 1000), out + len);
	unsigned f = (unsigned)(u % 1000);
	out[len++] = '.';
	out[len++] = (char)('0' + f / 100);
	out[len++] = (char)('0' + f / 10 % 10);
	out[len++] = (char)('0' + f % 10);
	return len;
}

/* Every slot empty: the next time of each bucket asks localtime_r. */
void cache_tz_reset(struct cache_tz *tz)
{
	for (int i = 0; i < CACHE_TZ_SLOTS; i++)
		tz->bucket[i] = INT64_MIN;
}

/* Floor division, for times before 1970. */
static int64_t format_floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Seconds east of UTC at ms, through the slot of its 15-minute bucket. */
int32_t cache_tz_offset(struct cache_tz *tz, int64_t ms)
{
	int64_t bucket = format_floordiv(ms, 900000);
	unsigned slot = (unsigned)((uint64_t)bucket % CACHE_TZ_SLOTS);
	struct tm tm;
	time_t t;

	if (tz->bucket[slot] == bucket)
		return tz->offset[slot];
	t = (time_t)(bucket * 900);
	if (!localtime_r(&t, &tm))
		tm.tm_gmtoff = 0;
	tz->bucket[slot] = bucket;
	tz->offset[slot] = (int32_t)tm.tm_gmtoff;
	return tz->offset[slot];
}

static char *format_2(char *o, unsigned v)
{
	o[0] = (char)('0' + v / 10 % 10);
	o[1] = (char)('0' + v % 10);
	return o + 2;
}

/*
 * "YYYY-MM-DDTHH:MM:SS.mmm" and "Z" (offset 0) or "+HH:MM"/"-HH:MM".
 * Years outside 0..9999 are clamped to four digits' worth of nonsense never
 * seen in flows; the output is always at most 29 bytes plus the NUL.
 */
size_t cache_time_text(struct cache_tz *tz, int64_t ms, char *out)
{
	int32_t off = cache_tz_offset(tz, ms);
	int64_t local = ms + (int64_t)off * 1000;
	int64_t days = format_floordiv(local, 86400000);
	int64_t msday = local - days * 86400000;
	char *o = out;

	/* days since 1970-01-01 to a civil date (proleptic Gregorian) */
	int64_t z = days + 719468;
	int64_t era = format_floordiv(z, 146097);
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	if (m <= 2)
		y++;
	if (y < 0)
		y = 0;
	if (y > 9999)
		y = 9999;

	o = format_2(o, (unsigned)(y / 100));
	o = format_2(o, (unsigned)(y % 100));
	*o++ = '-';
	o = format_2(o, m);
	*o++ = '-';
	o = format_2(o, d);
	*o++ = 'T';
	unsigned s = (unsigned)(msday / 1000);
	o = format_2(o, s / 3600);
	*o++ = ':';
	o = format_2(o, s / 60 % 60);
	*o++ = ':';
	o = format_2(o, s % 60);
	*o++ = '.';
	unsigned f = (unsigned)(msday % 1000);
	*o++ = (char)('0' + f / 100);
	o = format_2(o, f % 100);
	if (off == 0) {
		*o++ = 'Z';
	} else {
		unsigned a = (unsigned)(off < 0 ? -off : off) / 60;
		*o++ = off < 0 ? '-' : '+';
		o = format_2(o, a / 60);
		*o++ = ':';
		o = format_2(o, a % 60);
	}
	*o = '\0';
	return (size_t)(o - out);
}

/* Per-thread slots for the public entry, and the TZ they were filled under. */
static __thread struct cache_tz format_tz;
static __thread bool format_tz_valid;
static __thread bool format_tz_had;
static __thread char format_tz_name[256];

/*
 * The public entry: like cache_time_text, but safe for a caller that changes
 * TZ between calls (tests do): the slots are dropped, and tzset() called,
 * whenever getenv("TZ") differs from the last call's.  A TZ longer than 255
 * bytes is never cached.  Writes at most len bytes with a NUL (truncating);
 * returns the full length.
 */
int cache_time_format(int64_t ms, char *out, size_t len)
{
	const char *tzname_now = getenv("TZ");
	bool same = format_tz_valid &&
		    (tzname_now ? format_tz_had && strcmp(tzname_now, format_tz_name) == 0
				: !format_tz_had);
	char t[40];
	size_t n;

	if (!same) {
		tzset();
		cache_tz_reset(&format_tz);
		format_tz_had = tzname_now != NULL;
		format_tz_valid = !tzname_now || strlen(tzname_now) < sizeof(format_tz_name);
		if (tzname_now && format_tz_valid)
			strcpy(format_tz_name, tzname_now);
	}
	n = cache_time_text(&format_tz, ms, t);
	if (len > 0) {
		size_t k = n < len ? n : len - 1;
		memcpy(out, t, k);
		out[k] = '\0';
	}
	return (int)n;
}

/* See cache.h: glibc takes an unknown zone silently as UTC. */
bool cache_tz_valid(const char *tz)
{
	char path[512];

	if (!tz || !tz[0] || strlen(tz) > 200 || strstr(tz, ".."))
		return false;
	if (strcmp(tz, "UTC") == 0 || strcmp(tz, "Z") == 0)
		return true;
	if (tz[0] == ':')
		tz++;
	if (tz[0] == '/')
		return access(tz, R_OK) == 0;
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
	if (access(path, R_OK) == 0)
		return true;
	/* a POSIX rule: a name ("EST", "<+0530>") and an offset ("5", "-5:30") */
	const char *p = tz;
	if (*p == '<') {
		p = strchr(p, '>');
		if (!p)
			return false;
		p++;
	} else {
		int letters = 0;
		while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
			p++, letters++;
		if (letters < 3)
			return false;
	}
	if (*p == '+' || *p == '-')
		p++;
	return *p >= '0' && *p <= '9';
}

/*
 * glibc's mktime() resolves a wall time that occurs twice (the hour the
 * clocks go back) with the offset its previous call used, kept in a static,
 * so "2026-10-25T02:30" in Europe/Berlin is one instant or the other by
 * history.  Here: the offsets in use within 30 hours of the wall time (read
 * as UTC) are the candidates; a candidate whose instant shows exactly that
 * wall time is an occurrence, and the earliest occurrence wins.  With none
 * (the clocks skip the time), the time moves forward by the change, as
 * mktime does: the latest candidate.
 */
time_t cache_mktime(struct tm *tm)
{
	struct tm w = *tm, lt;
	time_t base, t, best = 0, skipped = 0;
	bool found = false, have_skipped = false;

	w.tm_isdst = 0;
	base = timegm(&w);
	for (int i = -2; i <= 2; i++) {
		time_t probe = base + (time_t)i * 15 * 3600;
		if (!localtime_r(&probe, &lt))
			continue;
		long off = lt.tm_gmtoff;
		t = base - off;
		if (!localtime_r(&t, &lt))
			continue;
		if (lt.tm_gmtoff == off) {
			if (!found || t < best)
				best = t;
			found = true;
		} else if (!have_skipped || t > skipped) {
			skipped = t;
			have_skipped = true;
		}
	}
	if (!found && !have_skipped)
		return (time_t)-1;
	t = found ? best : skipped;
	localtime_r(&t, tm);
	return t;
}
