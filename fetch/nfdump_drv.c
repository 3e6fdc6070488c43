/*
 * nfdump_drv.c - the nfdump driver (issue 14): a local archive of nfcapd
 * files, `nfdump:/var/cache/nfdump`, read with Debian's nfdump 1.7.1.
 *
 * A thin shim over the core (nfdump.c: which files a window reads, the
 * command, the subprocess, the decoder) behind struct driver_ops without
 * HTTP: the engine runs each window on a decoding thread (window_run).
 * The archive has no cap, so the engine's max_records (-o max_records,
 * default 10,000) is only the most records a window may hold; a window
 * with more, or whose output passes its bound, is answered as full and
 * the planner splits it (docs/nfdump.md, "The driver").
 *
 * The seam for nfdump+ssh:// (another file, not here): an archive on
 * another host differs in two places only, how its files are listed
 * (nfd_drv_list) and how the command runs (nfd_drv_argv: an argv prefix,
 * `ssh -o BatchMode=yes USER@HOST --`, before nfdump's); the rest of this
 * file (the options, the windows, the conversion) is the same.
 */
#include "fetch_i.h"
#include "nfdump.h"

#include <cjson/cJSON.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A window's output is bounded as an answer of the HTTP dialects is (the
 * engine reserves the same from its budget, body_max): NFD_TEXT_MAX bytes
 * a record (nfdump's JSON records are 450 to 1,000 bytes) + 1 MiB. */
#define NFD_TEXT_MAX 2048
#define NFD_SLACK ((size_t)1 << 20)
#define NFD_OUT_MAX ((size_t)256 << 20)
#define NFD_DEPTH_MAX 4		/* the deepest layout: %Y/%m/%d/%H */
#define NFD_INFO_TIMEOUT_MS 10000	/* nfdump -V, nfdump -E */

struct driver {
	struct nfd_drv_cfg cfg;
	struct nfd_archive arc;		/* root, channels and files_tz point into cfg and chan */
	char chan[NFD_CHANNELS_MAX][64];
	size_t nfiles;			/* at open */
	char first[NFD_REL_MAX], last[NFD_REL_MAX];	/* names under a channel, "" none */
	int64_t first_ms, last_ms;
};

/* ---- options ------------------------------------------------------------------ */

int nfd_drv_config(const struct fetch_opts *o, struct nfd_drv_cfg *cfg, char *err)
{
	const char *url = o->url;
	size_t n;
	int64_t ms;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if (!url || !*url) {
		snprintf(err, FETCH_ERRLEN, "nfdump: needs the archive's directory "
			 "(nfdump:/var/cache/nfdump)");
		return -EINVAL;
	}
	if (strncmp(url, "//", 2) == 0) {
		snprintf(err, FETCH_ERRLEN, "nfdump:%.200s: a local archive is an absolute path "
			 "(nfdump:/var/cache/nfdump); one on another host is "
			 "nfdump+ssh://USER@HOST/PATH", url);
		return -EINVAL;
	}
	if (url[0] != '/') {
		snprintf(err, FETCH_ERRLEN, "nfdump:%.200s is a relative path: give the archive's "
			 "absolute path (nfdump:/var/cache/nfdump)", url);
		return -EINVAL;
	}
	n = strlen(url);
	while (n > 1 && url[n - 1] == '/')
		n--;
	if (n >= sizeof(cfg->root)) {
		snprintf(err, FETCH_ERRLEN, "the archive's path is too long");
		return -E2BIG;
	}
	if (memchr(url, ':', n)) {
		snprintf(err, FETCH_ERRLEN, "the archive's path %.200s holds a ':', which nfdump's "
			 "-M takes as a separator", url);
		return -EINVAL;
	}
	memcpy(cfg->root, url, n);
	cfg->root[n] = '\0';
	if (o->files_tz && *o->files_tz) {
		if (strlen(o->files_tz) >= sizeof(cfg->files_tz)) {
			snprintf(err, FETCH_ERRLEN, "files_tz is too long");
			return -EINVAL;
		}
		snprintf(cfg->files_tz, sizeof(cfg->files_tz), "%s", o->files_tz);
	}
	rc = nfd_name_time(NULL, cfg->files_tz, &ms, err);
	if (rc)
		return rc;
	if (o->active_timeout_s > FETCH_ACTIVE_TIMEOUT_MAX) {
		snprintf(err, FETCH_ERRLEN, "active_timeout %u is out of range: it takes 1 to %d "
			 "seconds (the exporters' active timeout; default %d)", o->active_timeout_s,
			 FETCH_ACTIVE_TIMEOUT_MAX, FETCH_ACTIVE_TIMEOUT_DEFAULT);
		return -EINVAL;
	}
	cfg->active_ms = (int64_t)(o->active_timeout_s ? o->active_timeout_s : FETCH_ACTIVE_TIMEOUT_DEFAULT) * 1000;
	snprintf(cfg->prog, sizeof(cfg->prog), "%s", o->nfdump && *o->nfdump ? o->nfdump : "nfdump");
	if (o->nfdump && strlen(o->nfdump) >= sizeof(cfg->prog)) {
		snprintf(err, FETCH_ERRLEN, "the nfdump program's path is too long");
		return -EINVAL;
	}
	return 0;
}

/* ---- the archive at open: its layout, channels, first and last file ---------- */

/* Is name all digits and '-' (a layout's directory: 2026, 11, 2026-11-27)? */
static bool layout_dir(const char *name)
{
	if (!*name)
		return false;
	for (; *name; name++)
		if ((*name < '0' || *name > '9') && *name != '-')
			return false;
	return true;
}

/* Is name an nfcapd file's (nfcapd.YYYYmmddHHMM or ...SS)? */
static bool nfcapd_name(const char *name)
{
	size_t n = strlen(name);

	if (strncmp(name, "nfcapd.", 7) != 0 || (n != 19 && n != 21))
		return false;
	for (size_t i = 7; i < n; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	return true;
}

/* What a walk of one channel (or a plain archive) found. */
struct walk {
	size_t files;
	char first[NFD_REL_MAX], last[NFD_REL_MAX];	/* by name's time: YYYYmmddHHMM[SS] */
	char first_key[16], last_key[16];
	char shape[NFD_DEPTH_MAX][12];	/* the first file's directories, as digit counts */
	int depth;			/* -1 until a file is found */
};

/* The name's time as a sortable key: 14 digits. */
static void name_key(const char *name, char key[16])
{
	size_t n = strlen(name) - 7;	/* 12 or 14 digits */

	memcpy(key, name + 7, n);
	memcpy(key + n, "00", 14 - n);
	key[14] = '\0';
}

/* "4", "2", "10" (a date): the digit count of a directory's name, and
 * '-' kept, so that layouts can be told apart. */
static void dir_shape(const char *name, char out[12])
{
	snprintf(out, 12, "%s", strchr(name, '-') ? "date" : name[1] == '\0' ? "1" :
		 name[2] == '\0' ? "2" : name[3] == '\0' ? "3" : name[4] == '\0' ? "4" : "?");
}

/* Walk base/sub to NFD_DEPTH_MAX levels of layout directories: the nfcapd
 * files, the first and the last by time.  0, or opendir's -errno for the
 * top (a deeper directory that cannot be read is skipped), -E2BIG. */
static int walk_dir(const char *base, const char *sub, int level, const char (*path)[12],
		    struct walk *w)
{
	char dir[PATH_MAX], shape[NFD_DEPTH_MAX][12];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (snprintf(dir, sizeof(dir), "%s%s%s", base, *sub ? "/" : "", sub) >= (int)sizeof(dir))
		return -E2BIG;
	d = opendir(dir);
	if (!d)
		return level == 0 ? -errno : 0;
	if (level)
		memcpy(shape, path, sizeof(shape));
	while (rc == 0 && (de = readdir(d))) {
		char rel[NFD_REL_MAX], key[16];
		if (de->d_name[0] == '.')
			continue;
		if (snprintf(rel, sizeof(rel), "%s%s%s", sub, *sub ? "/" : "", de->d_name) >=
		    (int)sizeof(rel))
			continue;
		if (nfcapd_name(de->d_name)) {
			name_key(de->d_name, key);
			if (w->files++ == 0 || strcmp(key, w->first_key) < 0) {
				snprintf(w->first, sizeof(w->first), "%s", rel);
				memcpy(w->first_key, key, sizeof(key));
			}
			if (w->files == 1 || strcmp(key, w->last_key) > 0) {
				snprintf(w->last, sizeof(w->last), "%s", rel);
				memcpy(w->last_key, key, sizeof(key));
			}
			if (w->depth < 0) {
				w->depth = level;
				memcpy(w->shape, shape, sizeof(shape));
			}
		} else if (level < NFD_DEPTH_MAX && layout_dir(de->d_name) &&
			   (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN)) {
			dir_shape(de->d_name, shape[level]);
			rc = walk_dir(base, rel, level + 1, (const char (*)[12])shape, w);
		}
	}
	closedir(d);
	return rc;
}

/* nfcapd -S of a walk's first file's directories; -1 when none fits. */
static int layout_of(const struct walk *w)
{
	static const char *const shapes[NFD_LAYOUT_MAX + 1] = {
		"", "4/2/2", "4/2/2/2", "4/2/1", "4/2/1/2", "4/3", "4/3/2", "date", "date/2",
	};
	char s[64] = "";
	size_t o = 0;

	if (w->depth < 0)
		return 0;	/* no file: any layout reads nothing */
	for (int i = 0; i < w->depth; i++)
		o += (size_t)snprintf(s + o, sizeof(s) - o, "%s%s", i ? "/" : "", w->shape[i]);
	for (int l = 0; l <= NFD_LAYOUT_MAX; l++)
		if (strcmp(s, shapes[l]) == 0)
			return l;
	return -1;
}

/* The subdirectories of root that are nfsen channels (not a layout's), in
 * name order, into d->chan; how many, or -errno. */
static int channels_find(struct driver *d, char *err)
{
	DIR *dir = opendir(d->cfg.root);
	struct dirent *de;
	size_t n = 0;

	if (!dir) {
		int rc = -errno;
		snprintf(err, FETCH_ERRLEN, "no archive at %.200s: %s", d->cfg.root, strerror(-rc));
		return rc;
	}
	while ((de = readdir(dir))) {
		char p[PATH_MAX];
		struct stat st;
		if (de->d_name[0] == '.' || layout_dir(de->d_name) || strlen(de->d_name) >= 64)
			continue;
		if (snprintf(p, sizeof(p), "%s/%s", d->cfg.root, de->d_name) >= (int)sizeof(p) ||
		    stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
			continue;
		if (n == NFD_CHANNELS_MAX) {
			closedir(dir);
			snprintf(err, FETCH_ERRLEN, "%.200s has more than %d channel directories",
				 d->cfg.root, NFD_CHANNELS_MAX);
			return -E2BIG;
		}
		snprintf(d->chan[n++], sizeof(d->chan[0]), "%s", de->d_name);
	}
	closedir(dir);
	qsort(d->chan, n, sizeof(d->chan[0]), (int (*)(const void *, const void *))strcmp);
	return (int)n;
}

/*
 * What the archive is: nfcapd's -w directory (files or layout directories
 * at its top) or an nfsen profile (channel directories, each an archive of
 * one layout), its layout, and its first and last file.  0, or -errno with
 * the cause: a directory that is missing or unreadable, a layout that is
 * none of nfcapd's, channels of different layouts.
 */
static int archive_scan(struct driver *d, char *err)
{
	struct walk w = {.depth = -1};
	int rc = walk_dir(d->cfg.root, "", 0, NULL, &w), layout;

	if (rc) {
		snprintf(err, FETCH_ERRLEN, "no archive at %.200s: %s", d->cfg.root, strerror(-rc));
		return rc;
	}
	if (access(d->cfg.root, R_OK | X_OK) != 0) {
		rc = -errno;
		snprintf(err, FETCH_ERRLEN, "the archive %.200s cannot be read: %s", d->cfg.root,
			 strerror(-rc));
		return rc;
	}
	if (w.files == 0) {
		/* no file at the top nor under layout directories: channels? */
		int nch = channels_find(d, err);
		if (nch < 0)
			return nch;
		for (int i = 0; i < nch; i++) {
			struct walk cw = {.depth = -1};
			char base[PATH_MAX];
			if (snprintf(base, sizeof(base), "%s/%s", d->cfg.root, d->chan[i]) >=
			    (int)sizeof(base))
				continue;
			if (walk_dir(base, "", 0, NULL, &cw) != 0 || cw.files == 0)
				continue;
			int l = layout_of(&cw);
			if (w.files && l != layout_of(&w)) {
				snprintf(err, FETCH_ERRLEN, "the channels of %.200s have different "
					 "layouts (%s and %s)", d->cfg.root, d->chan[0], d->chan[i]);
				return -EINVAL;
			}
			if (w.files == 0 || strcmp(cw.first_key, w.first_key) < 0)
				memcpy(w.first_key, cw.first_key, 16), memcpy(w.first, cw.first, NFD_REL_MAX);
			if (w.files == 0 || strcmp(cw.last_key, w.last_key) > 0)
				memcpy(w.last_key, cw.last_key, 16), memcpy(w.last, cw.last, NFD_REL_MAX);
			if (w.depth < 0)
				w.depth = cw.depth, memcpy(w.shape, cw.shape, sizeof(w.shape));
			w.files += cw.files;
		}
		for (int i = 0; i < nch; i++)
			d->arc.channels[i] = d->chan[i];
		d->arc.nchannels = w.files ? (size_t)nch : 0;
	}
	layout = layout_of(&w);
	if (layout < 0) {
		snprintf(err, FETCH_ERRLEN, "the archive %.200s: %.100s is in directories of no "
			 "layout nfcapd -S makes", d->cfg.root, w.first);
		return -EINVAL;
	}
	d->arc.layout = layout;
	d->nfiles = w.files;
	if (w.files) {
		const char *fn = strrchr(w.first, '/'), *ln = strrchr(w.last, '/');
		snprintf(d->first, sizeof(d->first), "%s", w.first);
		snprintf(d->last, sizeof(d->last), "%s", w.last);
		rc = nfd_name_time(fn ? fn + 1 : w.first, d->cfg.files_tz, &d->first_ms, err);
		if (!rc)
			rc = nfd_name_time(ln ? ln + 1 : w.last, d->cfg.files_tz, &d->last_ms, err);
	}
	return rc;
}

static int nfd_open(struct driver **out, const struct fetch_opts *o, char *err)
{
	struct driver *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	rc = nfd_drv_config(o, &d->cfg, err);
	if (rc)
		goto fail;
	d->arc.root = d->cfg.root;
	d->arc.files_tz = d->cfg.files_tz;
	d->arc.interval_ms = NFD_INTERVAL_MS;
	d->arc.bound_ms = d->cfg.active_ms + NFD_INTERVAL_MS;
	rc = archive_scan(d, err);
	if (rc)
		goto fail;
	*out = d;
	return 0;
fail:
	free(d);
	return rc;
}

static void nfd_close(struct driver *d)
{
	free(d);
}

/* ---- running nfdump (the seam for nfdump+ssh) ---------------------------------- */

/* The archive's files that can hold the flows that started in [start,
 * end) (nfd_archive_files on the local directory). */
static int nfd_drv_list(struct driver *d, int64_t start, int64_t end, struct nfd_files *out,
			char *err)
{
	return nfd_archive_files(&d->arc, start, end, out, err);
}

/* The command for files and q (nfd_argv: run here, no prefix). */
static int nfd_drv_argv(struct driver *d, const struct nfd_files *files,
			const struct cache_query *q, struct nfd_cmd *cmd, char *err)
{
	return nfd_argv(d->cfg.prog, &d->arc, files, q, cmd, err);
}

/* Run a short nfdump command (-V, -E) into out (64 KiB at most): 0, or
 * nfd_run's -errno with err. */
static int nfd_small(struct driver *d, const char *opt, const char *file, struct nfd_buf *out,
		     char *err)
{
	char *argv[] = {d->cfg.prog, (char *)"-C", (char *)"none", (char *)opt, (char *)file, NULL};
	char *envp[] = {(char *)"TZ=UTC", (char *)"LC_ALL=C",
			(char *)"PATH=/usr/local/bin:/usr/bin:/bin", NULL};

	if (!file)
		argv[1] = (char *)opt, argv[2] = NULL;
	return nfd_run(argv, envp, nfd_mono_ms() + NFD_INFO_TIMEOUT_MS, NULL, 65536, out, err);
}

/* ---- info, lookups --------------------------------------------------------------- */

/* The first and last file's path for messages: under the first channel
 * for nfsen ("live/2026/11/24/nfcapd.202611240000"). */
static void file_path(const struct driver *d, const char *rel, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", d->arc.nchannels ? d->arc.channels[0] : "",
		 d->arc.nchannels ? "/" : "", rel);
}

static int nfd_info(struct driver *d, struct fetch_info *info, char *err)
{
	static const char *const layouts[] = {"flat", "%Y/%m/%d", "%Y/%m/%d/%H", "%Y/%W/%u",
					      "%Y/%W/%u/%H", "%Y/%j", "%Y/%j/%H", "%Y-%m-%d",
					      "%Y-%m-%d/%H"};
	struct nfd_buf b = {0};
	char first[40] = "", last[40] = "", fp[NFD_REL_MAX + 80] = "", lp[NFD_REL_MAX + 80] = "";
	struct timespec ts;
	int rc;

	memset(info, 0, sizeof(*info));
	snprintf(info->product, sizeof(info->product), "nfdump archive");
	snprintf(info->dialect, sizeof(info->dialect), "nfdump -o json");
	rc = nfd_small(d, "-V", NULL, &b, err);
	if (rc) {
		char why[FETCH_ERRLEN];
		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, FETCH_ERRLEN, "%.300s (-o nfdump=, --nfdump: the nfdump program)",
			 why);
		nfd_buf_free(&b);
		return rc;
	}
	/* "nfdump: Version: NSEL-NEL1.7.1" */
	const char *v = b.p ? strstr(b.p, "Version: ") : NULL;
	snprintf(info->version, sizeof(info->version), "%.*s", v ? (int)strcspn(v + 9, " \r\n") : 7,
		 v ? v + 9 : "unknown");
	nfd_buf_free(&b);
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	/* retention: from the first file's day; an empty archive keeps today */
	int64_t days = d->nfiles ? now / 86400000 - d->first_ms / 86400000 : 1;
	info->retention_days = days < 1 ? 1 : days > 36500 ? 36500 : (int)days;
	/* a flow may be written up to the active timeout and a file's interval
	 * after it started: until then a range is live */
	info->export_delay_s = (int)(d->arc.bound_ms / 1000);
	info->max_records = 0;	/* the engine's bound on a window: fetch_opts.max_records */
	info->uncapped = true;
	if (d->nfiles) {
		cache_time_format(d->first_ms, first, sizeof(first));
		cache_time_format(d->last_ms, last, sizeof(last));
		file_path(d, d->first, fp, sizeof(fp));
		file_path(d, d->last, lp, sizeof(lp));
	}
	cJSON *a = cJSON_CreateObject();
	if (!a) {
		snprintf(err, FETCH_ERRLEN, "out of memory");
		return -ENOMEM;
	}
	cJSON_AddStringToObject(a, "archive", d->cfg.root);
	cJSON *ch = cJSON_AddArrayToObject(a, "channels");	/* nfsen's; none for nfcapd's */
	for (size_t i = 0; ch && i < d->arc.nchannels; i++)
		cJSON_AddItemToArray(ch, cJSON_CreateString(d->arc.channels[i]));
	cJSON_AddStringToObject(a, "layout", layouts[d->arc.layout]);
	cJSON_AddNumberToObject(a, "files", (double)d->nfiles);
	if (d->nfiles) {
		cJSON_AddStringToObject(a, "first_file", fp);
		cJSON_AddStringToObject(a, "first_file_time", first);
		cJSON_AddStringToObject(a, "last_file", lp);
		cJSON_AddStringToObject(a, "last_file_time", last);
	} else {
		cJSON_AddNullToObject(a, "first_file");
		cJSON_AddNullToObject(a, "last_file");
	}
	cJSON_AddStringToObject(a, "files_tz", d->cfg.files_tz[0] ? d->cfg.files_tz :
				getenv("TZ") && *getenv("TZ") ? getenv("TZ") : "UTC");
	cJSON_AddNumberToObject(a, "interval_s", NFD_INTERVAL_MS / 1000);
	cJSON_AddNumberToObject(a, "active_timeout_s", (double)(d->cfg.active_ms / 1000));
	cJSON_AddStringToObject(a, "nfdump", d->cfg.prog);
	if (!cJSON_PrintPreallocated(a, info->about, (int)sizeof(info->about), false))
		info->about[0] = '\0';	/* too long for info.json's extras: left out */
	cJSON_Delete(a);
	return 0;
}

/* One line of `nfdump -E`: "SysID: 1, IP:   127.0.0.1, version: 9, ID:  0, ..."
 * into a row (key the sysid, name and address the IP); false for any
 * other line. */
static bool exporter_line(const char *line, struct cache_lookup *row)
{
	long long id;
	char ip[64];
	int ver;

	if (sscanf(line, "SysID: %lld, IP: %63[^,], version: %d", &id, ip, &ver) != 3)
		return false;
	memset(row, 0, sizeof(*row));
	row->key = id;
	row->key2 = -1;
	/* nfdump knows an exporter by its address only: the name and the
	 * address alike */
	snprintf(row->name, sizeof(row->name), "%s", ip + strspn(ip, " "));
	snprintf(row->extra, sizeof(row->extra), "%s", row->name);
	(void)ver;
	return true;
}

/* The exporters (nfdump -E of the newest file: its exporter records,
 * which the records' export_sysid names); the other tables: none. */
static int nfd_lookup(struct driver *d, enum cache_table t, struct cache_lookup **rows, size_t *n,
		      char *err)
{
	struct nfd_buf b = {0};
	char path[PATH_MAX], fp[NFD_REL_MAX + 80];
	size_t cap = 0;
	int rc = 0;

	*rows = NULL;
	*n = 0;
	if (t != CACHE_EXPORTERS || d->nfiles == 0)
		return 0;
	file_path(d, d->last, fp, sizeof(fp));
	if (snprintf(path, sizeof(path), "%s/%s", d->cfg.root, fp) >= (int)sizeof(path))
		return -E2BIG;
	rc = nfd_small(d, "-E", path, &b, err);
	for (char *line = b.p, *next; !rc && line && *line; line = next) {
		struct cache_lookup row;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (exporter_line(line, &row))
			rc = fetch_lookup_add(rows, n, &cap, &row);
	}
	nfd_buf_free(&b);
	return rc;
}

/* ---- windows ------------------------------------------------------------------------ */

size_t nfd_drv_out_bound(uint32_t limit)
{
	uint64_t b = (uint64_t)limit * NFD_TEXT_MAX + NFD_SLACK;

	return b < NFD_OUT_MAX ? (size_t)b : NFD_OUT_MAX;
}

int nfd_drv_convert(struct nfd_out *in, size_t limit, bool overflow, struct decoded *out)
{
	size_t answered = in->n + in->foreign + in->rejected;

	out->recs = in->recs;
	out->n = in->n;
	in->recs = NULL;
	in->n = in->cap = 0;
	out->rejected = in->rejected;
	out->foreign = in->foreign;
	snprintf(out->why, sizeof(out->why), "%s", in->why);
	/* past its output's bound the window holds more than we read: full */
	if (overflow && answered < limit)
		answered = limit;
	if (limit && out->n > limit) {
		/* at most limit, spread over what was read (the planner's sample) */
		for (size_t i = 0; i < limit; i++)
			out->recs[i] = out->recs[i * out->n / limit];
		out->n = limit;
	}
	out->answered = answered;
	out->sampled = out->sample_at && answered >= out->sample_at;
	return 0;
}

static int nfd_window(struct driver *d, const struct cache_query *q, const struct plan_req *r,
		      uint32_t limit, const atomic_int *cancel, int64_t deadline_ms,
		      struct decoded *out, char *err)
{
	struct cache_query wq = *q;
	struct nfd_files files = {0};
	struct nfd_cmd cmd;
	struct nfd_buf b = {0};
	struct nfd_out no = {0};
	bool overflow = false;
	int rc;

	wq.start = r->start;
	wq.end = r->end;
	if (r->has_peer) {
		wq.peer = r->peer;
		wq.has_peer = true;
	}
	rc = nfd_drv_list(d, r->start, r->end, &files, err);
	if (rc)
		goto cleanup;
	if (files.n == 0)	/* no file can hold a flow of it: none */
		goto cleanup;
	rc = nfd_drv_argv(d, &files, &wq, &cmd, err);
	if (rc)
		goto cleanup;
	rc = nfd_run(cmd.argv, cmd.envp, deadline_ms, cancel, nfd_drv_out_bound(limit), &b, err);
	if (rc == -E2BIG) {
		overflow = true;	/* decoded as far as it went, then split */
		rc = 0;
	} else if (rc == -EIO) {
		rc = -EAGAIN;	/* nfdump failed: asked again, within the retries */
	}
	if (rc)
		goto cleanup;
	rc = nfd_decode(b.p, b.len, &wq, r->start, r->end, &no, err);
	if (rc == -EBADMSG && overflow)
		rc = 0;	/* cut inside its first record */
	if (rc)
		goto cleanup;
	rc = nfd_drv_convert(&no, limit, overflow, out);
cleanup:
	nfd_out_free(&no);
	nfd_buf_free(&b);
	nfd_files_free(&files);
	return rc;
}

const struct driver_ops nfdump_driver = {
	/* the archive's files are 5 minutes long (nfcapd -t 300): a shorter
	 * window reads as many files and gains nothing */
	.granularity_ms = NFD_INTERVAL_MS,
	/* a day: one nfdump run for a quiet host's day; a busier window passes
	 * its output's bound (nfd_drv_out_bound), is killed early and split */
	.max_window_ms = 86400000,
	.split_dims = FETCH_SPLIT_PEER,
	.record_max = NFD_TEXT_MAX,
	.open = nfd_open,
	.close = nfd_close,
	.info_run = nfd_info,
	.lookup_run = nfd_lookup,
	.window_run = nfd_window,
};
