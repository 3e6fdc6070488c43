/*
 * nfdump_tz.c - the zone of an nfdump archive's file names (issue 14).
 *
 * nfcapd and nfpcapd name a file for its slot in their own local time
 * (strftime of localtime(), docs/nfdump.md "File names and their time"), so
 * the driver must turn "nfcapd.202610250230" into UTC in the collector's
 * zone, which need not be the process's.  Changing TZ to read another
 * zone is global state (tzset), so a zone other than the process's is read
 * here from its TZif file (RFC 8536) under $TZDIR or /usr/share/zoneinfo:
 * the version 2+ (64-bit) block's transitions and local time types, and
 * the footer's POSIX TZ string for times after the last transition (a
 * "fat" Debian file lists transitions to 2037, a "slim" one only to the
 * last rule change).  Strict and bounded: the file at most 64 KiB,
 * NFD_TZ_TRANS_MAX transitions, 256 types, every count, index, offset and
 * order checked; a file with leap seconds ("right/") is refused, since
 * nfcapd's clock has none.
 *
 * Three kinds of zone share one question, "the UTC offset at UTC second
 * t" (tz_offset): a fixed offset (UTC, "+05:30"), a TZif file, and the
 * process's own zone (localtime_r's tm_gmtoff: files_tz not given).  The
 * inverse, a wall time to UTC, is built on it alone (nfd_tz_utc), so the
 * clock changes are treated alike for all three:
 *
 *   - a wall time the clocks pass twice (the repeated hour in autumn) has
 *     two UTC times; both are returned, the earlier first.  nfcapd names
 *     the second hour's files with the same names as the first's, and its
 *     rename appends to a file that exists (RenameAppend), so such a file
 *     holds both hours' records: the archive scan lists it for windows of
 *     either hour, and the records are selected by their own start times;
 *   - a wall time the clocks skip (spring) cannot be a name nfcapd made; it
 *     is read with the offset in force before the change (02:30 in
 *     Europe/Prague on its spring day is 01:30 UTC, 03:30 CEST), as
 *     mktime() does.
 */
#include "nfdump.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fetch.h"

#define TZ_FILE_MAX 65536		/* a TZif file (Europe/Prague: 2,301 bytes) */
#define TZ_TYPES_MAX 256		/* RFC 8536: typecnt is at most 256 */
#define TZ_UTOFF_MAX (26 * 3600)	/* |utoff|: RFC 8536 allows (-2^31, 2^31); real ones < 26 h */
#define TZ_FOOTER_MAX 128		/* the POSIX TZ string */
#define TZ_DIR_DEFAULT "/usr/share/zoneinfo"

/* One rule of a POSIX TZ string: when DST starts or ends. */
struct tz_rule {
	char kind;		/* 'M' (month.week.day), 'J' (1-365, no Feb 29), 'n' (0-365) */
	int m, w, d, n;
	int32_t secs;		/* local time of the change, -167 h to 167 h */
};

/* A POSIX TZ string (the footer): standard offset, and DST with its rules. */
struct tz_posix {
	int32_t std_off, dst_off;	/* local = UTC + off */
	bool dst;
	struct tz_rule start, end;
};

enum tz_kind { TZ_FIXED, TZ_PROCESS, TZ_FILE };

struct nfd_tz {
	enum tz_kind kind;
	int32_t fixed_off;		/* TZ_FIXED */
	size_t n;			/* TZ_FILE: transitions */
	int64_t *at;			/* n, ascending (UTC s) */
	uint8_t *idx;			/* n, the type from at[i] on */
	int32_t off[TZ_TYPES_MAX];	/* the types' utoff */
	size_t ntypes;
	bool footer;			/* a POSIX TZ string for t >= at[n - 1] */
	struct tz_posix posix;
	char name[64];
};

/* ---- calendar ---------------------------------------------------------------------- */

static bool leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_of(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The year of day number z (days since 1970-01-01). */
static int64_t year_of(int64_t z)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	return yoe + era * 400 + (mp >= 10);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The local second (days * 86400 + secs) of a rule's change in year y. */
static int64_t rule_local(const struct tz_rule *r, int64_t y)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int64_t day;

	if (r->kind == 'J') {
		day = days_of(y, 1, 1) + r->n - 1 + (leap(y) && r->n >= 60);
	} else if (r->kind == 'n') {
		day = days_of(y, 1, 1) + r->n;
	} else {
		int64_t first = days_of(y, r->m, 1);
		int wd = (int)((first % 7 + 7 + 4) % 7);	/* 1970-01-01 was a Thursday */
		int dom = 1 + (r->d - wd + 7) % 7 + (r->w - 1) * 7;
		int len = mdays[r->m - 1] + (r->m == 2 && leap(y));
		while (dom > len)
			dom -= 7;
		day = first + dom - 1;
	}
	return day * 86400 + r->secs;
}

/* The offset a POSIX TZ string gives at UTC second t. */
static int32_t posix_offset(const struct tz_posix *p, int64_t t)
{
	if (!p->dst)
		return p->std_off;
	int64_t y = year_of(floor_div(t + p->std_off, 86400));
	int64_t s = rule_local(&p->start, y) - p->std_off;	/* given in standard time */
	int64_t e = rule_local(&p->end, y) - p->dst_off;	/* given in daylight time */
	bool in = s < e ? (t >= s && t < e) : !(t >= e && t < s);
	return in ? p->dst_off : p->std_off;
}

/* ---- the POSIX TZ string -------------------------------------------------------- */

/* A zone abbreviation: [A-Za-z]{3,} or <[A-Za-z0-9+-]{3,}>; the text after. */
static const char *posix_name(const char *s)
{
	const char *b = s;

	if (*s == '<') {
		for (b = ++s; (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
			      (*s >= '0' && *s <= '9') || *s == '+' || *s == '-';
		     s++)
			;
		return *s == '>' && s - b >= 3 ? s + 1 : NULL;
	}
	while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
		s++;
	return s - b >= 3 ? s : NULL;
}

/* [+-]h[h[h]][:mm[:ss]] with hours at most hmax, into *v (seconds). */
static const char *posix_time(const char *s, int hmax, int32_t *v)
{
	int sign = 1, part[3] = {0, 0, 0};

	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	for (int i = 0; i < 3; i++) {
		int nd = 0;
		if (i && *s != ':')
			break;
		if (i)
			s++;
		while (*s >= '0' && *s <= '9' && nd < (i ? 2 : 3))
			part[i] = part[i] * 10 + (*s++ - '0'), nd++;
		if (nd == 0 || (i && (nd != 2 || part[i] > 59)))
			return NULL;
	}
	if (part[0] > hmax)
		return NULL;
	*v = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
	return s;
}

/* A decimal number lo..hi; the text after, NULL when there is none. */
static const char *posix_num(const char *s, int lo, int hi, int *v)
{
	int x = 0, nd = 0;

	while (*s >= '0' && *s <= '9' && nd < 4)
		x = x * 10 + (*s++ - '0'), nd++;
	if (nd == 0 || x < lo || x > hi)
		return NULL;
	*v = x;
	return s;
}

/* ",Mm.w.d[/time]", ",Jn[/time]" or ",n[/time]". */
static const char *posix_rule(const char *s, struct tz_rule *r)
{
	if (*s++ != ',')
		return NULL;
	r->secs = 7200;
	if (*s == 'M') {
		r->kind = 'M';
		s = posix_num(s + 1, 1, 12, &r->m);
		s = s && *s == '.' ? posix_num(s + 1, 1, 5, &r->w) : NULL;
		s = s && *s == '.' ? posix_num(s + 1, 0, 6, &r->d) : NULL;
	} else if (*s == 'J') {
		r->kind = 'J';
		s = posix_num(s + 1, 1, 365, &r->n);
	} else {
		r->kind = 'n';
		s = posix_num(s, 0, 365, &r->n);
	}
	if (s && *s == '/')
		s = posix_time(s + 1, 167, &r->secs);
	return s;
}

/* A POSIX TZ string as RFC 8536 3.3 allows it in a footer (DST needs its
 * rules); false for anything else. */
static bool posix_parse(const char *s, struct tz_posix *p)
{
	int32_t v;

	memset(p, 0, sizeof(*p));
	if (!(s = posix_name(s)) || !(s = posix_time(s, 24, &v)))
		return false;
	p->std_off = -v;	/* POSIX counts west of Greenwich */
	if (!*s)
		return true;
	if (!(s = posix_name(s)))
		return false;
	p->dst = true;
	p->dst_off = p->std_off + 3600;
	if (*s && *s != ',') {
		if (!(s = posix_time(s, 24, &v)))
			return false;
		p->dst_off = -v;
	}
	s = posix_rule(s, &p->start);
	s = s ? posix_rule(s, &p->end) : NULL;
	return s && !*s;
}

/* ---- the TZif file -------------------------------------------------------------- */

static int64_t be(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	if (n == 4)
		return (int32_t)(uint32_t)v;
	return (int64_t)v;
}

/* The six counts of a TZif header at p (44 bytes): isutcnt, isstdcnt,
 * leapcnt, timecnt, typecnt, charcnt. */
static void tzif_counts(const unsigned char *p, uint32_t c[6])
{
	for (int i = 0; i < 6; i++)
		c[i] = (uint32_t)be(p + 20 + 4 * i, 4);
}

/* The bytes of a TZif data block of those counts with time size ts. */
static size_t tzif_block(const uint32_t c[6], size_t ts)
{
	return c[3] * ts + c[3] + c[4] * 6 + c[5] + c[2] * (ts + 4) + c[1] + c[0];
}

/* Parse a TZif file's bytes (len at buf) into z; -EINVAL with the cause. */
static int tzif_parse(const unsigned char *buf, size_t len, struct nfd_tz *z, char *err)
{
	const char *why = NULL;
	const unsigned char *p, *end = buf + len;
	uint32_t c[6];
	size_t off;

	if (len < 44 || memcmp(buf, "TZif", 4) != 0) {
		why = "not a TZif file";
		goto bad;
	}
	if (buf[4] < '2' || buf[4] > '4') {
		why = "a version 1 TZif file (no 64-bit data)";
		goto bad;
	}
	tzif_counts(buf, c);
	if (c[3] > NFD_TZ_TRANS_MAX || c[4] > TZ_TYPES_MAX || c[5] > 4096 || c[2] > 4096 ||
	    c[0] > TZ_TYPES_MAX || c[1] > TZ_TYPES_MAX) {
		why = "its version 1 header's counts are out of range";
		goto bad;
	}
	off = 44 + tzif_block(c, 4);
	if (off + 44 > len || memcmp(buf + off, "TZif", 4) != 0 || buf[off + 4] != buf[4]) {
		why = "no version 2 header after the version 1 data";
		goto bad;
	}
	tzif_counts(buf + off, c);
	if (c[2] != 0) {
		why = "it has leap seconds (a right/ zone): nfcapd's clock has none";
		goto bad;
	}
	if (c[3] > NFD_TZ_TRANS_MAX || c[4] == 0 || c[4] > TZ_TYPES_MAX || c[5] == 0 ||
	    c[5] > 4096 || (c[0] != 0 && c[0] != c[4]) || (c[1] != 0 && c[1] != c[4])) {
		why = "its counts are out of range";
		goto bad;
	}
	p = buf + off + 44;
	if ((size_t)(end - p) < tzif_block(c, 8) + 2) {
		why = "it is cut short";
		goto bad;
	}
	z->n = c[3];
	z->ntypes = c[4];
	z->at = malloc(z->n ? z->n * sizeof(*z->at) : 1);
	z->idx = malloc(z->n ? z->n : 1);
	if (!z->at || !z->idx) {
		snprintf(err, FETCH_ERRLEN, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < z->n; i++, p += 8) {
		z->at[i] = be(p, 8);
		if (i && z->at[i] <= z->at[i - 1]) {
			why = "its transitions are not in ascending order";
			goto bad;
		}
	}
	for (size_t i = 0; i < z->n; i++, p++) {
		if (*p >= z->ntypes) {
			why = "a transition names a type it does not have";
			goto bad;
		}
		z->idx[i] = *p;
	}
	for (size_t i = 0; i < z->ntypes; i++, p += 6) {
		int64_t u = be(p, 4);
		if (u <= -TZ_UTOFF_MAX || u >= TZ_UTOFF_MAX || p[4] > 1 || p[5] >= c[5]) {
			why = "a local time type is out of range";
			goto bad;
		}
		z->off[i] = (int32_t)u;
	}
	p += c[5] + c[1] + c[0];	/* abbreviations, standard/wall and UT/local flags */
	for (size_t i = 0; i < c[1] + c[0]; i++)
		if (p[-1 - (ptrdiff_t)i] > 1) {
			why = "an indicator is not 0 or 1";
			goto bad;
		}
	/* the footer: "\n" POSIX-TZ "\n", and nothing after it */
	if (*p != '\n' || end[-1] != '\n' || (size_t)(end - p) - 2 > TZ_FOOTER_MAX ||
	    memchr(p + 1, '\n', (size_t)(end - p) - 2)) {
		why = "its footer is not one line of a TZ string";
		goto bad;
	}
	if (end - p > 2) {
		char tz[TZ_FOOTER_MAX + 1];
		memcpy(tz, p + 1, (size_t)(end - p) - 2);
		tz[end - p - 2] = '\0';
		if (!posix_parse(tz, &z->posix)) {
			why = "its footer's TZ string is not one this reader takes";
			goto bad;
		}
		z->footer = true;
	}
	return 0;
bad:
	snprintf(err, FETCH_ERRLEN, "files_tz '%.64s': its zone file %s", z->name, why);
	return -EINVAL;
}

/* Is name a zone's name: [A-Za-z0-9_+/-], not absolute, no empty, "." or
 * ".." part, no part starting with '-'? */
static bool zone_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= 64 || name[0] == '/' || name[n - 1] == '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '+' || ch == '-' || ch == '/'))
			return false;
		if (ch == '/' && name[i + 1] == '/')
			return false;
	}
	return strstr(name, "..") == NULL;
}

/* Read the zone file of z->name under $TZDIR (or /usr/share/zoneinfo). */
static int tzif_load(struct nfd_tz *z, char *err)
{
	const char *dir = getenv("TZDIR");
	unsigned char *buf = NULL;
	char path[4096 + 80];
	struct stat st;
	ssize_t got = 0, r;
	int fd, rc;

	if (!dir || !*dir)
		dir = TZ_DIR_DEFAULT;
	if (snprintf(path, sizeof(path), "%s/%s", dir, z->name) >= (int)sizeof(path)) {
		snprintf(err, FETCH_ERRLEN, "files_tz: the zone directory's path is too long");
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, FETCH_ERRLEN, "files_tz '%.64s' is not UTC, a fixed offset (+01:00) or "
			 "a zone of %.100s: %s", z->name, dir, strerror(-rc));
		return rc == -ENOENT || rc == -ENOTDIR ? -EINVAL : rc;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > TZ_FILE_MAX) {
		snprintf(err, FETCH_ERRLEN, "files_tz '%.64s': %.200s is not a zone file of at most "
			 "%d bytes", z->name, path, TZ_FILE_MAX);
		rc = -EINVAL;
		goto cleanup;
	}
	buf = malloc(TZ_FILE_MAX + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto cleanup;
	}
	while ((r = read(fd, buf + got, (size_t)(TZ_FILE_MAX + 1 - got))) > 0)
		got += r;
	if (r < 0 || got > TZ_FILE_MAX) {
		rc = r < 0 ? -errno : -EINVAL;
		snprintf(err, FETCH_ERRLEN, "files_tz '%.64s': cannot read %.200s: %s", z->name, path,
			 r < 0 ? strerror(-rc) : "longer than a zone file");
		goto cleanup;
	}
	rc = tzif_parse(buf, (size_t)got, z, err);
cleanup:
	free(buf);
	close(fd);
	return rc;
}

/* ---- the zone ---------------------------------------------------------------------- */

/* n decimal digits at s into *v; false when any is not a digit. */
static bool digits2(const char *s, int *v)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return false;
	*v = (s[0] - '0') * 10 + (s[1] - '0');
	return true;
}

int nfd_tz_open(const char *files_tz, struct nfd_tz **out, char *err)
{
	struct nfd_tz *z = calloc(1, sizeof(*z));
	int h, m, rc;

	*out = NULL;
	if (!z) {
		snprintf(err, FETCH_ERRLEN, "out of memory");
		return -ENOMEM;
	}
	if (!files_tz || !*files_tz) {
		z->kind = TZ_PROCESS;
		goto done;
	}
	z->kind = TZ_FIXED;
	snprintf(z->name, sizeof(z->name), "%.63s", files_tz);
	if (strcmp(files_tz, "UTC") == 0 || strcmp(files_tz, "Z") == 0)
		goto done;
	if ((files_tz[0] == '+' || files_tz[0] == '-') && strlen(files_tz) == 6 &&
	    files_tz[3] == ':' && digits2(files_tz + 1, &h) && digits2(files_tz + 4, &m) &&
	    h <= 14 && m <= 59) {
		z->fixed_off = (files_tz[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
		goto done;
	}
	if (!zone_name_ok(files_tz)) {
		snprintf(err, FETCH_ERRLEN, "files_tz '%.64s' is not UTC, a fixed offset (+01:00) "
			 "or a zone's name (Europe/Prague: letters, digits, _+-/, no '..')",
			 files_tz);
		rc = -EINVAL;
		goto fail;
	}
	z->kind = TZ_FILE;
	rc = tzif_load(z, err);
	if (rc)
		goto fail;
done:
	*out = z;
	return 0;
fail:
	nfd_tz_free(z);
	return rc;
}

void nfd_tz_free(struct nfd_tz *z)
{
	if (!z)
		return;
	free(z->at);
	free(z->idx);
	free(z);
}

int nfd_tz_offset(const struct nfd_tz *z, int64_t t, int32_t *off)
{
	size_t lo = 0, hi;

	if (z->kind == TZ_FIXED) {
		*off = z->fixed_off;
		return 0;
	}
	if (z->kind == TZ_PROCESS) {
		struct tm tm;
		time_t tt = (time_t)t;
		if ((int64_t)tt != t || !localtime_r(&tt, &tm))
			return -EOVERFLOW;
		*off = (int32_t)tm.tm_gmtoff;
		return 0;
	}
	if (z->n == 0 || t >= z->at[z->n - 1]) {
		if (z->footer) {
			*off = posix_offset(&z->posix, t);
			return 0;
		}
		if (z->n == 0) {
			*off = z->off[0];
			return 0;
		}
		return -ERANGE;	/* past the last transition, and no rule says what follows */
	}
	if (t < z->at[0]) {
		*off = z->off[0];	/* RFC 8536 3.2: type 0 before the first transition */
		return 0;
	}
	hi = z->n - 1;	/* at[lo] <= t < at[hi] */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (z->at[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	*off = z->off[z->idx[lo]];
	return 0;
}

int nfd_tz_wall(const struct nfd_tz *z, int64_t t, int64_t *wall)
{
	int32_t off;
	int rc = nfd_tz_offset(z, t, &off);

	if (rc == 0)
		*wall = t + off;
	return rc;
}

int nfd_tz_utc(const struct nfd_tz *z, int64_t wall, int64_t *first, int64_t *second,
	       enum nfd_tz_fold *fold)
{
	int64_t lo = INT64_MAX, hi = INT64_MIN, skip = INT64_MIN;
	int32_t seen[20];
	size_t nseen = 0;

	/* every offset in force within 27 hours of the wall time read as UTC
	 * (offsets are under 26 h), each tried: wall - off is a UTC time of
	 * the wall time when the offset there is off */
	for (int k = -9; k <= 9; k++) {
		int32_t off, back;
		bool dup = false;
		int rc = nfd_tz_offset(z, wall + (int64_t)k * 3 * 3600, &off);
		if (rc)
			return rc;
		for (size_t i = 0; i < nseen; i++)
			dup = dup || seen[i] == off;
		if (dup)
			continue;
		seen[nseen++] = off;
		rc = nfd_tz_offset(z, wall - off, &back);
		if (rc)
			return rc;
		if (back == off) {
			lo = wall - off < lo ? wall - off : lo;
			hi = wall - off > hi ? wall - off : hi;
		} else if (wall - off > skip) {
			skip = wall - off;
		}
	}
	if (lo == INT64_MAX) {	/* skipped by the clocks: the offset before the change */
		*first = *second = skip;
		*fold = NFD_TZ_SKIPPED;
	} else {
		*first = lo;
		*second = hi;
		*fold = lo == hi ? NFD_TZ_ONCE : NFD_TZ_TWICE;
	}
	return 0;
}

const char *nfd_tz_name(const struct nfd_tz *z)
{
	return z->kind == TZ_PROCESS ? NULL : z->name;
}

/* ---- detecting the zone: nfdump -I of the newest file ----------------------------- */

/* The number after "KEY: " at the start of a line of s, into *v. */
static bool stat_field(const char *s, size_t len, const char *key, int64_t *v)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i + kl < len; i++) {
		if ((i && s[i - 1] != '\n') || memcmp(s + i, key, kl) != 0)
			continue;
		size_t j = i + kl;
		int64_t x = 0;
		int nd = 0;
		while (j < len && s[j] == ' ')
			j++;
		while (j < len && s[j] >= '0' && s[j] <= '9' && nd < 18)
			x = x * 10 + (s[j++] - '0'), nd++;
		if (nd == 0 || (j < len && s[j] != '\n' && s[j] != '\r'))
			return false;
		*v = x;
		return true;
	}
	return false;
}

int nfd_stat_parse(const char *buf, size_t len, struct nfd_stat *st, char *err)
{
	memset(st, 0, sizeof(*st));
	if (!stat_field(buf, len, "Flows:", &st->flows) ||
	    !stat_field(buf, len, "First:", &st->first) ||
	    !stat_field(buf, len, "Last:", &st->last)) {
		snprintf(err, FETCH_ERRLEN, "nfdump -I printed no Flows:, First: and Last: lines");
		return -EBADMSG;
	}
	return 0;
}

/* The nearest multiple of 900 s (ties away from zero). */
static int32_t round15(int64_t s)
{
	int64_t q = (s >= 0 ? s + 450 : s - 450) / 900;
	return (int32_t)(q * 900);
}

enum nfd_tz_verdict nfd_tz_check(const struct nfd_tz *z, int64_t name_wall, int64_t interval_s,
				 const struct nfd_stat *st, int32_t *seen, int32_t *zone_off)
{
	int64_t first, second;
	enum nfd_tz_fold fold;

	*seen = 0;
	*zone_off = 0;
	if (nfd_tz_utc(z, name_wall, &first, &second, &fold) != 0)
		return NFD_TZ_INCONCLUSIVE;
	*zone_off = (int32_t)(name_wall - first);
	if (st->flows <= 0 || st->last <= 0 || st->first > st->last)
		return NFD_TZ_INCONCLUSIVE;
	/* the slot is [S, S + I) with S = name_wall - offset, and Last lies in
	 * [S - I, S + I]: d - I/2 is the offset within 450 s */
	*seen = round15(name_wall - st->last - interval_s / 2);
	if (*seen > 14 * 3600 || *seen < -14 * 3600)
		return NFD_TZ_INCONCLUSIVE;	/* replayed or copied data: its times say nothing */
	if (interval_s > 300) {
		/* a longer file (nfcapd -t 3600): Last in [S - I, S + I] allows
		 * more than one quarter hour, so seen is only a hint; the zone
		 * agrees when its offset is one that Last allows */
		int64_t d = name_wall - st->last, o1 = *zone_off, o2 = name_wall - second;
		if ((o1 >= d - interval_s && o1 <= d + interval_s) ||
		    (o2 >= d - interval_s && o2 <= d + interval_s))
			return NFD_TZ_AGREES;
		return NFD_TZ_DIFFERS;
	}
	if (*seen == *zone_off || *seen == (int32_t)(name_wall - second))
		return NFD_TZ_AGREES;
	return NFD_TZ_DIFFERS;
}

void nfd_tz_format(int32_t off, char *buf, size_t len)
{
	int32_t a = off < 0 ? -off : off;

	snprintf(buf, len, "%c%02d:%02d", off < 0 ? '-' : '+', (int)(a / 3600), (int)(a % 3600 / 60));
}
