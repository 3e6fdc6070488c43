/*
 * nfdump.c - the nfdump dialect's core: the archive's files, the command,
 * the subprocess and the decoder (nfdump.h says what each promises;
 * docs/nfdump.md, "Decoding", why the output is -o json read line by line).
 */
#include "arr.h"
#include "nfdump.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fetch.h"

const char nfd_format[] = "json";

/* ---- time ------------------------------------------------------------------ */

int64_t nfd_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (no zone involved). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* n decimal digits at s into *v; false when any is not a digit. */
static bool digits(const char *s, int n, int *v)
{
	int x = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (s[i] - '0');
	}
	*v = x;
	return true;
}

/* Is y-m-d h:mi:s a real wall time (seconds 0 to 59)? */
static bool civil_ok(int y, int m, int d, int h, int mi, int s)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || h > 23 || mi > 59 || s > 59)
		return false;
	return d <= mdays[m - 1] + (m == 2 && is_leap(y));
}

/* ---- the archive's files --------------------------------------------------------- */

static const char *const layouts[NFD_LAYOUT_MAX + 1] = {
	"", "%Y/%m/%d", "%Y/%m/%d/%H", "%Y/%W/%u", "%Y/%W/%u/%H", "%Y/%j", "%Y/%j/%H", "%F", "%F/%H",
};

void nfd_files_free(struct nfd_files *f)
{
	free(f->v);
	f->v = NULL;
	f->n = 0;
}

/* A channel's name: [A-Za-z0-9_.-]+, not "." or "..". */
static bool channel_ok(const char *c)
{
	size_t n = strlen(c);

	if (n == 0 || n > 63 || strcmp(c, ".") == 0 || strcmp(c, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = c[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '.' || ch == '-'))
			return false;
	}
	return true;
}

int nfd_name_wall(const char *name, int64_t *wall)
{
	size_t n = strlen(name);
	int y, mo, d, h, mi, s = 0;

	if (strncmp(name, "nfcapd.", 7) != 0 || (n != 19 && n != 21))
		return -EINVAL;
	name += 7;
	if (!digits(name, 4, &y) || !digits(name + 4, 2, &mo) || !digits(name + 6, 2, &d) ||
	    !digits(name + 8, 2, &h) || !digits(name + 10, 2, &mi) ||
	    (n == 21 && !digits(name + 12, 2, &s)) || !civil_ok(y, mo, d, h, mi, s))
		return -EINVAL;
	*wall = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s;
	return 0;
}

/* The time a file name nfcapd.YYYYmmddHHMM[SS] stands for, read in z
 * (ms; *again: the later time of a name in the repeated hour, else *ms);
 * false for any other name or a time the zone cannot convert. */
static bool file_time(const char *name, const struct nfd_tz *z, int64_t *ms, int64_t *again)
{
	int64_t wall, t, t2;
	enum nfd_tz_fold fold;

	if (nfd_name_wall(name, &wall) != 0 || nfd_tz_utc(z, wall, &t, &t2, &fold) != 0)
		return false;
	*ms = t * 1000;
	*again = t2 * 1000;
	return true;
}

int nfd_name_time(const char *name, const char *files_tz, int64_t *ms, char *err)
{
	struct nfd_tz *z;
	int64_t again;
	int rc = nfd_tz_open(files_tz, &z, err);

	if (rc)
		return rc;
	if (name && !file_time(name, z, ms, &again)) {
		snprintf(err, FETCH_ERRLEN, "'%.64s' is not an nfcapd file's name", name);
		rc = -EINVAL;
	}
	nfd_tz_free(z);
	return rc;
}

/* Append a file to out (cap: its room), -E2BIG past NFD_FILES_MAX. */
static int files_add(struct nfd_files *out, size_t *cap, int64_t ms, const char *sub,
		     const char *name, char *err)
{
	struct nfd_file *f;
	int w;

	if (out->n >= NFD_FILES_MAX) {
		snprintf(err, FETCH_ERRLEN, "more than %d archive files for one window",
			 NFD_FILES_MAX);
		return -E2BIG;
	}
	if (arr_grow(&out->v, cap, out->n + 1, sizeof(*out->v)))
		return -ENOMEM;
	f = &out->v[out->n];
	f->ms = ms;
	w = snprintf(f->rel, sizeof(f->rel), "%s%s%s", sub, *sub ? "/" : "", name);
	if (w < 0 || (size_t)w >= sizeof(f->rel)) {
		snprintf(err, FETCH_ERRLEN, "archive path '%.40s/%.40s' too long", sub, name);
		return -E2BIG;
	}
	out->n++;
	return 0;
}

/* Where list_dir files the names of one directory. */
struct dir_take {
	const struct nfd_tz *z;
	int64_t lo, hi;
	const char *sub;
	struct nfd_files *out;
	size_t *cap;
	char *err;
};

/* One name of a directory: appended when it is a file of [lo, hi). */
static int take_name(void *arg, const char *name)
{
	struct dir_take *t = arg;
	int64_t ms, again;

	/* a name of the repeated hour holds the records of both its hours
	 * (nfcapd appends to a file that exists): taken for either */
	if (!file_time(name, t->z, &ms, &again))
		return 0;
	if (ms < t->lo || ms >= t->hi)
		ms = again;
	if (ms < t->lo || ms >= t->hi)
		return 0;
	return files_add(t->out, t->cap, ms, t->sub, name, t->err);
}

/* The local file system as a source of listings (src NULL). */
static int local_list(const char *path, int (*take)(void *arg, const char *name), void *arg)
{
	DIR *dir = opendir(path);
	struct dirent *e;
	int rc = 0;

	if (!dir)
		return -errno;
	while ((e = readdir(dir)) && rc == 0)
		rc = take(arg, e->d_name);
	closedir(dir);
	return rc;
}

/* The files of one directory (base/sub) whose time is in [lo, hi), appended,
 * read through src (NULL: opendir).  A missing directory adds nothing. */
static int list_dir(const struct nfd_dirsrc *src, const char *base, const char *sub,
		    const struct nfd_tz *z, int64_t lo, int64_t hi, struct nfd_files *out,
		    size_t *cap, char *err)
{
	struct dir_take t = {z, lo, hi, sub, out, cap, err};
	char path[PATH_MAX];
	int rc, w;

	w = snprintf(path, sizeof(path), "%s%s%s", base, *sub ? "/" : "", sub);
	if (w < 0 || (size_t)w >= sizeof(path)) {
		snprintf(err, FETCH_ERRLEN, "archive path '%.60s...' too long", base);
		return -E2BIG;
	}
	err[0] = '\0';
	rc = src ? src->list(src->ctx, path, take_name, &t, err) : local_list(path, take_name, &t);
	if (rc == -ENOENT && *sub)
		return 0;
	if (rc && !err[0])
		snprintf(err, FETCH_ERRLEN, "cannot read the archive's directory %.200s: %s", path,
			 strerror(-rc));
	return rc;
}

static int file_cmp(const void *a, const void *b)
{
	const struct nfd_file *x = a, *y = b;
	if (x->ms != y->ms)
		return x->ms < y->ms ? -1 : 1;
	return strcmp(x->rel, y->rel);
}

/*
 * The directories of the layout that hold the files of wall times
 * [wlo, whi] (one per day, or per hour for the %H layouts), each read for
 * the files whose time is in [lo, hi) under base.
 */
static int list_layout(const struct nfd_dirsrc *src, const char *base, int layout, const struct nfd_tz *z, int64_t wlo,
		       int64_t whi, int64_t lo, int64_t hi, struct nfd_files *out, size_t *cap,
		       char *err)
{
	const char *fmt = layouts[layout];
	int64_t step = strstr(fmt, "%H") ? 3600 : 86400;
	char sub[64], prev[64] = "";
	int rc;

	if (!*fmt)
		return list_dir(src, base, "", z, lo, hi, out, cap, err);
	for (int64_t w = wlo - (wlo % step + step) % step; w <= whi; w += step) {
		struct tm tm;
		time_t t = (time_t)w;
		if (!gmtime_r(&t, &tm) || strftime(sub, sizeof(sub), fmt, &tm) == 0)
			return -EOVERFLOW;
		if (strcmp(sub, prev) == 0)
			continue;
		memcpy(prev, sub, sizeof(prev));
		rc = list_dir(src, base, sub, z, lo, hi, out, cap, err);
		if (rc)
			return rc;
	}
	return 0;
}

int nfd_archive_files(const struct nfd_archive *a, int64_t start, int64_t end,
		      struct nfd_files *out, char *err)
{
	return nfd_archive_scan(a, start, end, NULL, out, err);
}

int nfd_archive_scan(const struct nfd_archive *a, int64_t start, int64_t end,
		     const struct nfd_dirsrc *src, struct nfd_files *out, char *err)
{
	int64_t interval = a->interval_ms > 0 ? a->interval_ms : NFD_INTERVAL_MS;
	int64_t bound = a->bound_ms > 0 ? a->bound_ms : NFD_ACTIVE_MS + interval;
	int64_t lo, hi, wlo, whi;
	struct nfd_tz *z = NULL;
	size_t cap = 0, k = 0;
	int rc;

	out->v = NULL;
	out->n = 0;
	if (a->layout < 0 || a->layout > NFD_LAYOUT_MAX || a->nchannels > NFD_CHANNELS_MAX ||
	    start < 0 || end <= start || end > INT64_MAX / 4) {
		snprintf(err, FETCH_ERRLEN, "bad archive listing: layout %d, %zu channels, range "
			 "[%lld, %lld)", a->layout, a->nchannels, (long long)start, (long long)end);
		return -EINVAL;
	}
	rc = nfd_tz_open(a->files_tz, &z, err);
	if (rc)
		return rc;
	/* a file named T holds what was received in [T, T + interval) */
	lo = start - interval + 1 > 0 ? start - interval + 1 : 0;
	hi = end + bound;
	/* the wall times of those names (an hour wider each side for a clock
	 * change), whose directories are read */
	if (nfd_tz_wall(z, lo / 1000, &wlo) != 0 || nfd_tz_wall(z, hi / 1000 + 1, &whi) != 0) {
		snprintf(err, FETCH_ERRLEN, "the window's time is out of range of files_tz '%.64s' "
			 "(past its zone file's last transition)", a->files_tz);
		rc = -EINVAL;
		goto cleanup;
	}
	wlo -= 3600;
	whi += 3600;
	if (a->nchannels == 0) {
		rc = list_layout(src, a->root, a->layout, z, wlo, whi, lo, hi, out, &cap, err);
	} else {
		for (size_t i = 0; i < a->nchannels && rc == 0; i++) {
			char base[PATH_MAX];
			size_t from = out->n;
			int w;
			if (!channel_ok(a->channels[i])) {
				snprintf(err, FETCH_ERRLEN, "'%.64s' is not an nfsen channel's name",
					 a->channels[i]);
				rc = -EINVAL;
				break;
			}
			w = snprintf(base, sizeof(base), "%s/%s", a->root, a->channels[i]);
			if (w < 0 || (size_t)w >= sizeof(base)) {
				snprintf(err, FETCH_ERRLEN, "archive path too long");
				rc = -E2BIG;
				break;
			}
			rc = list_layout(src, base, a->layout, z, wlo, whi, lo, hi, out, &cap, err);
			for (size_t f = from; f < out->n; f++)
				out->v[f].chans = 1u << i;
		}
	}
	if (rc)
		goto cleanup;
	nfd_tz_free(z);
	if (out->n == 0)
		return 0;
	qsort(out->v, out->n, sizeof(out->v[0]), file_cmp);
	for (size_t i = 0; i < out->n; i++)	/* a file in several channels: once */
		if (k == 0 || strcmp(out->v[k - 1].rel, out->v[i].rel) != 0)
			out->v[k++] = out->v[i];
		else
			out->v[k - 1].chans |= out->v[i].chans;
	out->n = k;
	return 0;
cleanup:
	nfd_tz_free(z);
	nfd_files_free(out);
	return rc;
}

/* ---- the command ------------------------------------------------------------------- */

/* "host A", "net P/len" or "any" for one prefix, into buf; with dir
 * ("src ", "dst ") before it unless "any". */
static void filter_term(const struct cache_prefix *p, const char *dir, char *buf, size_t len)
{
	char text[48];	/* an IPv6 prefix: 43 and the NUL */

	if (p->len == 0 || (p->v4 && p->len == 96)) {
		snprintf(buf, len, "any");
		return;
	}
	cache_prefix_format(p, text, sizeof(text));
	snprintf(buf, len, "%s%s %s", dir, p->len == 128 ? "host" : "net", text);
}

int nfd_argv(const char *prog, const struct nfd_archive *a, const struct nfd_files *files,
	     size_t chan, const struct cache_query *q, struct nfd_cmd *out, char *err)
{
	char subj[64], ssrc[64], sdst[64], psrc[64], pdst[64];
	size_t used, rl, first = 0, last = 0;
	int w, i = 0;

	memset(out, 0, sizeof(*out));
	if (!files || files->n == 0) {
		snprintf(err, FETCH_ERRLEN, "no archive file can hold flows of this window");
		return -ENOENT;
	}
	if (!prog)
		prog = "nfdump";
	rl = strlen(a->root);
	while (rl > 1 && a->root[rl - 1] == '/')
		rl--;
	if (rl == 0 || memchr(a->root, ':', rl) || a->nchannels > NFD_CHANNELS_MAX) {
		snprintf(err, FETCH_ERRLEN, "the archive's path '%.200s' is empty or holds a ':' "
			 "(nfdump's -M separator)", a->root);
		return -EINVAL;
	}
	if (strlen(prog) >= sizeof(out->prog) || rl >= 4096) {
		snprintf(err, FETCH_ERRLEN, "the nfdump program's or the archive's path is too long");
		return -E2BIG;
	}
	strcpy(out->prog, prog);
	memcpy(out->mdirs, a->root, rl);
	used = rl;
	out->mdirs[used] = '\0';
	last = files->n - 1;
	if (a->nchannels > 0) {
		uint32_t bit = chan < 32 ? 1u << chan : 0;
		if (chan >= a->nchannels || !channel_ok(a->channels[chan])) {
			snprintf(err, FETCH_ERRLEN, "'%.64s' is not an nfsen channel's name",
				 chan < a->nchannels ? a->channels[chan] : "(none)");
			return -EINVAL;
		}
		for (first = 0; first < files->n && !(files->v[first].chans & bit); first++)
			;
		for (last = files->n; last > first && !(files->v[last - 1].chans & bit); last--)
			;
		if (first == files->n) {
			snprintf(err, FETCH_ERRLEN, "channel %.64s holds no file of this window",
				 a->channels[chan]);
			return -ENOENT;
		}
		last--;
		used += (size_t)snprintf(out->mdirs + used, sizeof(out->mdirs) - used, "/%s",
					 a->channels[chan]);
	}
	w = snprintf(out->range, sizeof(out->range), "%s:%s", files->v[first].rel,
		     files->v[last].rel);
	if (w < 0 || (size_t)w >= sizeof(out->range)) {
		snprintf(err, FETCH_ERRLEN, "archive file paths too long");
		return -E2BIG;
	}
	filter_term(&q->subject, "", subj, sizeof(subj));
	if (q->has_peer) {
		/* the peer on the other side: "(S) and (P)" would also take a
		 * flow whose subject's side is in P (a peer prefix that holds
		 * the subject, as a peer split's may) */
		filter_term(&q->subject, "src ", ssrc, sizeof(ssrc));
		filter_term(&q->subject, "dst ", sdst, sizeof(sdst));
		filter_term(&q->peer, "src ", psrc, sizeof(psrc));
		filter_term(&q->peer, "dst ", pdst, sizeof(pdst));
		snprintf(out->filter, sizeof(out->filter), "(%s and %s) or (%s and %s)", ssrc, pdst,
			 sdst, psrc);
	} else {
		snprintf(out->filter, sizeof(out->filter), "%s", subj);
	}
	out->argv[i++] = out->prog;
	out->argv[i++] = (char *)"-C";
	out->argv[i++] = (char *)"none";	/* no nfdump.conf: the output is ours */
	out->argv[i++] = (char *)"-q";
	out->argv[i++] = (char *)"-o";
	out->argv[i++] = (char *)nfd_format;
	out->argv[i++] = (char *)"-M";
	out->argv[i++] = out->mdirs;
	out->argv[i++] = (char *)"-R";
	out->argv[i++] = out->range;
	out->argv[i++] = out->filter;
	out->argv[i] = NULL;
	out->envp[0] = (char *)"TZ=UTC";
	out->envp[1] = (char *)"LC_ALL=C";
	out->envp[2] = (char *)"PATH=/usr/local/bin:/usr/bin:/bin";
	out->envp[3] = NULL;
	return 0;
}

/* ---- the subprocess ------------------------------------------------------------------ */

void nfd_buf_free(struct nfd_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

int nfd_buf_reserve(struct nfd_buf *b, size_t n)
{
	if (b->len + n + 1 <= b->cap)
		return 0;
	size_t nc = b->cap ? b->cap : 65536;
	while (nc < b->len + n + 1)
		nc *= 2;
	char *p = realloc(b->p, nc);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = nc;
	return 0;
}

/* What an exit status of nfdump 1.7.1 means (its nfdump.c). */
const char *nfd_exit_meaning(int st)
{
	switch (st) {
	case 1: return "an option or file was refused";
	case 250: return "the archive's files could not be listed or memory ran out";
	case 254: case 255: return "the filter was refused";
	default: return "failed";
	}
}

/* Signal the child's group, wait up to NFD_GRACE_MS, then SIGKILL it, and
 * reap the child. */
static void kill_reap(pid_t pid)
{
	int64_t until = nfd_mono_ms() + NFD_GRACE_MS;
	int st;

	kill(-pid, SIGTERM);
	while (nfd_mono_ms() < until) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			goto gone;
		poll(NULL, 0, 10);
	}
	kill(-pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
gone:
	kill(-pid, SIGKILL);	/* what the child left in its group */
}

/* Start argv with stdout and stderr on the write ends of po and pe. */
static int spawn(char *const argv[], char *const envp[], int po, int pe, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	int rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&dfl);
	for (int s = 1; s < 32; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaddset(&dfl, s);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, po, 1);
	posix_spawn_file_actions_adddup2(&fa, pe, 2);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
					      POSIX_SPAWN_SETPGROUP);
	rc = strchr(argv[0], '/') ? posix_spawn(pid, argv[0], &fa, &at, argv, envp)
				  : posix_spawnp(pid, argv[0], &fa, &at, argv, envp);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return -rc;
}

const struct nfd_runner nfd_nfdump_runner = {"nfdump", nfd_exit_meaning};

int nfd_run(char *const argv[], char *const envp[], int64_t deadline_ms,
	    const atomic_int *cancel, size_t limit, struct nfd_buf *out, char *err)
{
	return nfd_run_as(&nfd_nfdump_runner, argv, envp, deadline_ms, cancel, limit, out, err);
}

int nfd_buf_take(void *arg, const char *p, size_t n, char *err)
{
	struct nfd_buf_sink *b = arg;
	struct nfd_buf *out = b->out;

	if (out->len - b->start_len + n > b->limit) {
		snprintf(err, FETCH_ERRLEN, "%s printed more than %zu bytes", b->who->name,
			 b->limit);
		return -E2BIG;
	}
	if (nfd_buf_reserve(out, n)) {
		snprintf(err, FETCH_ERRLEN, "no memory for %s's output", b->who->name);
		return -ENOMEM;
	}
	memcpy(out->p + out->len, p, n);
	out->len += n;
	out->p[out->len] = '\0';
	return 0;
}

int nfd_run_as(const struct nfd_runner *who, char *const argv[], char *const envp[],
	       int64_t deadline_ms, const atomic_int *cancel, size_t limit, struct nfd_buf *out,
	       char *err)
{
	struct nfd_buf_sink b = {who, out, limit, out->len};

	return nfd_run_sink(who, argv, envp, deadline_ms, cancel, nfd_buf_take, &b, err);
}

int nfd_run_sink(const struct nfd_runner *who, char *const argv[], char *const envp[],
		 int64_t deadline_ms, const atomic_int *cancel, nfd_sink_fn sink, void *arg,
		 char *err)
{
	int po[2] = {-1, -1}, pe[2] = {-1, -1};
	char ebuf[NFD_STDERR_MAX + 1], chunk[65536], shown[FETCH_ERRLEN];
	size_t elen = 0;
	pid_t pid = -1;
	int rc = 0, st = 0;
	bool exited = false;

	if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
		rc = -errno;
		snprintf(err, FETCH_ERRLEN, "pipe: %s", strerror(-rc));
		goto cleanup;
	}
	rc = spawn(argv, envp, po[1], pe[1], &pid);
	if (rc) {
		snprintf(err, FETCH_ERRLEN, "cannot run %.200s: %s", argv[0], strerror(-rc));
		if (rc != -ENOMEM)
			rc = -ENOENT;
		goto cleanup;
	}
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	fcntl(po[0], F_SETFL, O_NONBLOCK);
	fcntl(pe[0], F_SETFL, O_NONBLOCK);
	while (po[0] >= 0 || pe[0] >= 0 || !exited) {
		struct pollfd pf[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
		int64_t now = nfd_mono_ms();
		int wait = 50;
		if (cancel && atomic_load(cancel)) {
			rc = -ECANCELED;
			snprintf(err, FETCH_ERRLEN, "%s interrupted", who->name);
			goto kill;
		}
		if (deadline_ms > 0 && now >= deadline_ms) {
			rc = -ETIMEDOUT;
			snprintf(err, FETCH_ERRLEN, "%s did not finish before its deadline", who->name);
			goto kill;
		}
		if (deadline_ms > 0 && deadline_ms - now < wait)
			wait = (int)(deadline_ms - now);
		if (!exited) {
			pid_t r = waitpid(pid, &st, WNOHANG);
			if (r == pid)
				exited = true;
			else if (po[0] < 0 && pe[0] < 0)
				poll(NULL, 0, wait < 10 ? wait : 10);
		}
		if (po[0] < 0 && pe[0] < 0)
			continue;
		if (poll(pf, 2, wait) < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			snprintf(err, FETCH_ERRLEN, "poll: %s", strerror(-rc));
			goto kill;
		}
		for (int k = 0; k < 2; k++) {
			int *fd = k == 0 ? &po[0] : &pe[0];
			if (*fd < 0 || !(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(*fd, chunk, sizeof(chunk));
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				close(*fd);
				*fd = -1;
				continue;
			}
			if (k == 1) {
				size_t keep = (size_t)n < NFD_STDERR_MAX - elen ? (size_t)n
									: NFD_STDERR_MAX - elen;
				memcpy(ebuf + elen, chunk, keep);
				elen += keep;
				continue;
			}
			rc = sink(arg, chunk, (size_t)n, err);
			if (rc)
				goto kill;
		}
	}
	while (elen > 0 && (ebuf[elen - 1] == '\n' || ebuf[elen - 1] == '\r'))
		elen--;
	cache_text_escape(shown, sizeof(shown) - 120, ebuf, elen);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		rc = 0;
	} else if (WIFEXITED(st)) {
		rc = -EIO;
		snprintf(err, FETCH_ERRLEN, "%s exited with status %d (%s)%s%.300s", who->name,
			 WEXITSTATUS(st), who->meaning(WEXITSTATUS(st)), elen ? ": " : "", shown);
	} else {
		rc = -EIO;
		snprintf(err, FETCH_ERRLEN, "%s was killed by signal %d%s%.300s", who->name,
			 WIFSIGNALED(st) ? WTERMSIG(st) : 0, elen ? ": " : "", shown);
	}
	goto cleanup;
kill:
	if (exited)
		kill(-pid, SIGKILL);	/* what it left in its group holds the pipes */
	else
		kill_reap(pid);
cleanup:
	for (int k = 0; k < 2; k++) {
		if (po[k] >= 0)
			close(po[k]);
		if (pe[k] >= 0)
			close(pe[k]);
	}
	return rc;
}

/* ---- the decoder ----------------------------------------------------------------------- */

void nfd_out_free(struct nfd_out *o)
{
	free(o->recs);
	memset(o, 0, sizeof(*o));
}

#define NFD_EXTRA_MAX 48	/* members of extra considered per record */
#define NFD_VALUE_MAX 96	/* a member's JSON text */

/* A member for extra: its priority (0 first: dropped last), key and JSON
 * value. */
struct member {
	int prio;
	uint8_t klen, vlen;
	char key[32];
	char val[NFD_VALUE_MAX];
};

/* One record being read. */
struct rec {
	struct flow_rec f;
	unsigned seen;			/* FIELD_ bits */
	int sampled;
	char router[48];
	int64_t received_ms;		/* "received", when has_received */
	bool has_received;
	struct member m[NFD_EXTRA_MAX];
	size_t nm;
	char why[128];
};

enum {
	FIELD_FIRST = 1u << 0, FIELD_LAST = 1u << 1, FIELD_PROTO = 1u << 2, FIELD_SRC = 1u << 3,
	FIELD_DST = 1u << 4, FIELD_PKTS = 1u << 5, FIELD_BYTES = 1u << 6, FIELD_SPORT = 1u << 7,
	FIELD_DPORT = 1u << 8, FIELD_FLAGS = 1u << 9, FIELD_ITYPE = 1u << 10,
	FIELD_ICODE = 1u << 11, FIELD_INIF = 1u << 12, FIELD_OUTIF = 1u << 13,
	FIELD_SAS = 1u << 14, FIELD_DAS = 1u << 15, FIELD_SYSID = 1u << 16,
	FIELD_SAMPLED = 1u << 17, FIELD_TYPE = 1u << 18,
};
#define FIELD_NEEDED (FIELD_FIRST | FIELD_LAST | FIELD_PROTO | FIELD_SRC | FIELD_DST | \
		      FIELD_PKTS | FIELD_BYTES)

/* A plain decimal (1 to 20 digits, no sign) in [0, max]. */
static bool dec(const char *v, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t x = 0;

	if (n == 0 || n > 20)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		unsigned d = (unsigned)(v[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return false;
		x = x * 10 + d;
	}
	if (x > max)
		return false;
	*out = x;
	return true;
}

/* "yyyy-mm-ddThh:mm:ss.mmm" (UTC: nfdump runs with TZ=UTC) to ms. */
static bool iso_ms(const char *v, size_t n, int64_t *ms)
{
	int y, mo, d, h, mi, s, f;

	if (n != 23 || v[4] != '-' || v[7] != '-' || v[10] != 'T' || v[13] != ':' ||
	    v[16] != ':' || v[19] != '.')
		return false;
	if (!digits(v, 4, &y) || !digits(v + 5, 2, &mo) || !digits(v + 8, 2, &d) ||
	    !digits(v + 11, 2, &h) || !digits(v + 14, 2, &mi) || !digits(v + 17, 2, &s) ||
	    !digits(v + 20, 3, &f) || !civil_ok(y, mo, d, h, mi, s))
		return false;
	*ms = (days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s) *
		      1000 + f;
	return true;
}

/* nfdump's 8 flag characters (CWR ECE URG ACK PSH RST SYN FIN, '.' unset). */
static bool flags_parse(const char *v, size_t n, int32_t *out)
{
	static const char names[] = "CEUAPRSF";
	int32_t x = 0;

	if (n != 8)
		return false;
	for (int i = 0; i < 8; i++) {
		if (v[i] == names[i])
			x |= 1 << (7 - i);
		else if (v[i] != '.')
			return false;
	}
	*out = x;
	return true;
}

/* An address string to the 16-byte form (IPv4 mapped); v6 says which
 * family the key announced. */
static bool addr_parse(const char *v, size_t n, bool v6, uint8_t out[16])
{
	char text[64];

	if (n == 0 || n >= sizeof(text))
		return false;
	memcpy(text, v, n);
	text[n] = '\0';
	if (v6)
		return inet_pton(AF_INET6, text, out) == 1;
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	return inet_pton(AF_INET, text, out + 12) == 1;
}

/* Add a member to r's extra candidates: value v (n bytes) as a JSON string
 * (escaped) or, when num, as it is. */
static void member_add(struct rec *r, int prio, const char *key, size_t kl, const char *v,
		       size_t n, bool num)
{
	struct member *m;
	size_t o = 0;

	if (r->nm == NFD_EXTRA_MAX || kl >= sizeof(m->key))
		return;
	m = &r->m[r->nm];
	memcpy(m->key, key, kl);
	m->key[kl] = '\0';
	m->klen = (uint8_t)kl;
	m->prio = prio;
	if (num) {
		if (n >= sizeof(m->val))
			return;
		memcpy(m->val, v, n);
		m->val[n] = '\0';
		m->vlen = (uint8_t)n;
		r->nm++;
		return;
	}
	m->val[o++] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (o + 8 >= sizeof(m->val))
			return;		/* too long for extra: left out */
		if (c == '"' || c == '\\') {
			m->val[o++] = '\\';
			m->val[o++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			o += (size_t)snprintf(m->val + o, sizeof(m->val) - o, "\\u%04x", c);
		} else {
			m->val[o++] = (char)c;
		}
	}
	m->val[o++] = '"';
	m->val[o] = '\0';
	m->vlen = (uint8_t)o;
	r->nm++;
}

/* Is v (n bytes) one of nfdump's "nothing" values: 0, 0.0.0.0, ::, a MAC
 * of zeros, an MPLS label 0-0-0, 0.000000, "<none>" or ""? */
static bool nothing(const char *v, size_t n)
{
	static const char *const zeros[] = {"0", "0.0.0.0", "::", "00:00:00:00:00:00", "0-0-0",
					    "0.000000", "<none>", ""};
	for (size_t i = 0; i < sizeof(zeros) / sizeof(zeros[0]); i++)
		if (strlen(zeros[i]) == n && memcmp(v, zeros[i], n) == 0)
			return true;
	return false;
}

/* Fields whose value goes to extra under a shorter key, by priority. */
static const struct {
	const char *key, *as;
	int prio;
} extras[] = {
	{"received", "received", 0}, {"out_packets", "out_packets", 0},
	{"out_bytes", "out_bytes", 0}, {"aggr_flows", "aggr_flows", 1},
	{"src_tos", "src_tos", 1}, {"dst_tos", "dst_tos", 2},
	{"src_mask", "src_mask", 2}, {"dst_mask", "dst_mask", 2},
	{"src_net", "src_net", 3}, {"dst_net", "dst_net", 3},
	{"fwd_status", "fwd_status", 2}, {"direction", "direction", 2},
	{"src_vlan", "src_vlan", 1}, {"dst_vlan", "dst_vlan", 1},
	{"next_as", "next_as", 2}, {"prev_as", "prev_as", 2},
	{"bgp4_next_hop", "bgp_next_hop", 2}, {"bgp6_next_hop", "bgp_next_hop", 2},
	{"ip4_next_hop", "next_hop", 1}, {"ip6_next_hop", "next_hop", 1},
	{"cli_latency", "cli_latency", 2}, {"srv_latency", "srv_latency", 2},
	{"app_latency", "app_latency", 2}, {"label", "label", 1}, {"ja3", "ja3", 2},
};

/* One field line's key and value into r; false with r->why on a fault. */
static bool field(struct rec *r, const char *k, size_t kl, const char *v, size_t vl, bool str)
{
	struct flow_rec *f = &r->f;
	uint64_t x;
	unsigned bit = 0;

#define KEY(s) (kl == sizeof(s) - 1 && memcmp(k, s, kl) == 0)
#define NUM(lim) (!str && dec(v, vl, (lim), &x))
	if (KEY("first") || KEY("last")) {
		bit = k[0] == 'f' ? FIELD_FIRST : FIELD_LAST;
		if (!str || !iso_ms(v, vl, k[0] == 'f' ? &f->start_ms : &f->end_ms))
			goto bad;
	} else if (KEY("received")) {
		int64_t ms;
		char iso[32];
		if (!str || !iso_ms(v, vl, &ms))
			goto bad;
		r->received_ms = ms;
		r->has_received = true;
		memcpy(iso, v, 23);	/* iso_ms took 23 bytes exactly */
		iso[23] = 'Z';
		member_add(r, 0, k, kl, iso, 24, false);
		return true;
	} else if (KEY("proto")) {
		bit = FIELD_PROTO;
		if (!NUM(255))
			goto bad;
		f->proto = (int32_t)x;
	} else if (KEY("src4_addr") || KEY("src6_addr") || KEY("dst4_addr") || KEY("dst6_addr")) {
		bit = k[0] == 's' ? FIELD_SRC : FIELD_DST;
		if (!str || !addr_parse(v, vl, k[3] == '6', k[0] == 's' ? f->src : f->dst))
			goto bad;
	} else if (KEY("in_packets") || KEY("in_bytes")) {
		bit = k[3] == 'p' ? FIELD_PKTS : FIELD_BYTES;
		if (!NUM((uint64_t)INT64_MAX))
			goto bad;
		*(k[3] == 'p' ? &f->pkts : &f->bytes) = (int64_t)x;
	} else if (KEY("src_port") || KEY("dst_port")) {
		bit = k[0] == 's' ? FIELD_SPORT : FIELD_DPORT;
		if (!NUM(65535))
			goto bad;
		*(k[0] == 's' ? &f->sport : &f->dport) = (int32_t)x;
	} else if (KEY("icmp_type") || KEY("icmp_code")) {
		bit = k[5] == 't' ? FIELD_ITYPE : FIELD_ICODE;
		if (!NUM(255))
			goto bad;
		*(k[5] == 't' ? &f->icmp_type : &f->icmp_code) = (int32_t)x;
	} else if (KEY("tcp_flags")) {
		bit = FIELD_FLAGS;
		if (!str || !flags_parse(v, vl, &f->tcp_flags))
			goto bad;
	} else if (KEY("input_snmp") || KEY("output_snmp")) {
		bit = k[0] == 'i' ? FIELD_INIF : FIELD_OUTIF;
		if (!NUM(UINT32_MAX))
			goto bad;
		*(k[0] == 'i' ? &f->in_if : &f->out_if) = (int64_t)x;
	} else if (KEY("src_as") || KEY("dst_as")) {
		bit = k[0] == 's' ? FIELD_SAS : FIELD_DAS;
		if (!NUM(UINT32_MAX))
			goto bad;
		*(k[0] == 's' ? &f->src_as : &f->dst_as) = (int64_t)x;
	} else if (KEY("export_sysid")) {
		bit = FIELD_SYSID;
		if (!NUM(UINT32_MAX))
			goto bad;
		f->exporter = x ? (int64_t)x : -1;	/* 0: no exporter (nfpcapd) */
	} else if (KEY("sampled")) {
		bit = FIELD_SAMPLED;
		if (!NUM(1))
			goto bad;
		r->sampled = (int)x;
	} else if (KEY("type")) {
		bit = FIELD_TYPE;
		if (!str || vl == 0 || vl > 16)
			goto bad;
		if (!(vl == 4 && memcmp(v, "FLOW", 4) == 0))
			member_add(r, 0, k, kl, v, vl, false);
	} else if (KEY("ip4_router") || KEY("ip6_router")) {
		uint8_t a[16];
		if (!str || !addr_parse(v, vl, k[2] == '6', a))
			goto bad;
		cache_addr_format(a, r->router, sizeof(r->router));
		member_add(r, 0, "router", 6, r->router, strlen(r->router), false);
		return true;
	} else {
		if (nothing(v, vl))
			return true;
		for (size_t i = 0; i < sizeof(extras) / sizeof(extras[0]); i++)
			if (extras[i].key[0] == k[0] && strlen(extras[i].key) == kl &&
			    memcmp(extras[i].key, k, kl) == 0) {
				member_add(r, extras[i].prio, extras[i].as, strlen(extras[i].as), v,
					   vl, !str && dec(v, vl, UINT64_MAX, &x));
				return true;
			}
		/* anything else nfdump says (tunnels, NSEL, MPLS, MACs, ...) */
		member_add(r, 3, k, kl, v, vl, !str && dec(v, vl, UINT64_MAX, &x));
		return true;
	}
#undef KEY
#undef NUM
	if (r->seen & bit) {
		snprintf(r->why, sizeof(r->why), "'%.*s' given twice", (int)kl, k);
		return false;
	}
	r->seen |= bit;
	return true;
bad:
	snprintf(r->why, sizeof(r->why), "bad '%.*s': %.*s%s", (int)kl, k, vl > 48 ? 48 : (int)vl,
		 v, vl > 48 ? "..." : "");
	for (char *p = r->why; *p; p++)
		if ((unsigned char)*p < ' ' || (unsigned char)*p == 0x7f)
			*p = '?';
	return false;
}

/* One line inside a record: TAB "key" SP : SP value [,]. */
static bool field_line(struct rec *r, const char *s, size_t n)
{
	const char *k, *v;
	size_t kl, vl;
	bool str = false;

	while (n > 0 && (*s == '\t' || *s == ' '))
		s++, n--;
	if (n > 0 && s[n - 1] == ',')
		n--;
	if (n < 2 || s[0] != '"')
		goto bad;
	k = s + 1;
	for (kl = 0; kl + 1 < n && k[kl] != '"'; kl++)
		if (!((k[kl] >= 'a' && k[kl] <= 'z') || (k[kl] >= '0' && k[kl] <= '9') || k[kl] == '_'))
			goto bad;
	if (kl == 0 || kl + 1 >= n || n - kl - 2 < 3 || memcmp(k + kl + 1, " : ", 3) != 0)
		goto bad;
	v = k + kl + 4;
	vl = n - kl - 5;
	if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
		v++;
		vl -= 2;
		str = true;
	} else if (vl == 0 || v[0] == '"') {
		goto bad;
	}
	return field(r, k, kl, v, vl, str);
bad:
	snprintf(r->why, sizeof(r->why), "not a field of nfdump's JSON: '%.*s%s'",
		 n > 48 ? 48 : (int)n, s, n > 48 ? "..." : "");
	for (char *p = r->why; *p; p++)
		if ((unsigned char)*p < ' ' || (unsigned char)*p == 0x7f)
			*p = '?';
	return false;
}

/* r's extra: its members by priority, each while it fits. */
static void extra_build(struct rec *r)
{
	char *x = r->f.extra;
	size_t cap = sizeof(r->f.extra), o = 1;

	if (r->sampled)
		member_add(r, 0, "sampled", 7, "1", 1, true);
	if (r->nm == 0) {
		x[0] = '\0';
		return;
	}
	x[0] = '{';
	for (int p = 0; p <= 3; p++)
		for (size_t i = 0; i < r->nm; i++) {
			struct member *m = &r->m[i];
			size_t need = (size_t)m->klen + m->vlen + 3 + (o > 1);
			if (m->prio != p || o + need + 2 > cap)
				continue;
			if (o > 1)	/* ,"key":value (not snprintf: the profile) */
				x[o++] = ',';
			x[o++] = '"';
			memcpy(x + o, m->key, m->klen);
			o += m->klen;
			x[o++] = '"';
			x[o++] = ':';
			memcpy(x + o, m->val, m->vlen);
			o += m->vlen;
		}
	if (o == 1) {
		x[0] = '\0';
		return;
	}
	x[o++] = '}';
	x[o] = '\0';
}

/* SHA-256, set up once per nfd_decode call: EVP_Digest with EVP_sha256()
 * looks the digest up in OpenSSL's provider store on every call (its
 * locks showed in the profile of bench/run nfdump), and a record needs one
 * digest. */
struct rec_digest {
	EVP_MD *md;
	EVP_MD_CTX *ctx;
};

/* Fetches SHA-256 and a context for it: 0, or -ENOMEM (OpenSSL could not
 * provide them; nothing is held then). */
static int rec_digest_open(struct rec_digest *d)
{
	d->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	d->ctx = EVP_MD_CTX_new();
	if (d->md && d->ctx)
		return 0;
	EVP_MD_CTX_free(d->ctx);
	EVP_MD_free(d->md);
	d->md = NULL;
	d->ctx = NULL;
	return -ENOMEM;
}

static void rec_digest_close(struct rec_digest *d)
{
	EVP_MD_CTX_free(d->ctx);
	EVP_MD_free(d->md);
}

/* v in decimal at p (as %lld), then the character after; returns the
 * position after that character. */
static char *put_dec(char *p, int64_t v, char after)
{
	p += cache_i64_text(v, p);
	*p++ = after;
	return p;
}

/* The stable hash behind a record's id: SHA-256 over its identifying
 * fields (docs/nfdump.md, "Flow ids"), the first 16 bytes in lowercase
 * hex; -ENOMEM when the text does not fit or the digest fails. */
static int rec_hash(const struct rec *r, struct rec_digest *d, char out[33])
{
	static const char hex[] = "0123456789abcdef";
	const struct flow_rec *f = &r->f;
	char text[512], *p = text;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	size_t rl = strlen(r->router);

	/* "nfd1|%lld|%s|%d|%s|%d|%s|%d|%d|%d|%lld|%lld|%lld|%lld" of exporter,
	 * router, proto, src, sport, dst, dport, icmp type and code, start,
	 * end, packets, bytes, written without snprintf (the profile): at
	 * most 5 + 10 * 21 + 47 + 2 * 47 bytes, under sizeof(text) */
	memcpy(p, "nfd1|", 5);
	p += 5;
	p = put_dec(p, f->exporter, '|');
	memcpy(p, r->router, rl);
	p += rl;
	*p++ = '|';
	p = put_dec(p, f->proto, '|');
	p += cache_addr_text(f->src, p);
	*p++ = '|';
	p = put_dec(p, f->sport, '|');
	p += cache_addr_text(f->dst, p);
	*p++ = '|';
	p = put_dec(p, f->dport, '|');
	p = put_dec(p, f->icmp_type, '|');
	p = put_dec(p, f->icmp_code, '|');
	p = put_dec(p, f->start_ms, '|');
	p = put_dec(p, f->end_ms, '|');
	p = put_dec(p, f->pkts, '|');
	p = put_dec(p, f->bytes, '\0');
	if (EVP_DigestInit_ex2(d->ctx, d->md, NULL) != 1 ||
	    EVP_DigestUpdate(d->ctx, text, (size_t)(p - 1 - text)) != 1 ||
	    EVP_DigestFinal_ex(d->ctx, md, &mdlen) != 1 || mdlen < 16)
		return -ENOMEM;
	for (int i = 0; i < 16; i++) {	/* not snprintf: 16 calls a record showed too */
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[32] = '\0';
	return 0;
}

/* Does f have q's subject on one side and, when q has a peer, the peer
 * on the other? */
static bool involves(const struct cache_query *q, const struct flow_rec *f)
{
	bool src_in = cache_prefix_contains(&q->subject, f->src);
	bool dst_in = cache_prefix_contains(&q->subject, f->dst);

	if (!q->has_peer)
		return src_in || dst_in;
	return (src_in && cache_prefix_contains(&q->peer, f->dst)) ||
	       (dst_in && cache_prefix_contains(&q->peer, f->src));
}

/* A record read whole: checked, selected, kept in out or counted. */
static int rec_end(struct rec *r, const struct cache_query *q, int64_t start, int64_t end,
		   struct rec_digest *d, struct nfd_out *out)
{
	struct flow_rec *f = &r->f;
	bool icmp;
	int rc;

	out->records++;
	if (!r->why[0] && (r->seen & FIELD_NEEDED) != FIELD_NEEDED)
		snprintf(r->why, sizeof(r->why), "a record without %s",
			 !(r->seen & FIELD_FIRST) ? "'first'" : !(r->seen & FIELD_LAST) ? "'last'"
			 : !(r->seen & FIELD_PROTO) ? "'proto'" : !(r->seen & FIELD_SRC) ? "a source"
			 : !(r->seen & FIELD_DST) ? "a destination" : "packets or bytes");
	if (!r->why[0] && f->end_ms < f->start_ms)
		snprintf(r->why, sizeof(r->why), "a record that ends before it starts");
	if (!r->why[0] &&
	    (memcmp(f->src, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) !=
		    (memcmp(f->dst, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0))
		snprintf(r->why, sizeof(r->why), "a record with an IPv4 and an IPv6 side");
	if (r->why[0]) {
		if (out->rejected++ == 0)
			snprintf(out->why, sizeof(out->why), "%s", r->why);
		return 0;
	}
	/* lateness: only a collector's records (an exporter's sysid) say
	 * when they were stored; nfpcapd's "received" is its run's clock */
	if (r->has_received && f->exporter > 0 && r->received_ms - f->end_ms > out->late_ms)
		out->late_ms = r->received_ms - f->end_ms;
	if (f->start_ms < start || f->start_ms >= end) {
		out->outside++;
		return 0;
	}
	if (!involves(q, f)) {
		out->foreign++;
		return 0;
	}
	icmp = f->proto == 1 || f->proto == 58;
	if (icmp) {
		f->sport = f->dport = -1;
	} else {
		f->icmp_type = f->icmp_code = -1;
		if (!(r->seen & FIELD_SPORT))
			f->sport = -1;
		if (!(r->seen & FIELD_DPORT))
			f->dport = -1;
	}
	if (f->proto != 6)
		f->tcp_flags = -1;
	f->sampling = (r->seen & FIELD_SAMPLED) && !r->sampled ? 1 : -1;
	extra_build(r);
	rc = rec_hash(r, d, f->id);
	if (rc)
		return rc;
	fetch_community_id(f, 0, f->community_id);
	if (arr_grow(&out->recs, &out->cap, out->n + 1, sizeof(*out->recs)))
		return -ENOMEM;
	out->recs[out->n++] = *f;
	return 0;
}

static void rec_init(struct rec *r)
{
	struct flow_rec *f = &r->f;

	/* not the members: nm says how many hold anything (6 KiB a record
	 * cleared for nothing showed in the profile) */
	memset(r, 0, offsetof(struct rec, m));
	r->nm = 0;
	r->why[0] = '\0';
	f->sport = f->dport = f->proto = f->tcp_flags = f->icmp_type = f->icmp_code = -1;
	f->pkts = f->bytes = f->in_if = f->out_if = f->exporter = f->app = -1;
	f->src_as = f->dst_as = f->sampling = -1;
}

/* A kept record's place in the numbering of identical ones: the first 64
 * bits of its hash and its index. */
struct id_key {
	uint64_t k;
	size_t i;
};

/* By hash prefix, then by position. */
static int id_key_cmp(const void *a, const void *b)
{
	const struct id_key *x = a, *y = b;

	if (x->k != y->k)
		return x->k < y->k ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* The first 16 hex digits of an id (rec_hash's lowercase hex). */
static uint64_t id_prefix(const char *id)
{
	uint64_t k = 0;

	for (int i = 0; i < 16; i++)
		k = k << 4 | (uint64_t)(id[i] <= '9' ? id[i] - '0' : id[i] - 'a' + 10);
	return k;
}

/* Identical records (the same hash) of out from index 'from' on: the
 * second gets ".2", the third ".3", ... in the order they came.  Sorted by
 * the hash's first 64 bits (integers, not strcmp: the profile); within a
 * run of equal prefixes, which is one record repeated but for a 2^-64
 * chance, the whole hashes are compared. */
static int ids_number(struct nfd_out *out, size_t from)
{
	size_t n = out->n - from;
	struct id_key *v;

	if (n < 2)
		return 0;
	v = malloc(n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		v[i] = (struct id_key){id_prefix(out->recs[from + i].id), from + i};
	qsort(v, n, sizeof(*v), id_key_cmp);
	for (size_t lo = 0, hi; lo < n; lo = hi) {
		for (hi = lo + 1; hi < n && v[hi].k == v[lo].k; hi++)
			;
		for (size_t j = lo + 1; j < hi; j++) {	/* the run, in position order */
			char *id = out->recs[v[j].i].id;
			size_t same = 1;
			for (size_t k = lo; k < j; k++)
				same += strncmp(out->recs[v[k].i].id, id, 32) == 0;
			if (same > 1)
				snprintf(id + 32, CACHE_ID_MAX + 1 - 32, ".%zu", same);
		}
	}
	free(v);
	return 0;
}

/* The streaming decoder behind nfd_decode: the state between chunks. */
struct nfd_dec {
	const struct cache_query *q;
	int64_t start, end;
	struct nfd_out *out;
	struct rec *r;
	struct rec_digest dg;
	size_t from, lines, stray, before;
	bool in, nomatch;
	bool longline;			/* the pending line passed NFD_LINE_MAX */
	size_t nc;			/* bytes of the pending line in carry */
	char carry[NFD_LINE_MAX + 1];	/* a line cut by a chunk (its \r too) */
};

int nfd_dec_new(const struct cache_query *q, int64_t start, int64_t end, struct nfd_out *out,
		struct nfd_dec **dp, char *err)
{
	struct nfd_dec *d = calloc(1, sizeof(*d));

	*dp = NULL;
	if (!d || !(d->r = malloc(sizeof(*d->r)))) {
		free(d);
		snprintf(err, FETCH_ERRLEN, "no memory to decode nfdump's output");
		return -ENOMEM;
	}
	if (rec_digest_open(&d->dg)) {
		free(d->r);
		free(d);
		snprintf(err, FETCH_ERRLEN, "OpenSSL has no SHA-256 for the flows' ids");
		return -ENOMEM;
	}
	d->q = q;
	d->start = start;
	d->end = end;
	d->out = out;
	d->from = out->n;
	d->before = out->records;
	*dp = d;
	return 0;
}

void nfd_dec_free(struct nfd_dec *d)
{
	if (!d)
		return;
	rec_digest_close(&d->dg);
	free(d->r);
	free(d);
}

/* One line of the output (no newline, no \r), n bytes; s is not read when
 * n > NFD_LINE_MAX.  0, or rec_end's -ENOMEM. */
static int dec_line(struct nfd_dec *d, const char *s, size_t n)
{
	struct rec *r = d->r;
	int rc;

	if (n == 0)
		return 0;
	d->lines++;
	if (n > NFD_LINE_MAX) {
		if (d->in && !r->why[0])
			snprintf(r->why, sizeof(r->why), "a line longer than %d bytes", NFD_LINE_MAX);
		else if (!d->in)
			d->stray++;
		return 0;
	}
	if (!d->in) {
		if (n == 1 && s[0] == '{') {
			rec_init(r);
			d->in = true;
		} else if (n == 17 && memcmp(s, "No matching flows", 17) == 0) {
			d->nomatch = true;
		} else if (!(n == 1 && (s[0] == '[' || s[0] == ']'))) {
			d->stray++;
		}
		return 0;
	}
	if ((n == 1 && s[0] == '}') || (n == 2 && s[0] == '}' && s[1] == ',')) {
		d->in = false;
		return rec_end(r, d->q, d->start, d->end, &d->dg, d->out);
	}
	if (n == 1 && s[0] == '{') {	/* the last one never closed */
		if (!r->why[0])
			snprintf(r->why, sizeof(r->why), "a record that does not end");
		rc = rec_end(r, d->q, d->start, d->end, &d->dg, d->out);
		rec_init(r);
		return rc;
	}
	if (!r->why[0])
		field_line(r, s, n);
	return 0;
}

/* A whole line at s (n bytes, no newline): its \r dropped, decoded. */
static int dec_whole(struct nfd_dec *d, const char *s, size_t n)
{
	if (n > 0 && n <= NFD_LINE_MAX + 1 && s[n - 1] == '\r')
		n--;
	return dec_line(d, s, n);
}

/* The pending line, complete (a newline came, or the output ended). */
static int dec_pending(struct nfd_dec *d)
{
	int rc = d->longline ? dec_line(d, NULL, NFD_LINE_MAX + 1) : dec_whole(d, d->carry, d->nc);

	d->nc = 0;
	d->longline = false;
	return rc;
}

/* Keep the start of a line that the chunk cut: len more bytes at s. */
static void dec_keep(struct nfd_dec *d, const char *s, size_t len)
{
	if (d->longline)
		return;
	if (d->nc + len > sizeof(d->carry)) {
		d->longline = true;	/* its text is never read */
		return;
	}
	memcpy(d->carry + d->nc, s, len);
	d->nc += len;
}

int nfd_dec_feed(struct nfd_dec *d, const char *buf, size_t len)
{
	size_t pos = 0;
	int rc;

	while (pos < len) {
		const char *s = buf + pos, *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		if (!nl) {
			dec_keep(d, s, n);
			break;
		}
		pos += n + 1;
		if (d->nc > 0 || d->longline) {
			dec_keep(d, s, n);
			rc = dec_pending(d);
		} else {
			rc = dec_whole(d, s, n);
		}
		if (rc)
			return rc;
	}
	return 0;
}

int nfd_dec_end(struct nfd_dec *d, bool cut, char *err)
{
	struct nfd_out *out = d->out;
	int rc = 0;

	if (cut) {	/* stopped on purpose: the open record is not a fault */
		d->nc = 0;
		d->longline = false;
		d->in = false;
	}
	if (d->nc > 0 || d->longline) {
		rc = dec_pending(d);
		if (rc)
			goto nomem;
	}
	if (d->in) {
		d->in = false;
		if (!d->r->why[0])
			snprintf(d->r->why, sizeof(d->r->why), "the output ends inside a record");
		rc = rec_end(d->r, d->q, d->start, d->end, &d->dg, out);
		if (rc)
			goto nomem;
	}
	if (d->stray > 0 && out->records == d->before && !d->nomatch) {
		snprintf(err, FETCH_ERRLEN, "nfdump's output is not its JSON: %zu of %zu lines are "
			 "neither a record nor 'No matching flows'", d->stray, d->lines);
		return -EBADMSG;
	}
	if (d->stray > 0) {	/* lines between records: counted as rejected */
		if (out->rejected == 0)
			snprintf(out->why, sizeof(out->why), "%zu lines outside any record", d->stray);
		out->rejected += d->stray;
		d->stray = 0;
	}
	rc = ids_number(out, d->from);
	if (rc == 0)
		return 0;
nomem:
	snprintf(err, FETCH_ERRLEN, "no memory to decode nfdump's output");
	return rc;
}

int nfd_decode(const char *buf, size_t len, const struct cache_query *q, int64_t start,
	       int64_t end, struct nfd_out *out, char *err)
{
	struct nfd_dec *d;
	int rc = nfd_dec_new(q, start, end, out, &d, err);

	if (rc)
		return rc;
	rc = nfd_dec_feed(d, buf, len);
	if (rc)
		snprintf(err, FETCH_ERRLEN, "no memory to decode nfdump's output");
	else
		rc = nfd_dec_end(d, false, err);
	nfd_dec_free(d);
	return rc;
}
