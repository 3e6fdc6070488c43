/*
 * format.c - the text of single values: protocol names, TCP flags, numbers
 * and times.
 *
 * Times are the expensive part of a CSV row.  docs/design.md ("Measured
 * facts") has nfdump at 67,000-76,000 rows/s when glibc re-reads /etc/localtime on every
 * localtime() call, so nothing here calls localtime per value: the offset of
 * the process's zone is looked up once per 15-minute bucket (every offset in
 * use is a multiple of 15 minutes and changes on a 15-minute boundary) and
 * cached in a few slots, and the calendar fields are computed by hand
 * (Howard Hinnant's days-to-civil algorithm), digits written directly.
 *
 * The zone is the process's (TZ, set once by the front).  A renderer resets
 * its slots (and calls tzset) when it starts; cache_time_format(), the public
 * entry, keeps per-thread slots and resets them when TZ changes.
 *
 * The other way round, cache_when_parse() reads the dates and times people
 * type (folder names, --from/--to): its grammar is at its definition.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache_i.h"

/* Names as docs/design.md ("flows.csv") spells them; the numbers are IANA's. */
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
	int64_t days = format_floordiv(local, CACHE_DAY_MS);
	int64_t msday = local - days * CACHE_DAY_MS;
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

/*
 * ---- dates and times as people write them --------------------------------
 *
 * One grammar for a point in time, shared by flowfs's folder names and
 * flowfetch's --from/--to: yyyy-mm-dd, or that and a time of day
 * ('T' or a space, then h:mm, hh:mm:ss or hh:mm:ss.mmm), and for callers
 * that allow it a zone offset (Z, +hh:mm, -hh:mm).  Lenient only where the
 * meaning is certain: a month, day or hour of one digit ("2026-12-5" is the
 * 5th), a fraction of one to nine digits (zeros past the millisecond),
 * 24:00 for the end of a day.  A form whose meaning depends on the reader
 * (05-12-2026, 12/05/2026, a two-digit year) is refused, and so is a
 * fraction finer than a millisecond (flows are timed to the millisecond: it
 * would be rounded to a time that was not asked).  Every refusal has a
 * reason, a static phrase, that both fronts print.
 */

const char cache_when_forms[] = "yyyy-mm-dd or yyyy-mm-ddThh:mm[:ss[.mmm]]";

/* The digits at s (at most max of them): their count, and in *v the value
 * of the first nine (the callers' fields are shorter: more is refused). */
static size_t when_num(const char *s, size_t max, int *v)
{
	size_t n = 0;

	*v = 0;
	while (n < max && s[n] >= '0' && s[n] <= '9') {
		if (n < 9)
			*v = *v * 10 + (s[n] - '0');
		n++;
	}
	return n;
}

static int when_days_in(int y, int mo)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return mo == 2 && leap ? 29 : days[mo - 1];
}

/* A refusal: *why gets the phrase, the answer is -EINVAL. */
static int when_refuse(const char **why, const char *phrase)
{
	*why = phrase;
	return -EINVAL;
}

/* The date part of a text that did not start with four digits: why. */
static const char *when_bad_start(const char *s)
{
	int v;
	size_t n = when_num(s, 16, &v);

	if ((n == 1 || n == 2) && (s[n] == '-' || s[n] == '/' || s[n] == '.'))
		return "day and month (or a two-digit year) in an order that is not "
		       "certain: write the year first, yyyy-mm-dd";
	if (n == 8 && s[n] == '\0')
		return "a date is written with dashes, yyyy-mm-dd";
	if (n > 0 && s[n] == ':')
		return "a time needs its date: yyyy-mm-ddThh:mm";
	return "not a date or time";
}

int cache_when_parse(const char *s, size_t len, unsigned flags, struct cache_when *out,
		     const char **why)
{
	char buf[64];
	const char *p;
	int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = 0;
	bool has_off = false, is_date;
	struct tm tm;
	time_t t;

	if (len >= sizeof(buf))
		return when_refuse(why, "not a date or time (too long)");
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (strlen(buf) != len)
		return when_refuse(why, "not a date or time");
	p = buf;
	if (when_num(p, 5, &y) != 4 || p[4] != '-') {
		if (when_num(p, 5, &y) == 4 && (p[4] == '/' || p[4] == '.'))
			return when_refuse(why, "a date is written with dashes, yyyy-mm-dd");
		return when_refuse(why, when_bad_start(p));
	}
	p += 5;
	size_t n = when_num(p, 3, &mo);
	if (n < 1 || n > 2 || p[n] != '-')
		return when_refuse(why, "not a date: yyyy-mm-dd");
	p += n + 1;
	n = when_num(p, 3, &d);
	if (n < 1 || n > 2)
		return when_refuse(why, "not a date: yyyy-mm-dd");
	p += n;
	if (y < 1970)
		return when_refuse(why, "before 1970, where the collector's times begin");
	if (mo < 1 || mo > 12)
		return when_refuse(why, "no such month: months run from 1 to 12");
	if (d < 1 || d > when_days_in(y, mo))
		return when_refuse(why, "no such day: that month is shorter");
	is_date = *p == '\0';
	if (!is_date) {
		if (*p != 'T' && *p != ' ')
			return when_refuse(why, "not a date or time: yyyy-mm-dd, then T and a time");
		p++;
		n = when_num(p, 3, &h);
		if (n < 1 || n > 2 || p[n] != ':')
			return when_refuse(why, "not a time: hh:mm, hh:mm:ss or hh:mm:ss.mmm");
		p += n + 1;
		if (when_num(p, 3, &mi) != 2)
			return when_refuse(why, "minutes take two digits: hh:mm");
		p += 2;
		if (*p == ':') {
			if (when_num(p + 1, 3, &sec) != 2)
				return when_refuse(why, "seconds take two digits: hh:mm:ss");
			p += 3;
			if (*p == '.' || *p == ',') {
				int digits = 0;
				p++;
				for (; *p >= '0' && *p <= '9'; p++, digits++) {
					if (digits >= 9)
						return when_refuse(why, "not a time: a fraction of more "
									"than nine digits");
					if (digits < 3)
						frac = frac * 10 + (*p - '0');
					else if (*p != '0')
						return when_refuse(why, "finer than a millisecond, which "
									"flows are timed to");
				}
				if (digits == 0)
					return when_refuse(why, "not a time: a fraction needs digits");
				for (; digits < 3; digits++)
					frac *= 10;
			}
		}
		if (mi > 59 || sec > 59 || (h > 23 && !(h == 24 && mi == 0 && sec == 0 && frac == 0)))
			return when_refuse(why, "no such time of day: 00:00 to 23:59:59.999, or 24:00");
		if (*p == 'Z' || *p == '+' || *p == '-') {
			if (flags & CACHE_WHEN_LOCAL)
				return when_refuse(why, "no zone offset (Z, +hh:mm) here: the time is "
							"in the local zone");
			if (*p == 'Z') {
				p++;
			} else {
				int oh, om, sign = *p == '-' ? -1 : 1;
				if (when_num(p + 1, 3, &oh) != 2 || p[3] != ':' ||
				    when_num(p + 4, 3, &om) != 2 || oh > 23 || om > 59)
					return when_refuse(why, "not a zone offset: Z, +hh:mm or -hh:mm");
				off = sign * (oh * 60 + om);
				p += 6;
			}
			has_off = true;
		}
	}
	if (*p)
		return when_refuse(why, is_date ? "not a date: yyyy-mm-dd"
					       : "not a time: something follows it");
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	tm.tm_isdst = -1;
	t = has_off ? timegm(&tm) - (time_t)off * 60 : cache_mktime(&tm);
	if (t == (time_t)-1 || t < 0)
		return when_refuse(why, "before 1970, where the collector's times begin");
	out->ms = (int64_t)t * 1000 + frac;
	out->is_date = is_date;
	out->has_offset = has_off;
	*why = NULL;
	return 0;
}

/* See cache.h: the local spelling cache_when_parse reads back. */
void cache_when_name(int64_t ms, bool date_only, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	int frac = (int)(ms % 1000);
	struct tm tm;

	if (len == 0)
		return;
	if (!localtime_r(&t, &tm)) {
		buf[0] = '\0';
		return;
	}
	if (date_only)
		snprintf(buf, len, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	else if (frac)
		snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03d", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
	else if (tm.tm_sec)
		snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	else
		snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min);
}
