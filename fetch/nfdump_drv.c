/*
 * nfdump_drv.c - the nfdump driver (issue 14): a local archive of nfcapd
 * files, `nfdump:/var/cache/nfdump`, read with Debian's nfdump 1.7.1.
 *
 * A thin shim over the core (nfdump.c: which files a window reads, the
 * command, the subprocess, the decoder) behind struct driver_ops without
 * HTTP: the engine runs each window on a decoding thread (window_run).
 * The archive has no cap, so the engine's max_records (-o max_records,
 * default here NFD_WINDOW_RECORDS) is only the most records a window may
 * hold; a window with more is answered as full and the planner splits it
 * (docs/nfdump.md, "The driver").  A window is
 * complete only when nothing of it lies past the files read: the files
 * after the bound are read on while they hold its flows, and records an
 * exporter stored later than the bound fail it with -ERANGE (late_probe:
 * one more listing and nfdump run a window, more for a late collector).
 *
 * The same driver reads an archive on another host,
 * `nfdump+ssh://[user@]host[:port]/var/cache/nfdump` (the table's line has
 * the two prefixes "nfdump:" and "nfdump+"; nfdump_ssh.c is the
 * transport): it differs in three places only, how the directories are
 * read at open (dir_list: the tree nfd_ssh_tree_read fetched), how a
 * window's files are listed (drv_files: nfd_ssh_files) and how a command
 * runs (drv_run: nfd_ssh_wrap's ssh command); the rest of this file (the
 * options, the windows, the conversion) is the same.
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

#define NFD_DEPTH_MAX 4		/* the deepest layout: %Y/%m/%d/%H */
#define NFD_INFO_TIMEOUT_MS 10000	/* nfdump -V, nfdump -E */
#define NFD_WINDOW_MS (2 * 3600 * 1000)	/* the longest window (below) */
#define NFD_WINDOW_RECORDS 50000	/* a window's records: 35 MB decoded */

struct driver {
	struct nfd_drv_cfg cfg;
	int64_t open_ms;		/* the deadline of the tree's listing at open */
	struct nfd_ssh_tree *tree;	/* ssh, during open only: the archive's tree */
	struct nfd_archive arc;		/* root, channels and files_tz point into cfg and chan */
	char chan[NFD_CHANNELS_MAX][64];
	size_t nfiles;			/* at open */
	char first[NFD_REL_MAX], last[NFD_REL_MAX];	/* names under a channel, "" none */
	int64_t first_ms, last_ms;
	/* the zone check at open (tz_detect): the file, the offset its
	 * flows fit, the verdict or why there is none */
	char tz_file[NFD_REL_MAX + 64];
	char tz_seen[16], tz_result[160];
};

/* ---- options ------------------------------------------------------------------ */

static int common_config(const struct fetch_opts *o, struct nfd_drv_cfg *cfg, char *err);

/* The ssh options of cfg for nfdump_ssh.c (pointing into cfg). */
static void ssh_opts(const struct nfd_drv_cfg *cfg, struct nfd_ssh_opts *so)
{
	memset(so, 0, sizeof(*so));
	so->config_file = cfg->ssh_config[0] ? cfg->ssh_config : NULL;
	so->identity_file = cfg->identity[0] ? cfg->identity : NULL;
	so->known_hosts = cfg->known_hosts[0] ? cfg->known_hosts : NULL;
	so->nfdump = cfg->prog;
	so->connect_timeout_s = cfg->connect_timeout_s;
}

/* Copy an ssh file option into buf: 0, or -EINVAL for one too long. */
static int file_opt(const char *name, const char *v, char *buf, size_t len, char *err)
{
	if (v && strlen(v) >= len) {
		snprintf(err, FETCH_ERRLEN, "%s is longer than %zu bytes", name, len - 1);
		return -EINVAL;
	}
	snprintf(buf, len, "%s", v ? v : "");
	return 0;
}

/* nfd_drv_config for "ssh://...": the URL (nfd_ssh_parse), the ssh options
 * (checked by building a command, nfd_ssh_argv), then the common ones. */
static int ssh_config(const struct fetch_opts *o, struct nfd_drv_cfg *cfg, char *err)
{
	char full[NFD_SSH_PATH_MAX + 512];
	struct nfd_ssh_cmd cmd = {0};
	struct nfd_ssh_opts so;
	size_t n;
	int rc;

	if (snprintf(full, sizeof(full), "nfdump+%s", o->url) >= (int)sizeof(full)) {
		snprintf(err, FETCH_ERRLEN, "the nfdump+ssh URL is too long");
		return -E2BIG;
	}
	rc = nfd_ssh_parse(full, &cfg->url, err);
	if (rc)
		return rc;
	cfg->ssh = true;
	n = strlen(cfg->url.path);
	while (n > 1 && cfg->url.path[n - 1] == '/')
		cfg->url.path[--n] = '\0';
	snprintf(cfg->root, sizeof(cfg->root), "%s", cfg->url.path);
	rc = file_opt("ssh_config", o->ssh_config, cfg->ssh_config, sizeof(cfg->ssh_config), err);
	if (!rc)
		rc = file_opt("identity", o->identity, cfg->identity, sizeof(cfg->identity), err);
	if (!rc)
		rc = file_opt("known_hosts", o->known_hosts, cfg->known_hosts,
			      sizeof(cfg->known_hosts), err);
	if (rc)
		return rc;
	if (o->connect_timeout_ms > 3600000) {
		snprintf(err, FETCH_ERRLEN, "connect_timeout %ld s is over an hour",
			 o->connect_timeout_ms / 1000);
		return -EINVAL;
	}
	cfg->connect_timeout_s = (int)((o->connect_timeout_ms + 999) / 1000);
	rc = common_config(o, cfg, err);
	if (rc)
		return rc;
	ssh_opts(cfg, &so);
	rc = nfd_ssh_argv(&cfg->url, &so, "true", &cmd, err);	/* runs nothing */
	nfd_ssh_cmd_free(&cmd);
	return rc;
}

int nfd_drv_config(const struct fetch_opts *o, struct nfd_drv_cfg *cfg, char *err)
{
	const char *url = o->url;
	size_t n;

	memset(cfg, 0, sizeof(*cfg));
	if (!url || !*url) {
		snprintf(err, FETCH_ERRLEN, "nfdump: needs the archive's directory "
			 "(nfdump:/var/cache/nfdump)");
		return -EINVAL;
	}
	if (strncmp(url, "ssh://", 6) == 0)
		return ssh_config(o, cfg, err);
	if (o->ssh_config || o->identity || o->known_hosts) {
		snprintf(err, FETCH_ERRLEN, "ssh_config, identity and known_hosts are for an "
			 "archive on another host (nfdump+ssh://USER@HOST/PATH), not nfdump:%.200s",
			 url);
		return -EINVAL;
	}
	if (url[0] != '/' && strstr(url, "://")) {
		snprintf(err, FETCH_ERRLEN, "nfdump+%.200s: the one transport is ssh "
			 "(nfdump+ssh://USER@HOST/PATH)", url);
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
	return common_config(o, cfg, err);
}

/* The options both forms take (files_tz, active_timeout, nfdump). */
static int common_config(const struct fetch_opts *o, struct nfd_drv_cfg *cfg, char *err)
{
	int64_t ms;
	int rc;

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
	/* The files' interval (nfcapd -t): the greatest common divisor of
	 * the distances, in seconds, between the first name's time seen and
	 * each other's, the names read as UTC (a clock change moves names by
	 * whole hours).  Never less than the true interval, since nfcapd
	 * names files at multiples of it; more when files are missing (nfpcapd
	 * writes none for a silence), which only reads more files.  0: one
	 * file, or none. */
	int64_t t0_s, gcd_s;
};

static int64_t gcd64(int64_t a, int64_t b)
{
	a = a < 0 ? -a : a;
	b = b < 0 ? -b : b;
	while (b) {
		int64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

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

/* A directory entry's handler: name, and whether it is a directory. */
typedef int (*entry_fn)(void *arg, const char *name, bool dir);

/*
 * The entries of the archive's directory rel ("" the archive, "live/2026")
 * but dot files, to take: from the tree read at open over ssh, else from
 * the local directory (a link to a directory is one, as for nfdump).  0,
 * take's error, or -errno of the directory (-ENOENT none).
 */
static int dir_list(struct driver *d, const char *rel, entry_fn take, void *arg)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *dir;
	int rc = 0;

	if (d->tree)
		return nfd_ssh_tree_list(d->tree, rel, take, arg);
	if (snprintf(path, sizeof(path), "%s%s%s", d->cfg.root, *rel ? "/" : "", rel) >=
	    (int)sizeof(path))
		return -E2BIG;
	dir = opendir(path);
	if (!dir)
		return -errno;
	while (rc == 0 && (de = readdir(dir))) {
		bool isdir = de->d_type == DT_DIR;
		char p[PATH_MAX];
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		if ((de->d_type == DT_UNKNOWN || de->d_type == DT_LNK) &&
		    snprintf(p, sizeof(p), "%s/%s", path, de->d_name) < (int)sizeof(p) &&
		    stat(p, &st) == 0)
			isdir = S_ISDIR(st.st_mode);
		rc = take(arg, de->d_name, isdir);
	}
	closedir(dir);
	return rc;
}

/* One level of a walk: where it is and what it found. */
struct walk_at {
	struct driver *d;
	const char *base;		/* "" or a channel */
	const char *sub;		/* under base: "" or "2026/11" */
	int level;
	char shape[NFD_DEPTH_MAX][12];
	struct walk *w;
};

static int walk_dir(struct driver *d, const char *base, const char *sub, int level,
		    const char (*path)[12], struct walk *w);

/* walk_dir's entry handler: a file is counted, a layout directory walked. */
static int walk_take(void *arg, const char *name, bool dir)
{
	struct walk_at *at = arg;
	struct walk *w = at->w;
	char rel[NFD_REL_MAX], key[16];

	if (snprintf(rel, sizeof(rel), "%s%s%s", at->sub, *at->sub ? "/" : "", name) >=
	    (int)sizeof(rel))
		return 0;
	if (nfcapd_name(name)) {
		int64_t ms;
		char why[FETCH_ERRLEN];
		if (nfd_name_time(name, "UTC", &ms, why) == 0) {
			if (w->files == 0)
				w->t0_s = ms / 1000;
			else
				w->gcd_s = gcd64(w->gcd_s, ms / 1000 - w->t0_s);
		}
		name_key(name, key);
		if (w->files++ == 0 || strcmp(key, w->first_key) < 0) {
			snprintf(w->first, sizeof(w->first), "%s", rel);
			memcpy(w->first_key, key, sizeof(key));
		}
		if (w->files == 1 || strcmp(key, w->last_key) > 0) {
			snprintf(w->last, sizeof(w->last), "%s", rel);
			memcpy(w->last_key, key, sizeof(key));
		}
		if (w->depth < 0) {
			w->depth = at->level;
			memcpy(w->shape, at->shape, sizeof(at->shape));
		}
	} else if (dir && at->level < NFD_DEPTH_MAX && layout_dir(name)) {
		dir_shape(name, at->shape[at->level]);
		return walk_dir(at->d, at->base, rel, at->level + 1,
				(const char (*)[12])at->shape, w);
	}
	return 0;
}

/* Walk base/sub to NFD_DEPTH_MAX levels of layout directories: the nfcapd
 * files, the first and the last by time.  0, or dir_list's -errno for the
 * top (a deeper directory that cannot be read is skipped), -E2BIG. */
static int walk_dir(struct driver *d, const char *base, const char *sub, int level,
		    const char (*path)[12], struct walk *w)
{
	struct walk_at at = {.d = d, .base = base, .sub = sub, .level = level, .w = w};
	char rel[PATH_MAX];
	int rc;

	if (snprintf(rel, sizeof(rel), "%s%s%s", base, *base && *sub ? "/" : "", sub) >=
	    (int)sizeof(rel))
		return -E2BIG;
	if (level)
		memcpy(at.shape, path, sizeof(at.shape));
	/* walk_take's paths are under base: sub is relative to it */
	rc = dir_list(d, rel, walk_take, &at);
	return level == 0 || rc == -E2BIG ? rc : 0;
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

/* channels_find's state: the channel names found so far. */
struct chan_at {
	struct driver *d;
	size_t n;
};

/* channels_find's entry handler: a directory that is not a layout's. */
static int chan_take(void *arg, const char *name, bool dir)
{
	struct chan_at *at = arg;

	if (!dir || layout_dir(name) || strlen(name) >= sizeof(at->d->chan[0]))
		return 0;
	if (at->n == NFD_CHANNELS_MAX)
		return -E2BIG;
	snprintf(at->d->chan[at->n++], sizeof(at->d->chan[0]), "%s", name);
	return 0;
}

/* The subdirectories of root that are nfsen channels (not a layout's), in
 * name order, into d->chan; how many, or -errno. */
static int channels_find(struct driver *d, char *err)
{
	struct chan_at at = {.d = d};
	int rc = dir_list(d, "", chan_take, &at);

	if (rc == -E2BIG) {
		snprintf(err, FETCH_ERRLEN, "%.200s has more than %d channel directories",
			 d->cfg.root, NFD_CHANNELS_MAX);
		return rc;
	}
	if (rc) {
		snprintf(err, FETCH_ERRLEN, "no archive at %.200s: %s", d->cfg.root, strerror(-rc));
		return rc;
	}
	qsort(d->chan, at.n, sizeof(d->chan[0]), (int (*)(const void *, const void *))strcmp);
	return (int)at.n;
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
	int rc = walk_dir(d, "", "", 0, NULL, &w), layout;

	if (rc) {
		snprintf(err, FETCH_ERRLEN, "no archive at %.200s: %s", d->cfg.root, strerror(-rc));
		return rc;
	}
	if (!d->tree && access(d->cfg.root, R_OK | X_OK) != 0) {
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
			if (walk_dir(d, d->chan[i], "", 0, NULL, &cw) != 0 || cw.files == 0)
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
			if (w.files == 0)
				w.t0_s = cw.t0_s, w.gcd_s = cw.gcd_s;
			else
				w.gcd_s = gcd64(gcd64(w.gcd_s, cw.gcd_s), cw.t0_s - w.t0_s);
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
	/* nfcapd -t: 60 s to a day, else (one file, odd names) 5 minutes */
	if (w.gcd_s >= 60 && w.gcd_s <= 86400)
		d->arc.interval_ms = w.gcd_s * 1000;
	d->arc.bound_ms = d->cfg.active_ms + d->arc.interval_ms;
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

static int drv_run(struct driver *d, const struct nfd_cmd *c, int64_t deadline_ms,
		   const atomic_int *cancel, size_t limit, struct nfd_buf *out, char *err);
static void file_path(const struct driver *d, const char *rel, char *buf, size_t len);

/*
 * Check the zone of the names against the newest file (docs/nfdump.md,
 * "Detecting the zone"): one `nfdump -I -r FILE` run, here or over ssh;
 * its Last against the name read in the zone (nfd_tz_check).  0 when they
 * agree or the check is inconclusive (an empty file, nfdump failing on
 * it, replayed data: d->tz_result says which); -EINVAL when they differ,
 * err naming the file, the offset its flows fit and the option to set.
 * -ENOMEM.
 */
static int tz_detect(struct driver *d, char *err)
{
	const char *base = strrchr(d->last, '/') ? strrchr(d->last, '/') + 1 : d->last;
	char path[sizeof(d->cfg.root) + NFD_REL_MAX + 80], why[FETCH_ERRLEN], zone[16], last[40];
	struct nfd_buf b = {0};
	struct nfd_tz *z = NULL;
	struct nfd_stat st;
	int32_t seen, off;
	int64_t wall;
	int rc;

	file_path(d, d->last, d->tz_file, sizeof(d->tz_file));
	snprintf(path, sizeof(path), "%s/%s", d->cfg.root, d->tz_file);
	struct nfd_cmd c = {
		.argv = {d->cfg.prog, (char *)"-C", (char *)"none", (char *)"-I", (char *)"-r", path},
		.envp = {(char *)"TZ=UTC", (char *)"LC_ALL=C",
			 (char *)"PATH=/usr/local/bin:/usr/bin:/bin"},
	};
	rc = nfd_tz_open(d->cfg.files_tz, &z, err);
	if (rc)
		return rc;
	rc = drv_run(d, &c, nfd_mono_ms() + NFD_INFO_TIMEOUT_MS +
			     (int64_t)d->cfg.connect_timeout_s * 1000, NULL, 65536, &b, why);
	if (rc == 0)
		rc = nfd_stat_parse(b.p ? b.p : "", b.len, &st, why);
	nfd_buf_free(&b);
	if (rc == -ENOMEM)
		goto cleanup;
	if (rc) {	/* not the zone's fault: said in info.json, not refused */
		snprintf(d->tz_result, sizeof(d->tz_result), "inconclusive: %.140s", why);
		rc = 0;
		goto cleanup;
	}
	if (nfd_name_wall(base, &wall) != 0) {
		snprintf(d->tz_result, sizeof(d->tz_result), "inconclusive: not an nfcapd name");
		goto cleanup;
	}
	enum nfd_tz_verdict v = nfd_tz_check(z, wall, d->arc.interval_ms / 1000, &st, &seen, &off);
	nfd_tz_format(seen, d->tz_seen, sizeof(d->tz_seen));
	nfd_tz_format(off, zone, sizeof(zone));
	cache_time_format(st.last * 1000, last, sizeof(last));
	if (v == NFD_TZ_INCONCLUSIVE) {
		snprintf(d->tz_result, sizeof(d->tz_result), "inconclusive: %s",
			 st.flows <= 0 ? "the file holds no flow" :
			 "its flows ended more than 14 hours from its name's time");
		d->tz_seen[0] = '\0';
		goto cleanup;
	}
	if (v == NFD_TZ_AGREES) {
		snprintf(d->tz_result, sizeof(d->tz_result), "agrees");
		goto cleanup;
	}
	if (!d->cfg.files_tz[0])
		snprintf(err, FETCH_ERRLEN, "the archive's newest file %.150s holds flows that "
			 "ended at %s, which fits file names in UTC%s, not in this process's "
			 "zone (%.40s, %s there): set -o files_tz=%s (flowfetch --files-tz), or the "
			 "collector's zone's name (e.g. Europe/Prague)", d->tz_file, last, d->tz_seen, getenv("TZ") && *getenv("TZ") ?
			 getenv("TZ") : "UTC", zone, d->tz_seen);
	else
		snprintf(err, FETCH_ERRLEN, "files_tz %.64s (%s at the archive's newest file "
			 "%.150s) disagrees with that file's flows, which ended at %s and fit "
			 "names in UTC%s: set -o files_tz= (flowfetch --files-tz) to the collector's "
			 "zone, e.g. %s", d->cfg.files_tz, zone, d->tz_file, last,
			 d->tz_seen, d->tz_seen);
	rc = -EINVAL;
cleanup:
	nfd_tz_free(z);
	return rc;
}

/* How long the archive's tree may take to list at open: the request
 * timeout (the engine's default 300 s). */
static int64_t ssh_deadline(const struct fetch_opts *o)
{
	return o->request_timeout_ms > 0 ? o->request_timeout_ms : 300000;
}

/* Open the archive: its options (nfd_drv_config), then its layout,
 * channels, first and last file (archive_scan, over ssh from the tree
 * nfd_ssh_tree_read lists).  0, or their -errno with err (ssh's reason
 * when ssh could not connect, log in or trust the host). */
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
	if (d->cfg.ssh) {
		struct nfd_ssh_tree tree;
		struct nfd_ssh_opts so;
		ssh_opts(&d->cfg, &so);
		rc = nfd_ssh_tree_read(&d->cfg.url, &so, nfd_mono_ms() + ssh_deadline(o), NULL,
				       &tree, err);
		if (rc)
			goto fail;
		d->tree = &tree;
		rc = archive_scan(d, err);
		d->tree = NULL;
		nfd_ssh_tree_free(&tree);
	} else {
		rc = archive_scan(d, err);
	}
	if (rc == 0 && d->nfiles)
		rc = tz_detect(d, err);
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

/* ---- running nfdump, here or over ssh ------------------------------------------------ */

/* The archive's files that can hold the flows that started in [start,
 * end): nfd_archive_files on the local directory, nfd_ssh_files on the
 * collector's. */
static int drv_files(struct driver *d, int64_t start, int64_t end, int64_t deadline_ms,
		     const atomic_int *cancel, struct nfd_files *out, char *err)
{
	struct nfd_ssh_opts so;

	if (!d->cfg.ssh)
		return nfd_archive_files(&d->arc, start, end, out, err);
	ssh_opts(&d->cfg, &so);
	return nfd_ssh_files(&d->cfg.url, &so, &d->arc, start, end, deadline_ms, cancel, out, err);
}

/* Run c here (nfd_run_sink) or on the collector (nfd_ssh_wrap's command,
 * its errors through nfd_ssh_errno), its output handed to sink as it
 * comes: nfd_run_sink's returns, and the sink's errno. */
static int drv_stream(struct driver *d, const struct nfd_cmd *c, int64_t deadline_ms,
		      const atomic_int *cancel, nfd_sink_fn sink, void *arg, char *err)
{
	struct nfd_ssh_cmd sc = {0};
	struct nfd_ssh_opts so;
	int rc;

	if (!d->cfg.ssh)
		return nfd_run_sink(&nfd_nfdump_runner, c->argv, c->envp, deadline_ms, cancel, sink,
				    arg, err);
	ssh_opts(&d->cfg, &so);
	rc = nfd_ssh_wrap(&d->cfg.url, &so, c, &sc, err);
	if (rc == 0)
		rc = nfd_run_sink(&nfd_ssh_runner, sc.argv, sc.envp, deadline_ms, cancel, sink, arg,
				  err);
	nfd_ssh_cmd_free(&sc);
	return nfd_ssh_errno(rc, err);
}

/* The command of files for wq run to sink: once for a plain archive, once
 * for each channel of an nfsen profile that holds one of them (nfd_argv
 * says why), the outputs one after the other, a newline after each.  0, nfd_argv's and
 * drv_stream's errors. */
static int drv_files_run(struct driver *d, const struct nfd_files *files,
			 const struct cache_query *wq, int64_t deadline_ms, const atomic_int *cancel,
			 nfd_sink_fn sink, void *arg, char *err)
{
	size_t n = d->arc.nchannels ? d->arc.nchannels : 1;

	for (size_t c = 0; c < n; c++) {
		struct nfd_cmd cmd;
		int rc = nfd_argv(d->cfg.prog, &d->arc, files, c, wq, &cmd, err);
		if (rc == -ENOENT && d->arc.nchannels)
			continue;	/* this channel holds none of them */
		if (rc == 0)
			rc = drv_stream(d, &cmd, deadline_ms, cancel, sink, arg, err);
		if (rc == 0)	/* nfdump's last line has no newline: the next
				 * output starts on a line of its own */
			rc = sink(arg, "\n", 1, err);
		if (rc)
			return rc;
	}
	return 0;
}

/* drv_stream with the output kept in out, at most limit bytes (-E2BIG). */
static int drv_run(struct driver *d, const struct nfd_cmd *c, int64_t deadline_ms,
		   const atomic_int *cancel, size_t limit, struct nfd_buf *out, char *err)
{
	struct nfd_buf_sink b = {d->cfg.ssh ? &nfd_ssh_runner : &nfd_nfdump_runner, out, limit,
				 out->len};

	return drv_stream(d, c, deadline_ms, cancel, nfd_buf_take, &b, err);
}

/* Run a short nfdump command (-V, -E) into out (64 KiB at most): 0, or
 * drv_run's -errno with err. */
static int nfd_small(struct driver *d, const char *opt, const char *file, struct nfd_buf *out,
		     char *err)
{
	struct nfd_cmd c = {
		.argv = {d->cfg.prog, (char *)"-C", (char *)"none", (char *)opt, (char *)file},
		.envp = {(char *)"TZ=UTC", (char *)"LC_ALL=C",
			 (char *)"PATH=/usr/local/bin:/usr/bin:/bin"},
	};
	int64_t wait = NFD_INFO_TIMEOUT_MS + (int64_t)d->cfg.connect_timeout_s * 1000;

	if (!file)
		c.argv[1] = (char *)opt, c.argv[2] = NULL;
	return drv_run(d, &c, nfd_mono_ms() + wait, NULL, 65536, out, err);
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
	int64_t days = d->nfiles ? now / CACHE_DAY_MS - d->first_ms / CACHE_DAY_MS : 1;
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
	if (d->cfg.ssh) {	/* the collector it is on: "user@host:port" */
		char at[NFD_SSH_USER_MAX + NFD_SSH_HOST_MAX + 16];
		snprintf(at, sizeof(at), "%s%s%s%s%s", d->cfg.url.user,
			 d->cfg.url.user[0] ? "@" : "", strchr(d->cfg.url.host, ':') ? "[" : "",
			 d->cfg.url.host, strchr(d->cfg.url.host, ':') ? "]" : "");
		if (d->cfg.url.port)
			snprintf(at + strlen(at), sizeof(at) - strlen(at), ":%d", d->cfg.url.port);
		cJSON_AddStringToObject(a, "ssh", at);
	}
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
	if (d->tz_result[0]) {	/* what the newest file said of the zone */
		cJSON *k = cJSON_AddObjectToObject(a, "files_tz_checked");
		cJSON_AddStringToObject(k, "file", d->tz_file);
		if (d->tz_seen[0])
			cJSON_AddStringToObject(k, "offset_seen", d->tz_seen);
		else
			cJSON_AddNullToObject(k, "offset_seen");
		cJSON_AddStringToObject(k, "result", d->tz_result);
	}
	cJSON_AddNumberToObject(a, "interval_s", (double)(d->arc.interval_ms / 1000));
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

/* How far past the files a window reads its probe looks for the next file:
 * a day (a collector that wrote nothing for a day is not waited for). */
#define NFD_PROBE_SPAN_MS CACHE_DAY_MS

/*
 * The refusal of a window whose flows may lie past the files read: err
 * says how late the archive's records are (late_ms, 0: unknown) or which
 * file past the bound holds the window's flows (file), and the active
 * timeout that would read them (need_ms rounded up to a file's interval).
 * Always -ERANGE: not retried, the query ends and is not complete.
 */
static int late_refuse(const struct driver *d, int64_t late_ms, int64_t need_ms,
		       const char *file, char *err)
{
	long long bound = (long long)(d->arc.bound_ms / 1000);
	long long active = (long long)(d->cfg.active_ms / 1000);
	int64_t iv = d->arc.interval_ms;
	long long need = (long long)((need_ms + iv - 1) / iv * (iv / 1000));

	if (late_ms > d->arc.bound_ms)
		snprintf(err, FETCH_ERRLEN, "the archive holds records stored up to %lld s after "
			 "they ended, more than the %lld s the driver reads past a window "
			 "(-o active_timeout=%lld + one file); flows of this window may lie in "
			 "later files: set -o active_timeout= (flowfetch --active-timeout) to at "
			 "least %lld", (long long)(late_ms / 1000), bound, active, need);
	else
		snprintf(err, FETCH_ERRLEN, "the archive's file %.128s, past the %lld s the driver "
			 "reads past a window (-o active_timeout=%lld + one file), holds flows of "
			 "this window: set -o active_timeout= (flowfetch --active-timeout) to at "
			 "least %lld", file, bound, active, need);
	return -ERANGE;
}

/* A window's output as nfdump writes it: decoded chunk by chunk, and
 * stopped once the window holds more than limit records (full). */
struct win_sink {
	struct nfd_dec *dec;
	const struct nfd_out *no;
	size_t limit;
	bool full;
};

static int win_take(void *arg, const char *p, size_t n, char *err)
{
	struct win_sink *w = arg;

	if (nfd_dec_feed(w->dec, p, n)) {
		snprintf(err, FETCH_ERRLEN, "no memory to decode nfdump's output");
		return -ENOMEM;
	}
	if (w->limit && w->no->n > w->limit) {
		w->full = true;
		snprintf(err, FETCH_ERRLEN, "the window holds more than %zu flows", w->limit);
		return -E2BIG;
	}
	return 0;
}

/* Append in's records to out (in is left empty) and its counts. */
static int out_append(struct nfd_out *out, struct nfd_out *in)
{
	if (out->n + in->n > out->cap) {
		size_t nc = out->n + in->n;
		struct flow_rec *v = realloc(out->recs, nc * sizeof(*v));
		if (!v)
			return -ENOMEM;
		out->recs = v;
		out->cap = nc;
	}
	memcpy(out->recs + out->n, in->recs, in->n * sizeof(*in->recs));
	out->n += in->n;
	out->records += in->records;
	out->outside += in->outside;
	out->foreign += in->foreign;
	if (out->rejected == 0 && in->rejected > 0)
		snprintf(out->why, sizeof(out->why), "%s", in->why);
	out->rejected += in->rejected;
	if (in->late_ms > out->late_ms)
		out->late_ms = in->late_ms;
	in->n = 0;
	return 0;
}

/* One file's flows of wq into po (nfdump with the window's filter,
 * decoded as it comes, at most limit kept): drv_stream's and nfd_dec_end's
 * returns, -EAGAIN for a failed run. */
static int probe_file(struct driver *d, const struct cache_query *wq, const struct nfd_file *f,
		      size_t limit, int64_t deadline_ms, const atomic_int *cancel,
		      struct nfd_out *po, char *err)
{
	struct nfd_files one = {(struct nfd_file *)f, 1};
	struct win_sink w = {.no = po, .limit = limit};
	int rc = nfd_dec_new(wq, wq->start, wq->end, po, &w.dec, err);

	if (rc)
		return rc;
	rc = drv_files_run(d, &one, wq, deadline_ms, cancel, win_take, &w, err);
	if (rc == -E2BIG && w.full)
		rc = 0;		/* more than a window's worth: enough to say so */
	else if (rc == -EIO || rc == -EHOSTUNREACH)
		rc = -EAGAIN;
	if (rc == 0)
		rc = nfd_dec_end(w.dec, w.full, err);
	nfd_dec_free(w.dec);
	return rc;
}

/*
 * The independent check behind a window's "complete": is there a flow of
 * [start, end) past the files nfd_window read?  One listing (the files of
 * the day past end + bound, drv_files), then nfdump on the first of them
 * with the window's filter (probe_file).  When that file holds flows that
 * started in the window (a collector that wrote them later than the bound:
 * nfpcapd reading a pcap writes what it holds at its next file, however
 * late), they are the window's: they are added to no, and the next file
 * is probed, until one holds none of the window's flows; that file is the
 * check.  The window is refused (late_refuse, -ERANGE) when the records
 * read were stored more than the bound after they ended (late_ms, an
 * exporter's own word that the bound is wrong) and a later file exists,
 * when a probed file says so of its own records, or when every file of
 * that day holds flows of the window.  No later file: nothing to probe, 0.
 * Other failures: drv_files' and probe_file's (-EAGAIN for a failed run or
 * listing, asked again as the window is), err saying why.
 */
static int late_probe(struct driver *d, const struct cache_query *wq, int64_t late_ms,
		      size_t limit, int64_t deadline_ms, const atomic_int *cancel,
		      struct nfd_out *no, char *err)
{
	int64_t past = wq->end + d->arc.bound_ms, need = late_ms;
	struct nfd_files files = {0};
	size_t k;
	int rc;

	/* the files T >= past (T + interval > past + interval - 1), a day on */
	rc = drv_files(d, past + d->arc.interval_ms - 1,
		       past + d->arc.interval_ms + NFD_PROBE_SPAN_MS,
		       deadline_ms, cancel, &files, err);
	if (rc == -EIO || rc == -EHOSTUNREACH)
		rc = -EAGAIN;
	if (rc || files.n == 0)
		goto cleanup;
	if (late_ms > d->arc.bound_ms) {
		rc = late_refuse(d, late_ms, need, files.v[0].rel, err);
		goto cleanup;
	}
	for (k = 0; k < files.n; k++) {
		struct nfd_out po = {0};
		rc = probe_file(d, wq, &files.v[k], limit, deadline_ms, cancel, &po, err);
		if (rc == 0 && po.late_ms > d->arc.bound_ms)
			rc = late_refuse(d, po.late_ms, po.late_ms, files.v[k].rel, err);
		if (rc == 0 && po.n == 0) {
			nfd_out_free(&po);
			break;		/* the check: a later file without its flows */
		}
		if (rc == 0 && (rc = out_append(no, &po)) != 0)
			snprintf(err, FETCH_ERRLEN, "no memory for the window's late flows");
		nfd_out_free(&po);
		if (rc)
			goto cleanup;
	}
	if (k == files.n) {	/* a day of files, each with flows of the window */
		need = files.v[k - 1].ms + d->arc.interval_ms - wq->end;
		rc = late_refuse(d, 0, need, files.v[k - 1].rel, err);
	}
cleanup:
	nfd_files_free(&files);
	return rc;
}

/*
 * One window: its files' flows of [start, end), decoded while nfdump
 * writes them (drv_files_run, nfd_dec_*), checked by late_probe.
 * Memory is bounded by the window's limit: past limit records kept, nfdump
 * is stopped and the window answered as full (the planner splits it).
 * -EAGAIN for a failed run (asked again), -ERANGE for flows past the
 * bound, other -errno with err.
 */
static int nfd_window(struct driver *d, const struct cache_query *q, const struct plan_req *r,
		      uint32_t limit, const atomic_int *cancel, int64_t deadline_ms,
		      struct decoded *out, char *err)
{
	struct cache_query wq = *q;
	struct nfd_files files = {0};
	struct nfd_out no = {0};
	struct win_sink w = {.no = &no, .limit = limit};
	int rc;

	wq.start = r->start;
	wq.end = r->end;
	if (r->has_peer) {
		wq.peer = r->peer;
		wq.has_peer = true;
	}
	rc = drv_files(d, r->start, r->end, deadline_ms, cancel, &files, err);
	if (rc == -EIO || rc == -EHOSTUNREACH)
		rc = -EAGAIN;	/* the listing over ssh failed: asked again */
	if (rc)
		goto cleanup;
	if (files.n == 0) {	/* no file can hold a flow of it, unless late */
		rc = late_probe(d, &wq, 0, limit, deadline_ms, cancel, &no, err);
		goto convert;
	}
	rc = nfd_dec_new(&wq, r->start, r->end, &no, &w.dec, err);
	if (rc)
		goto cleanup;
	rc = drv_files_run(d, &files, &wq, deadline_ms, cancel, win_take, &w, err);
	if (rc == -E2BIG && w.full)
		rc = 0;		/* decoded as far as it went, then split */
	else if (rc == -EIO || rc == -EHOSTUNREACH)
		rc = -EAGAIN;	/* nfdump or ssh failed: asked again, within the retries */
	if (rc)
		goto cleanup;
	rc = nfd_dec_end(w.dec, w.full, err);
	if (rc)
		goto cleanup;
	/* complete only if nothing of it lies past what was read; a full
	 * window is split, its parts are checked */
	if (!w.full)
		rc = late_probe(d, &wq, no.late_ms, limit, deadline_ms, cancel, &no, err);
convert:
	if (rc)
		goto cleanup;
	rc = nfd_drv_convert(&no, limit, w.full, out);
cleanup:
	nfd_dec_free(w.dec);
	nfd_out_free(&no);
	nfd_files_free(&files);
	return rc;
}

const struct driver_ops nfdump_driver = {
	/* the archive's files are 5 minutes long (nfcapd -t 300): a shorter
	 * window reads as many files and gains nothing */
	.granularity_ms = NFD_INTERVAL_MS,
	/* two hours (docs/nfdump.md, "Windows"): a day in 12 runs, each
	 * reading its 24 files and the bound's 2 after them; a quiet host's
	 * day costs 12 short runs instead of one, a busy host's windows stay
	 * under window_records without a split (bench/run nfdump measured
	 * 1, 2 and 24 hours) */
	.max_window_ms = NFD_WINDOW_MS,
	.split_dims = FETCH_SPLIT_PEER,
	/* a window holds decoded records, not nfdump's text (decoded while
	 * nfdump writes): the engine's budget counts those */
	.record_max = sizeof(struct flow_rec),
	.window_records = NFD_WINDOW_RECORDS,
	.open = nfd_open,
	.close = nfd_close,
	.info_run = nfd_info,
	.lookup_run = nfd_lookup,
	.window_run = nfd_window,
};
