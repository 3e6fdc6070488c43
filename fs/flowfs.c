/*
 * flowfs.c - the daemon: options, the probe, daemonizing, the session
 * loop; and the small things every operation shares (the clock, the log,
 * the errno table, the made-up files README.txt and collector/).
 *
 *   flowfs [-f] [-o opt,...] URL MOUNTPOINT
 *
 * Order of events, and why: the options are parsed and the collector is
 * probed in the foreground, so that a bad URL or token ends the command
 * with a clear message and status 1; only then is the filesystem mounted
 * and the process detached; threads and database connections start after
 * that (fork keeps only the calling thread).
 */
#include "fs.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* ---- shared helpers -------------------------------------------------------- */

void fs_clock_now(struct fs_ctx *c, struct fs_clock *clk)
{
	const struct fetch_info *info = fetch_engine_info(c->engine);
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	clk->now_ms = info->now_ms + (now - info->probed_at_ms);
	/* a collector that states no retention (SNA: it keeps what its
	 * collectors' disks hold) never makes a past day refused; the option
	 * only sets how many days a listing shows */
	clk->retention_stated = info->retention_days > 0;
	clk->retention_days = info->retention_days > 0 ? info->retention_days : c->o.retention_days;
}

/* The line, formatted, to the log file and (in the foreground) stderr.
 * A write and a flush: never under c->lock (fs.h, LOCKING). */
static void log_write(struct fs_ctx *c, const char *fmt, va_list ap)
{
	char line[1200], stamp[32];
	time_t t = time(NULL);
	struct tm tm;

	mtx_assert_not_held(&c->lock);
	vsnprintf(line, sizeof(line), fmt, ap);
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (c->log) {
		fprintf(c->log, "%s flowfs[%d]: %s\n", stamp, (int)getpid(), line);
		fflush(c->log);
	}
	if (c->o.foreground)
		fprintf(stderr, "flowfs: %s\n", line);
}

void fs_log(struct fs_ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write(c, fmt, ap);
	va_end(ap);
}

void fs_log_at(struct fs_ctx *c, int level, const char *fmt, ...)
{
	va_list ap;

	if (level > c->log_level)
		return;
	va_start(ap, fmt);
	log_write(c, fmt, ap);
	va_end(ap);
}

/* FNV-1a of the text s, continued from h. */
static uint64_t refused_hash(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int64_t refused_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Whether the name 'name' in the folder whose path is 'dir' is to be
 * logged now: not logged lately (the ring of recent hashes) and within the
 * minute's lines.  Logs the count of the names left out, when a new minute
 * begins, and the notice that the minute's are only counted.  The decision
 * is taken under refused.lock, the lines are written after it is let go.
 * Paths are told apart by a 64-bit hash: two paths with one hash (never
 * seen, 1 in 2^64) would log only the first.
 */
static bool name_log_once(struct fs_ctx *c, const char *dir, const char *name)
{
	struct fs_refused *r = &c->refused;
	uint64_t h, carried = 0;
	bool seen = false, log_it = false, notice = false;
	int64_t now = refused_now_ms();

	h = refused_hash(refused_hash(0xcbf29ce484222325ULL, dir), "/");
	h = refused_hash(h, name);
	if (h == 0)
		h = 1;
	pthread_mutex_lock(&r->lock);
	if (r->logged == 0 || now - r->minute_ms >= 60000) {	/* a new minute */
		carried = r->unlogged;
		r->unlogged = 0;
		r->minute_ms = now;
		r->logged = 0;
	}
	for (unsigned i = 0; i < FS_REFUSED_RECENT && !seen; i++)
		seen = r->recent[i] == h;
	if (!seen) {
		if (r->logged < FS_REFUSED_PER_MIN) {
			r->recent[r->next] = h;
			r->next = (r->next + 1) % FS_REFUSED_RECENT;
			r->logged++;
			log_it = true;
		} else {
			notice = r->unlogged++ == 0;
		}
	}
	pthread_mutex_unlock(&r->lock);
	if (carried)
		fs_log(c, "%llu more refused names were not logged (at most %d a minute)",
		       (unsigned long long)carried, FS_REFUSED_PER_MIN);
	if (notice)
		fs_log(c, "more than %d names refused in a minute: the rest of this minute's are "
			  "not logged, only counted", FS_REFUSED_PER_MIN);
	return log_it;
}

void fs_log_refused(struct fs_ctx *c, const struct fs_node *parent, const char *name,
		    const char *why)
{
	char dir[FS_PATH_LEN], shown[4 * NAME_MAX + 8];

	fs_node_path(parent, dir, sizeof(dir));
	if (!name_log_once(c, dir, name))
		return;
	cache_text_escape(shown, sizeof(shown), name, strlen(name));
	fs_log(c, "name refused (ENOENT): %s%s%s: %s; %s takes %s", strcmp(dir, "/") ? dir : "",
	       "/", shown, why && why[0] ? why : "not a name of this tree",
	       strcmp(dir, "/") ? dir : "/", fs_lookup_forms(parent));
}

void fs_log_spelling(struct fs_ctx *c, const struct fs_node *parent, const char *name,
		     const struct fs_node *n)
{
	char dir[FS_PATH_LEN], path[FS_PATH_LEN], canon[128], shown[4 * NAME_MAX + 8];

	fs_node_name(n, canon, sizeof(canon));
	if (strcmp(canon, name) == 0)
		return;
	fs_node_path(parent, dir, sizeof(dir));
	if (!name_log_once(c, dir, name))
		return;
	fs_node_path(n, path, sizeof(path));
	cache_text_escape(shown, sizeof(shown), name, strlen(name));
	fs_log_at(c, FETCH_LOG_INFO, "name %s%s%s is %s (its canonical spelling, which the log "
		  "and listings use)", strcmp(dir, "/") ? dir : "", "/", shown, path);
}

void fs_log_refused_flush(struct fs_ctx *c)
{
	uint64_t n;

	pthread_mutex_lock(&c->refused.lock);
	n = c->refused.unlogged;
	c->refused.unlogged = 0;
	pthread_mutex_unlock(&c->refused.lock);
	if (n)
		fs_log(c, "%llu more refused names were not logged (at most %d a minute)",
		       (unsigned long long)n, FS_REFUSED_PER_MIN);
}

int fs_errno(int rc)
{
	switch (-rc) {
	case ETIMEDOUT:
		return ETIMEDOUT;	/* the collector stalled or was too slow */
	case EACCES:
		return EACCES;		/* the token was refused, or TLS was not trusted */
	case ECONNREFUSED:
	case EHOSTUNREACH:
		return EHOSTUNREACH;	/* the collector cannot be reached */
	case ENOSPC:
	case EDQUOT:
		return ENOSPC;		/* the cache's disk is full */
	case ENOMEM:
		return ENOMEM;
	case ECANCELED:
	case EINTR:
		return EINTR;		/* unmounting */
	case ENOENT:
		return ENOENT;
	case EFBIG:
		return EFBIG;		/* an answer larger than the bound */
	case EMFILE:
	case ENFILE:
		return EMFILE;		/* out of descriptors */
	default:
		return EIO;		/* everything else: the cause is in the log and .progress */
	}
}

bool fs_errno_transient(int rc)
{
	switch (-rc) {
	case ENOSPC:
	case EDQUOT:		/* the disk has room again once files are removed */
	case EMFILE:
	case ENFILE:		/* descriptors are given back */
	case ENOMEM:
	case EBUSY:		/* SQLITE_BUSY, SQLITE_LOCKED (cache_sqlite_errno) */
	case EAGAIN:
	case EINTR:		/* SQLITE_INTERRUPT, a cancelled render */
	case ECANCELED:
		return true;
	default:
		return false;
	}
}

static const char readme_text[] =
	"flowfs: the flows of a collector, as files\n"
	"==========================================\n"
	"\n"
	"  /<address>/<yyyy-mm-dd>/flows.csv        every flow of that address that started that day\n"
	"  /<address>/<from>--<to>/                 any range: 2026-11-27T10:00--2026-11-27T12:30\n"
	"  /<prefix with _ for />/...               a prefix: 198.51.100.0_24\n"
	"  /<address>+<address>/...                 the flows between two parties\n"
	"\n"
	"Each query folder holds flows.csv, flows.ndjson, flows.sqlite, summary.txt,\n"
	"timeline.svg, query.json (provenance: collector, exact bounds, requests,\n"
	"coverage, gaps) and SHA256SUMS; `cat .progress` says where its download stands.\n"
	"Opening a file runs the folder's query once and waits for it; Ctrl-C stops\n"
	"the wait, not the download. Copy a folder with `cp -r` and check it with\n"
	"`sha256sum -c SHA256SUMS` in the copy. Days are in the mount's zone.\n"
	"\n"
	"Listing folders never contacts the collector. Any address can be entered,\n"
	"in any spelling; listings show the cached ones, canonically. In `ls -l` of\n"
	"an address, a day the cache holds whole has the time it was fetched, any\n"
	"other day its midnight. A name that is refused (No such file or directory)\n"
	"is explained in the log below.\n";

/* collector/info.json */
static int info_json(struct fs_ctx *c, char **text)
{
	const struct fetch_info *info = fetch_engine_info(c->engine);
	cJSON *o = cJSON_CreateObject();
	char *s;

	if (!o)
		return -ENOMEM;
	cJSON_AddStringToObject(o, "url", c->url);
	cJSON_AddStringToObject(o, "product", info->product);
	cJSON_AddStringToObject(o, "version", info->version);
	cJSON_AddStringToObject(o, "dialect", info->dialect);
	cJSON_AddStringToObject(o, "driver", fetch_engine_driver(c->engine));
	if (info->uncapped)	/* no cap: max_records bounds only our windows */
		cJSON_AddNullToObject(o, "max_records");
	else
		cJSON_AddNumberToObject(o, "max_records", info->max_records);
	if (info->retention_days > 0)
		cJSON_AddNumberToObject(o, "retention_days", info->retention_days);
	else
		cJSON_AddNullToObject(o, "retention_days");	/* the collector does not say */
	cJSON_AddNumberToObject(o, "export_delay_s", info->export_delay_s);
	cJSON_AddNumberToObject(o, "now_at_mount", (double)info->now_ms);
	cJSON *about = info->about[0] ? cJSON_Parse(info->about) : NULL;
	for (cJSON *m = about ? about->child : NULL; m; m = m->next)
		cJSON_AddItemToObject(o, m->string, cJSON_Duplicate(m, true));
	cJSON_Delete(about);
	s = cJSON_Print(o);
	cJSON_Delete(o);
	if (!s)
		return -ENOMEM;
	*text = malloc(strlen(s) + 2);
	if (*text)
		sprintf(*text, "%s\n", s);
	cJSON_free(s);
	return *text ? 0 : -ENOMEM;
}

/* The connection for the daemon's own short reads, opened on first use;
 * the caller holds c->small_lock. */
static struct cache *small_open(struct fs_ctx *c)
{
	mtx_assert_held(&c->small_lock);
	if (!c->small_cache) {
		struct cache_identity id = fetch_engine_identity(c->engine);
		char err[CACHE_ERRLEN];
		if (cache_open(c->cache_dir, &id, &c->small_cache, err)) {
			fs_log(c, "cannot open the cache: %s", err);
			c->small_cache = NULL;
		}
	}
	return c->small_cache;
}

int fs_cached_subjects(struct fs_ctx *c, struct cache_query **out, size_t *n)
{
	int rc = -EIO;

	mtx_lock(&c->small_lock);
	struct cache *cc = small_open(c);
	if (cc)
		rc = cache_subjects(cc, out, n, NULL);
	mtx_unlock(&c->small_lock);
	return rc;
}

void fs_days_fetched(struct fs_ctx *c, const struct cache_query *q, const int64_t *bounds,
		     size_t n, bool listing, int64_t *fetched)
{
	char subject[160], err[CACHE_ERRLEN];
	struct timespec ts;
	int rc = -EIO;

	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	uint64_t gen = atomic_load(&c->cover_gen);

	memset(fetched, 0, n * sizeof(*fetched));
	fs_subject_name(q, subject, sizeof(subject));
	mtx_lock(&c->small_lock);
	/* the last listing's answer, soon after it and before another query
	 * ended: one of its days, or the same listing again (a listing
	 * repeated while a download runs costs no read of the store) */
	if (c->days.n && c->days.gen == gen && now - c->days.at_ms < FS_DAYS_KEEP_MS &&
	    now >= c->days.at_ms && strcmp(c->days.subject, subject) == 0) {
		if (listing && n == c->days.n &&
		    memcmp(c->days.bounds, bounds, (n + 1) * sizeof(*bounds)) == 0) {
			memcpy(fetched, c->days.fetched, n * sizeof(*fetched));
			mtx_unlock(&c->small_lock);
			return;
		}
		for (size_t i = 0; !listing && n == 1 && i < c->days.n; i++) {
			if (c->days.bounds[i] == bounds[0] && c->days.bounds[i + 1] == bounds[1]) {
				fetched[0] = c->days.fetched[i];
				mtx_unlock(&c->small_lock);
				return;
			}
		}
	}
	struct cache *cc = small_open(c);
	if (cc)
		rc = cache_days_fetched(cc, q, bounds, n, now, (int64_t)c->o.live_ttl * 1000,
					fetched, err);
	if (rc && cc)
		fs_log(c, "%s: cannot read which days the cache holds: %s", subject, err);
	if (!rc && listing && n <= FS_DAYS_MAX) {
		snprintf(c->days.subject, sizeof(c->days.subject), "%s", subject);
		memcpy(c->days.bounds, bounds, (n + 1) * sizeof(*bounds));
		memcpy(c->days.fetched, fetched, n * sizeof(*fetched));
		c->days.n = n;
		c->days.at_ms = now;
		c->days.gen = gen;
	}
	mtx_unlock(&c->small_lock);
}

void fs_log_gaps(struct fs_ctx *c, const struct cache_query *q, const char *name)
{
	struct cache_gap *g = NULL;
	size_t n = 0;
	char err[CACHE_ERRLEN];

	mtx_assert_not_held(&c->lock);
	mtx_lock(&c->small_lock);
	struct cache *cc = small_open(c);
	int rc = cc ? cache_gaps(cc, q, &g, &n, err) : -EIO;
	mtx_unlock(&c->small_lock);
	if (rc) {
		fs_log(c, "%s: cannot list its gaps: %s", name, cc ? err : "no cache");
		return;
	}
	for (size_t i = 0; i < n && i < FS_LOG_GAPS; i++) {
		char from[40], to[40];
		cache_time_format(g[i].start, from, sizeof(from));
		cache_time_format(g[i].end, to, sizeof(to));
		fs_log(c, "%s: gap %s to %s, peer %s: %s (%lld records seen)", name, from, to,
		       g[i].peer, g[i].reason, (long long)g[i].seen);
	}
	if (n > FS_LOG_GAPS)
		fs_log(c, "%s: and %zu more gaps (query.json lists them all)", name,
		       n - FS_LOG_GAPS);
	free(g);
}

int fs_static_file(struct fs_ctx *c, const struct fs_node *n, char **text, size_t *len)
{
	static const enum cache_table tables[FS_NCFILES] = {0, CACHE_APPS, CACHE_GROUPS,
							     CACHE_EXPORTERS};
	int rc = 0;

	*text = NULL;
	if (n->kind == FS_README) {
		size_t held_n, cap = sizeof(readme_text) + 3 * PATH_MAX + 512;
		uint64_t held;
		char *t = malloc(cap);
		if (!t)
			return -ENOMEM;
		fs_snapshots_held(c, &held_n, &held);
		snprintf(t, cap,
			 "%s\nCollector: %s\nCache: %s\nLog: %s\n"
			 "Snapshots: %zu folder%s, %.1f MiB on disk (deleted files held open), "
			 "at most %.1f MiB (-o snapshot_max=)\n",
			 readme_text, c->url, c->cache_dir, c->log_path, held_n,
			 held_n == 1 ? "" : "s", (double)held / 1048576.0,
			 (double)c->snap_max / 1048576.0);
		*text = t;
	} else if (n->kind == FS_COLLECTOR_FILE && n->file == FS_C_INFO) {
		rc = info_json(c, text);
	} else if (n->kind == FS_COLLECTOR_FILE) {
		size_t size = 0;
		FILE *m = open_memstream(text, &size);
		if (!m)
			return -ENOMEM;
		mtx_lock(&c->small_lock);
		struct cache *cc = small_open(c);
		rc = cc ? cache_render_lookup(cc, tables[n->file], m, NULL) : -EIO;
		mtx_unlock(&c->small_lock);
		fclose(m);
	} else {
		return -ENOENT;
	}
	if (rc) {
		free(*text);
		*text = NULL;
		return rc;
	}
	*len = strlen(*text);
	return 0;
}

/* ---- options ----------------------------------------------------------------- */

enum { KEY_TOKEN };

/* Only the token's refusal is fuse_opt's: every other -o reaches opt_proc,
 * which takes the table's (fs_prog) and leaves the rest to FUSE. */
static const struct fuse_opt opt_spec[] = {
	FUSE_OPT_KEY("token=", KEY_TOKEN),
	FUSE_OPT_END,
};

enum { FS_K_OTHER, FS_K_HELP, FS_K_VERSION, FS_K_MAN };

#define AT(f) offsetof(struct fs_opts, f)
#define TEXT(nm, a, f, h, ...) \
	{.name = nm, .type = OPTTAB_TEXT, .arg = a, .help = h, .at = AT(f), __VA_ARGS__}
#define PASS(nm, a, h, ...) \
	{.name = nm, .type = OPTTAB_FLAG, .arg = a, .help = h, .at = OPTTAB_NOWHERE, \
	 .flags = OPTTAB_PASS | OPTTAB_VERBATIM, __VA_ARGS__}

/* flowfs's options: --help, --man and opt_proc read this table only. */
static const struct opttab fs_opts_table[] = {
	TEXT("token_file", "FILE", token_file, FETCH_HELP_TOKEN_FILE,
	     .def_text = "$FLOWFS_TOKEN"),
	TEXT("cache", "DIR", cache, FETCH_HELP_CACHE, .def_text = FETCH_DEF_CACHE),
	TEXT("tz", "ZONE", tz, "the zone of the day folders and of the times in files",
	     .def_text = "UTC"),
	TEXT("cache_url", "CONNINFO", cache_url, FETCH_HELP_CACHE_URL,
	     .def_text = FETCH_DEF_CACHE_URL),
	FETCH_OPTTAB(PG_HEARTBEAT, "pg_heartbeat", FS_K_OTHER, AT(pg_heartbeat)),
	FETCH_OPTTAB(PG_EXPIRY, "pg_expiry", FS_K_OTHER, AT(pg_expiry)),
	FETCH_OPTTAB(LIVE_TTL, "live_ttl", FS_K_OTHER, AT(live_ttl)),
	FETCH_OPTTAB(MAX_INFLIGHT, "max_inflight", FS_K_OTHER, AT(max_inflight)),
	{.name = "max_queries", .type = OPTTAB_INT, .arg = "N", .lo = 1, .hi = 64, .def = 2,
	 .help = "queries at once, mount-wide; more wait their turn", .at = AT(max_queries)},
	FETCH_OPTTAB(STALL_TIMEOUT, "stall_timeout", FS_K_OTHER, AT(stall_timeout)),
	FETCH_OPTTAB(REQUEST_TIMEOUT, "request_timeout", FS_K_OTHER, AT(request_timeout)),
	FETCH_OPTTAB(RETRIES, "retries", FS_K_OTHER, AT(retries)),
	FETCH_OPTTAB(CONNECT_TIMEOUT, "connect_timeout", FS_K_OTHER, AT(connect_timeout)),
	TEXT("ca_file", "FILE", ca_file, FETCH_HELP_CA_FILE),
	{.name = "insecure", .type = OPTTAB_FLAG, .help = FETCH_HELP_INSECURE, .at = AT(insecure)},
	TEXT("driver", "NAME", driver, FETCH_HELP_DRIVER, .flags = OPTTAB_DYNAMIC),
	TEXT("tenant", "ID", tenant, FETCH_HELP_TENANT),
	FETCH_OPTTAB(MAX_RECORDS, "max_records", FS_K_OTHER, AT(max_records)),
	{.name = "retention_days", .type = OPTTAB_INT, .arg = "N", .lo = 1, .hi = 36500,
	 .def = 90, .help = "days a subject folder lists when the collector does not say (sna); "
	 "any past day can be entered by name", .at = AT(retention_days)},
	TEXT("files_tz", "ZONE", files_tz, FETCH_HELP_FILES_TZ, .def_text = "-o tz"),
	TEXT("profile", "ID", profile, FETCH_HELP_PROFILE, .def_text = FETCH_DEF_PROFILE),
	TEXT("channels", "A,B", channels, FETCH_HELP_CHANNELS, .def_text = FETCH_DEF_CHANNELS),
	TEXT("collector_tz", "ZONE", collector_tz, FETCH_HELP_COLLECTOR_TZ, .def_text = "UTC"),
	FETCH_OPTTAB(ACTIVE_TIMEOUT, "active_timeout", FS_K_OTHER, AT(active_timeout)),
	TEXT("nfdump", "PROGRAM", nfdump, FETCH_HELP_NFDUMP, .def_text = FETCH_DEF_NFDUMP),
	TEXT("ssh_config", "FILE", ssh_config, FETCH_HELP_SSH_CONFIG),
	TEXT("identity", "FILE", identity, FETCH_HELP_IDENTITY),
	TEXT("known_hosts", "FILE", known_hosts, FETCH_HELP_KNOWN_HOSTS,
	     .def_text = FETCH_DEF_KNOWN_HOSTS),
	TEXT("snapshot_max", "SIZE", snapshot_max, "the disk the open snapshots may hold: bytes, "
	     "or a number with K, M or G (binary: 512M is 512 MiB), at least 1M",
	     .def_text = "a quarter of the cache disk's free space, 64M to 2G"),
	TEXT("log_level", "L", log_level, "how much flowfs.log says: error (failures only), "
	     "info (also the mount, the unmount and each query's end) or debug (also each "
	     "window asked)", .def_text = "info", .values = "error, info or debug"),
	PASS("-o allow_other", NULL, "FUSE's: let other users read the tree (needs "
	     "user_allow_other in /etc/fuse.conf)"),
	PASS("-f", NULL, "stay in the foreground, and log to stderr too"),
	PASS("-h, --help", NULL, "this help (and FUSE's options), and exit", .key = FS_K_HELP),
	PASS("-V, --version", NULL, "the version, and the libraries', and exit",
	     .key = FS_K_VERSION),
	PASS("--man", NULL, "the man page (roff) on stdout, and exit", .key = FS_K_MAN),
};

static const struct opttab_example fs_examples[] = {
	{"Mount a collector, the token in a private file, days in Berlin's zone:",
	 "flowfs -o token_file=~/.flowfs-token,tz=Europe/Berlin https://collector.example /flows\n"
	 "cat /flows/192.0.2.10/2026-11-27/flows.csv\n"
	 "fusermount3 -u /flows"},
	{"The same from /etc/fstab (the token in a root-only file):",
	 "https://collector.example  /flows  fuse.flowfs  token_file=/etc/flowfs/token,"
	 "cache=/var/cache/flowfs,tz=Europe/Berlin,allow_other,_netdev  0 0"},
	{"One query without a mount, into one file (flowfetch(1), the same cache):",
	 "flowfetch https://collector.example --ip 192.0.2.10 \\\n"
	 "    --from 2026-11-27 --to 2026-11-27 -o case-4711/192.0.2.10.csv"},
};

static const struct opttab_prog fs_prog = {
	.name = "flowfs", .section = 8, .version = FLOWFS_VERSION,
	.summary = "the flows of a collector, as files",
	.synopsis = "[-f] [-o opt,...] URL MOUNTPOINT",
	.description =
		"flowfs mounts a flow collector as a read-only tree: "
		"MOUNTPOINT/<ip>/<yyyy-mm-dd>/flows.csv holds every flow of that address that "
		"started that day, fetched from the collector when a file is first opened, "
		"losslessly, and kept in a cache.\n"
		"\n"
		"A folder <from>--<to> is any range (2026-11-27T10:00--2026-11-27T12:30), "
		"a prefix is written with _ for / (198.51.100.0_24), and <a>+<b> are the flows "
		"between two parties. Each query folder holds flows.csv, flows.ndjson, "
		"flows.sqlite, summary.txt, timeline.svg, query.json and SHA256SUMS. README.txt "
		"at the top says more; the log is flowfs.log in the cache directory.\n"
		"\n"
		"The options are parsed and the collector probed before the mount: a bad URL, "
		"token or option ends the command with a message and a non-zero status. Unmount "
		"with fusermount3 -u MOUNTPOINT (or umount as root).\n",
	.style = OPTTAB_FUSE, .opts = fs_opts_table,
	.nopts = sizeof(fs_opts_table) / sizeof(fs_opts_table[0]),
	.examples = fs_examples, .nexamples = sizeof(fs_examples) / sizeof(fs_examples[0]),
	.files = "$XDG_CACHE_HOME/flowfs\tthe cache directory (-o cache=): one SQLite database "
		 "per collector, shared with flowfetch\n"
		 "$XDG_CACHE_HOME/flowfs/flowfs.log\tthe mount's log (-o log_level=)\n"
		 "/etc/fstab\tmounts at boot: type fuse.flowfs, the options after it",
	.see_also = "flowfetch(1), flowsim(1), fusermount3(1), mount.fuse3(8), fstab(5)",
	.footer = "Unmount with: fusermount3 -u MOUNTPOINT\n",
	.values = fetch_driver_values,
};

/* flowfs --version: its own, and the libraries it runs with. */
static void fs_version(void)
{
	char libs[160];

	fetch_versions(libs, sizeof(libs));
	printf("flowfs %s\nlibfuse %s, %s\n", FLOWFS_VERSION, fuse_pkgversion(), libs);
}

/* fuse_opt's callback: data is the struct fs_opts being filled.  An -o
 * option of the table is stored (its value checked: the message on
 * stderr, -1); any other is FUSE's (1, kept). */
static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct fs_opts *ps = data;
	char err[OPTTAB_ERRLEN];

	(void)outargs;
	switch (key) {
	case KEY_TOKEN:
		fprintf(stderr, "flowfs: the token must come from -o token_file= or FLOWFS_TOKEN, "
				"never the command line (it would show in the process list)\n");
		return -1;
	case FUSE_OPT_KEY_NONOPT:
		if (ps->nonopt++ == 0) {
			ps->url = strdup(arg);
			return 0;	/* ours: the URL */
		}
		return 1;		/* the mount point, for fuse_parse_cmdline */
	case FUSE_OPT_KEY_OPT: {
		size_t n = strcspn(arg, "=");
		const struct opttab *t = opttab_find(&fs_prog, arg, n);
		if (!t || (t->flags & OPTTAB_PASS))
			return 1;
		if (!t->arg != !arg[n]) {
			fprintf(stderr, "flowfs: -o %.*s %s\n", (int)n, arg,
				t->arg ? "needs a value (-o NAME=VALUE)" : "takes no value");
			return -1;
		}
		if (opttab_store(t, OPTTAB_FUSE, ps, arg[n] ? arg + n + 1 : NULL, err)) {
			fprintf(stderr, "flowfs: %s\n", err);
			return -1;
		}
		return 0;
	}
	default:
		return 1;
	}
}

/* The bound on the snapshots' bytes when -o snapshot_max= is not given:
 * a quarter of 'free_bytes' (the cache's filesystem at mount), at most
 * 2 GiB, at least 64 MiB. */
#define FS_SNAP_DEFAULT_MAX (2ULL << 30)
#define FS_SNAP_DEFAULT_MIN (64ULL << 20)
#define FS_SNAP_MIN (1ULL << 20)
static uint64_t snap_max_default(uint64_t free_bytes)
{
	uint64_t q = free_bytes / 4;

	return q > FS_SNAP_DEFAULT_MAX ? FS_SNAP_DEFAULT_MAX
				       : q < FS_SNAP_DEFAULT_MIN ? FS_SNAP_DEFAULT_MIN : q;
}

/* A size: decimal bytes, or a number followed by K, M or G (binary, an
 * optional "iB" or "B" after it: 512M, 512MiB); at least 1 MiB, at most
 * 2^50.  0, or -EINVAL for anything else (*out untouched). */
static int size_parse(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: break;
	}
	if (shift && strcmp(end, "iB") != 0 && strcmp(end, "B") != 0 && *end)
		return -EINVAL;
	if (!shift && *end)
		return -EINVAL;
	if (v > (1ULL << 50) >> shift || (v << shift) < FS_SNAP_MIN)
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

/* Is 'inner' the same as, or below, 'outer' (both absolute, resolved)? */
static bool path_within(const char *inner, const char *outer)
{
	size_t n = strlen(outer);
	return strncmp(inner, outer, n) == 0 && (inner[n] == '\0' || inner[n] == '/' ||
						  (n == 1 && outer[0] == '/'));
}

/* Resolve as much of a path as exists (the cache dir may not yet). */
static void resolve(const char *path, char *out)
{
	char tmp[PATH_MAX], tail[PATH_MAX] = "";

	snprintf(tmp, sizeof(tmp), "%s", path);
	while (!realpath(tmp, out)) {
		char *slash = strrchr(tmp, '/');
		if (!slash || slash == tmp) {
			snprintf(out, PATH_MAX, "%s", path);
			return;
		}
		char t2[PATH_MAX];
		snprintf(t2, sizeof(t2), "%s%s", slash, tail);
		snprintf(tail, sizeof(tail), "%s", t2);
		*slash = '\0';
	}
	size_t n = strlen(out);
	snprintf(out + n, PATH_MAX - n, "%s", tail);
}

/* Undo the octal escapes of a /proc/self/mountinfo field (\040 for a
 * space, \011, \012, \134) in place. */
static void mountinfo_unescape(char *s)
{
	char *w = s;

	for (const char *r = s; *r; w++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w = *r++;
		}
	}
	*w = '\0';
}

/*
 * Is a FUSE filesystem mounted at exactly 'mnt' (absolute, resolved)?
 * From /proc/self/mountinfo: 1 with its type ("fuse.flowfs") and source
 * (flowfs's is the collector's URL) in type and source, cut to their
 * lengths; 0 when none is; -errno when the table cannot be read (the
 * caller says so).  A line longer than the buffer is passed over (its
 * paths are longer than any mount point flowfs takes).
 */
static int fuse_mounted_at(const char *mnt, char *type, size_t tlen, char *source, size_t slen)
{
	size_t cap = 5 * PATH_MAX;
	char *line = malloc(cap);
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int rc = 0;

	if (!line || !f) {
		rc = line ? -errno : -ENOMEM;
		goto out;
	}
	while (rc == 0 && fgets(line, (int)cap, f)) {
		char *nl = strchr(line, '\n'), *save = NULL, *field[5], *tail;
		int n = 0;
		if (!nl) {		/* too long: skip the rest of it */
			int ch;
			while ((ch = fgetc(f)) != EOF && ch != '\n')
				;
			continue;
		}
		*nl = '\0';
		/* id parent maj:min root mountpoint options [optional...] - type source super */
		tail = strstr(line, " - ");
		if (!tail)
			continue;
		*tail = '\0';
		tail += 3;
		for (char *t = strtok_r(line, " ", &save); t && n < 5; t = strtok_r(NULL, " ", &save))
			field[n++] = t;
		if (n < 5)
			continue;
		mountinfo_unescape(field[4]);
		char *ftype = strtok_r(tail, " ", &save), *fsrc = strtok_r(NULL, " ", &save);
		if (strcmp(field[4], mnt) != 0 || !ftype || strncmp(ftype, "fuse", 4) != 0)
			continue;
		mountinfo_unescape(ftype);
		snprintf(type, tlen, "%s", ftype);
		if (fsrc)
			mountinfo_unescape(fsrc);
		snprintf(source, slen, "%s", fsrc ? fsrc : "");
		rc = 1;
	}
out:
	if (f)
		fclose(f);
	free(line);
	return rc;
}

/*
 * The cache directory of the flowfs mounted at mnt, as its README.txt
 * says ("Cache: DIR"), into out (len bytes); "" when it cannot be read
 * (another user's mount, not allow_other).  Never fails.
 */
static void mounted_cache_dir(const char *mnt, char *out, size_t len)
{
	char path[PATH_MAX + 16], line[PATH_MAX + 16];
	FILE *f;

	out[0] = '\0';
	snprintf(path, sizeof(path), "%s/README.txt", mnt);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Cache: ", 7) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, len, "%s", line + 7);
			break;
		}
	}
	fclose(f);
}

/*
 * Refuse a mount point where a FUSE filesystem is mounted already: a
 * second flowfs there would hide the first, with another cache, and
 * exit 0 (issue 13, item 2).  0 when none is (or the mount table cannot
 * be read: said on stderr, and the mount goes on); -EBUSY with the
 * message on stderr naming the one mounted and the command that unmounts
 * it.
 */
static int refuse_mounted(const char *mnt)
{
	char type[64], source[2200], cache[PATH_MAX + 16];
	int rc = fuse_mounted_at(mnt, type, sizeof(type), source, sizeof(source));

	if (rc < 0) {
		fprintf(stderr, "flowfs: warning: cannot read /proc/self/mountinfo (%s): %s is not "
				"checked for a mount already there\n", strerror(-rc), mnt);
		return 0;
	}
	if (rc == 0)
		return 0;
	if (strcmp(type, "fuse.flowfs") == 0) {
		mounted_cache_dir(mnt, cache, sizeof(cache));
		fprintf(stderr, "flowfs: %s: a flowfs is already mounted here (%s%s%s); unmount it "
				"first with fusermount3 -u %s\n", mnt, source, cache[0] ? ", cache " : "",
			cache, mnt);
	} else {
		fprintf(stderr, "flowfs: %s: a FUSE filesystem (%s, %s) is already mounted here; "
				"unmount it first with fusermount3 -u %s\n", mnt, type, source, mnt);
	}
	return -EBUSY;
}

/* The engine's log lines (an audit pass, a window asked) into the
 * mount's log at their level, each naming its folder: the tag is the
 * folder's node, which folder_worker sets as its query's log_tag. */
static void engine_log_line(void *arg, int level, void *tag, const char *line)
{
	char path[FS_PATH_LEN] = "flowfs";

	if (tag)
		fs_node_path(tag, path, sizeof(path));
	fs_log_at(arg, level, "%s: %s", path, line);
}

static int fill_engine_opts(struct fs_ctx *c, struct fetch_opts *fo)
{
	memset(fo, 0, sizeof(*fo));
	fo->url = c->url;
	fo->token = c->token[0] ? c->token : NULL;
	fo->driver = c->o.driver;
	fo->cache_dir = c->cache_dir;
	fo->max_inflight = (unsigned)c->o.max_inflight;
	fo->stall_s = c->o.stall_timeout;
	fo->request_timeout_ms = (long)c->o.request_timeout * 1000;
	fo->max_retries = (unsigned)c->o.retries;
	fo->live_ttl_ms = (int64_t)c->o.live_ttl * 1000;
	fo->compress = -1;
	fo->insecure = c->o.insecure;
	fo->ca_file = c->o.ca_file;
	fo->tenant = c->o.tenant;
	fo->max_records = c->o.max_records > 0 ? (uint32_t)c->o.max_records : 0;
	fo->files_tz = c->o.files_tz;
	fo->profile = c->o.profile;
	fo->channels = c->o.channels;
	fo->collector_tz = c->o.collector_tz;
	fo->nfdump = c->o.nfdump;
	fo->active_timeout_s = (unsigned)c->o.active_timeout;
	fo->connect_timeout_ms = (long)c->o.connect_timeout * 1000;
	fo->ssh_config = c->o.ssh_config;
	fo->identity = c->o.identity;
	fo->known_hosts = c->o.known_hosts;
	fo->cache_url = c->o.cache_url;
	fo->pg_heartbeat_s = c->o.pg_heartbeat;
	fo->pg_expiry_s = c->o.pg_expiry;
	fo->log = engine_log_line;
	fo->log_arg = c;
	return 0;
}

/* Remove the files in the open directory dfd (renders cut short). */
static void snap_dir_empty(int dfd)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	for (struct dirent *f; (f = readdir(d));)
		if (strcmp(f->d_name, ".") != 0 && strcmp(f->d_name, "..") != 0)
			unlinkat(dfd, f->d_name, 0);
	closedir(d);
}

/* Empty and remove the snapshot directory 'name' of the cache directory
 * cfd when nobody holds its flock (a flowfs that was killed left it): 0
 * when removed, -ENOENT when it was not there, -EWOULDBLOCK when a live
 * flowfs holds it, -ENOTDIR (never followed: O_NOFOLLOW) or another
 * negative errno when it is left alone. */
static int snap_dir_remove(int cfd, const char *name)
{
	int sfd = openat(cfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int rc = 0;

	if (sfd < 0)
		return -errno;
	if (flock(sfd, LOCK_EX | LOCK_NB) != 0) {
		rc = -errno;
		goto out;
	}
	snap_dir_empty(sfd);
	if (unlinkat(cfd, name, AT_REMOVEDIR) != 0)
		rc = -errno;
out:
	close(sfd);
	return rc;
}

/* Create the directory 'name' in the cache directory cfd afresh (mkdirat:
 * never one that was there before) with mode 0700, and take its exclusive
 * flock: the open directory, or -EEXIST when the name is taken, -ESTALE
 * when another flowfs removed it meanwhile (try again), -errno otherwise. */
static int snap_dir_create(int cfd, const char *name)
{
	struct stat st;
	int fd, rc;

	if (mkdirat(cfd, name, 0700) != 0)
		return -errno;
	fd = openat(cfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESTALE : -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		/* a flowfs removing it as a killed one's took the lock first */
		rc = errno == EWOULDBLOCK ? -ESTALE : -errno;
		goto fail;
	}
	if (fstat(fd, &st) != 0 || st.st_nlink == 0) {
		rc = -ESTALE;
		goto fail;
	}
	if (fchmod(fd, 0700) != 0) {	/* whatever the umask took away */
		rc = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return rc;
}

/*
 * The snapshot directory of this mount in the cache directory, snap-PID
 * (snap-PID-N when a flowfs with the same pid in another pid namespace
 * holds that one), made afresh, in c->snap_dir and c->snap_fd, held under
 * an exclusive flock for the life of the process.  A directory of that
 * name that nobody holds (a killed flowfs that had this pid) is emptied and
 * removed first, never reused.  Then the snapshot directories of flowfs
 * processes that were killed are emptied and removed (a kill during a
 * render leaves the file being written there): a directory is stale when
 * nobody holds its lock and no process has its pid, so another mount on
 * the same cache (or an older flowfs that took no lock) keeps its own.
 * Returns 0, or -1 (logged).
 */
static int snap_dir_open(struct fs_ctx *c)
{
	char own[64];
	DIR *d;
	int fd = -ESTALE, dfd;

	for (int i = 0, n = 0; fd < 0 && n < 100; n++) {
		if (i == 0)
			snprintf(own, sizeof(own), "snap-%d", (int)getpid());
		else
			snprintf(own, sizeof(own), "snap-%d-%d", (int)getpid(), i);
		fd = snap_dir_create(c->cache_fd, own);
		if (fd == -EEXIST) {
			int r = snap_dir_remove(c->cache_fd, own);
			if (r == 0)
				fs_log_at(c, FETCH_LOG_INFO, "removed %s/%s, left by a flowfs that was killed",
					  c->cache_dir, own);
			else if (r != -ENOENT)
				i++;	/* a live flowfs's, or not a directory: another name */
		} else if (fd < 0 && fd != -ESTALE) {
			break;
		}
	}
	snprintf(c->snap_dir, sizeof(c->snap_dir), "%s/%s", c->cache_dir, own);
	if (fd < 0) {
		fs_log(c, "cannot create %s: %s", c->snap_dir, strerror(-fd));
		c->snap_dir[0] = '\0';
		return -1;
	}
	c->snap_fd = fd;
	dfd = openat(c->cache_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d && dfd >= 0)
		close(dfd);
	for (struct dirent *de; d && (de = readdir(d));) {
		long pid = strncmp(de->d_name, "snap-", 5) == 0 ? strtol(de->d_name + 5, NULL, 10) : 0;
		if (pid <= 0 || strcmp(de->d_name, own) == 0 || kill((pid_t)pid, 0) == 0 ||
		    errno != ESRCH)
			continue;
		if (snap_dir_remove(c->cache_fd, de->d_name) == 0)
			fs_log_at(c, FETCH_LOG_INFO, "removed %s/%s, left by a flowfs that was killed",
				  c->cache_dir, de->d_name);
	}
	if (d)
		closedir(d);
	return 0;
}

/*
 * Open flowfs.log in the cache directory for appending (0600 when made),
 * never through a link (O_NOFOLLOW) and only when it is a regular file of
 * the effective user: else -ELOOP or -EPERM, said on stderr, and the mount
 * is refused.  Any other failure (a full disk) is said on stderr too,
 * and flowfs goes on without a log (0).
 */
static int log_open(struct fs_ctx *c)
{
	struct stat st;
	int fd, rc;

	fd = openat(c->cache_fd, "flowfs.log",
		    O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		fprintf(stderr, "flowfs: cannot open the log %s: %s%s\n", c->log_path,
			strerror(-rc), rc == -ELOOP ? " (a symbolic link: flowfs never makes "
			"one; remove it)" : "");
		return rc == -ELOOP ? rc : 0;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		fprintf(stderr, "flowfs: the log %s is not a regular file of yours: refused\n",
			c->log_path);
		close(fd);
		return -EPERM;
	}
	c->log = fdopen(fd, "a");
	if (!c->log) {
		fprintf(stderr, "flowfs: cannot open the log %s: %s\n", c->log_path,
			strerror(errno));
		close(fd);
	}
	return 0;
}

/*
 * The command line into c->o (the table's defaults first) and *fopts:
 * -1 to go on, or the exit status when flowfs is done (0 after --help,
 * --version or --man; 2 on bad usage, said on stderr).
 */
static int fs_parse_args(struct fs_ctx *c, struct fuse_args *args,
			 struct fuse_cmdline_opts *fopts)
{
	opttab_defaults(&fs_prog, &c->o);
	for (int i = 1; i < args->argc; i++) {
		const char *a = args->argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			opttab_help(&fs_prog, stdout);
			printf("\nFUSE options:\n");
			fflush(stdout);
			fuse_lowlevel_help();
			return 0;
		}
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			fs_version();
			return 0;
		}
		if (strcmp(a, "--man") == 0) {
			opttab_man(&fs_prog, stdout);
			return 0;
		}
	}
	if (fuse_opt_parse(args, &c->o, opt_spec, opt_proc) != 0 ||
	    fuse_parse_cmdline(args, fopts) != 0)
		return 2;
	if (!c->o.url || !fopts->mountpoint) {
		fprintf(stderr, "flowfs: usage: flowfs [-f] [-o opt,...] URL MOUNTPOINT (see --help)\n");
		return 2;
	}
	c->o.foreground = fopts->foreground;
	return -1;
}

/* -o log_level= into c->log_level: 0, or -EINVAL (said). */
static int fs_log_level(struct fs_ctx *c)
{
	static const char *const levels[] = {"error", "info", "debug"};
	int l = 0;

	_Static_assert(FETCH_LOG_ERROR == 0 && FETCH_LOG_INFO == 1 && FETCH_LOG_DEBUG == 2,
		       "levels[] follows enum fetch_log_level");
	c->log_level = FETCH_LOG_INFO;
	if (!c->o.log_level)
		return 0;
	while (l < 3 && strcmp(c->o.log_level, levels[l]) != 0)
		l++;
	if (l == 3) {
		fprintf(stderr, "flowfs: unknown log_level '%.40s' (error, info or debug)\n",
			c->o.log_level);
		return -EINVAL;
	}
	c->log_level = l;
	return 0;
}

/*
 * What the options say besides the engine's: the driver and the URL
 * (no credentials in it), snapshot_max, log_level, the zone (set in TZ
 * once: day folders and every time written use it), the token (read now,
 * in the foreground) and the cache directory (into cdir, absolute: the
 * daemon runs in /).  *drv and *bare: the driver and its URL.  0, or
 * -EINVAL with the message on stderr.
 */
static int fs_settings(struct fs_ctx *c, const struct fetch_driver **drv, const char **bare,
		       char *cdir, size_t cdirlen)
{
	char err[FETCH_ERRLEN];

	if (fetch_driver_resolve(c->o.url, c->o.driver, drv, bare, err))
		goto said;
	/* a user before '@' is a secret's place for a driver with a token (an
	 * nfdump+ssh:// URL's user is only a login name) */
	if ((*drv)->secret && fetch_url_check(c->o.url, "-o token_file=", err))
		goto said;
	if (strlen(c->o.url) >= sizeof(c->url)) {
		fprintf(stderr, "flowfs: the URL is too long\n");
		return -EINVAL;
	}
	strcpy(c->url, c->o.url);
	if (c->o.snapshot_max && size_parse(c->o.snapshot_max, &c->snap_max)) {
		fprintf(stderr, "flowfs: snapshot_max=%s is not a size: give bytes, or a number "
			"with K, M or G (binary: 512M is 512 MiB), at least 1M\n",
			c->o.snapshot_max);
		return -EINVAL;
	}
	if (fs_log_level(c))
		return -EINVAL;
	if (c->o.tz && !cache_tz_valid(c->o.tz)) {
		fprintf(stderr, "flowfs: unknown time zone '%s' (an IANA name such as Europe/Berlin)\n",
			c->o.tz);
		return -EINVAL;
	}
	setenv("TZ", c->o.tz ? c->o.tz : "UTC", 1);
	tzset();
	/* a driver that takes no token (nfdump): none is read */
	if (((*drv)->secret && fetch_token_read(c->o.token_file, c->token, sizeof(c->token), err)) ||
	    fetch_cache_dir(c->o.cache, cdir, cdirlen, err))
		goto said;
	return 0;
said:
	fprintf(stderr, "flowfs: %s\n", err);
	return -EINVAL;
}

/*
 * The mount point, resolved into mnt (PATH_MAX): not a dead mount, not a
 * live FUSE one; the cache directory (cdir, absolute) resolved into
 * c->cache_dir, not inside it.  0, or -errno said on stderr.
 */
static int fs_places(struct fs_ctx *c, const char *mountpoint, const char *cdir, char *mnt)
{
	/* a dead FUSE mount answers ENOTCONN to whatever reaches its daemon:
	 * statfs always does, stat may be answered from cached attributes */
	struct stat mst;
	struct statfs sfs;

	if (statfs(mountpoint, &sfs) != 0 || stat(mountpoint, &mst) != 0 ||
	    !realpath(mountpoint, mnt)) {
		int e = errno;
		if (e == ENOTCONN)
			fprintf(stderr, "flowfs: %s is a dead mount (its flowfs was killed); "
					"unmount it first: fusermount3 -u %s\n", mountpoint, mountpoint);
		else
			fprintf(stderr, "flowfs: mount point %s: %s\n", mountpoint, strerror(e));
		return -e;
	}
	if (refuse_mounted(mnt))
		return -EBUSY;
	resolve(cdir, c->cache_dir);
	if (path_within(c->cache_dir, mnt)) {
		fprintf(stderr, "flowfs: the cache directory %s lies inside the mount point %s\n",
			c->cache_dir, mnt);
		return -EINVAL;
	}
	return 0;
}

/*
 * The cache directory checked and opened (c->cache_fd: owner, mode, no
 * link, by the name given, which resolve() would have followed), the log
 * in it, the snapshots' bound: in the foreground, so that a refusal ends
 * the command with its message.  0, or -errno (said).
 */
static int fs_cache_room(struct fs_ctx *c, const char *cdir)
{
	char err[CACHE_ERRLEN];
	int rc;

	c->cache_fd = cache_dir_open(cdir, err);
	if (c->cache_fd < 0) {
		fprintf(stderr, "flowfs: %s\n", err);
		return c->cache_fd;
	}
	snprintf(c->log_path, sizeof(c->log_path), "%s/flowfs.log", c->cache_dir);
	if ((rc = log_open(c)))
		return rc;
	if (!c->o.snapshot_max) {
		struct statvfs vfs;
		uint64_t avail = 0;
		if (fstatvfs(c->cache_fd, &vfs) == 0)
			avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
		else
			fs_log(c, "cannot read the free space of %s: %s", c->cache_dir,
			       strerror(errno));
		c->snap_max = snap_max_default(avail);
	}
	return 0;
}

/* The probe, in the foreground (the engine opened and closed): 0, or -1
 * with the cause on stderr (and in the log: a plain-http warning). */
static int fs_probe(struct fs_ctx *c, const struct fetch_driver *drv, const char *bare,
		    struct fetch_opts *fo)
{
	char err[FETCH_ERRLEN];

	/* once, before the probe: in the log, and on stderr */
	if (c->token[0] && fetch_clear_text_warning(bare, drv->secret, err, sizeof(err))) {
		fs_log(c, "warning: %s", err);
		if (!c->o.foreground)	/* fs_log said it there with -f */
			fprintf(stderr, "flowfs: warning: %s\n", err);
	}
	if (fetch_global_init()) {
		fprintf(stderr, "flowfs: cannot initialise libcurl\n");
		return -1;
	}
	fill_engine_opts(c, fo);
	if (fetch_engine_open(fo, &c->engine, err)) {
		fprintf(stderr, "flowfs: %s\n", err);
		return -1;
	}
	fetch_engine_close(c->engine);
	c->engine = NULL;
	return 0;
}

/* The FUSE session on mnt, its signal handlers, the mount (fsname the
 * URL, its commas and backslashes escaped for fuse_opt): 0 with
 * *mounted, or -1 (said). */
static int fs_mount(struct fs_ctx *c, struct fuse_args *args, const char *mnt, bool *mounted)
{
	char fsname[2200];

	/* fsname is the URL, its commas and backslashes escaped for fuse_opt.
	 * These come after the user's -o, so they win: mount(8)'s helper
	 * mount.fuse3 passes "rw,...,dev,suid" unless told nodev or nosuid
	 * (libfuse takes those mount options); the tree stays read-only and
	 * its files are never devices or set-user-ID programs, as when
	 * fusermount3 mounts it for a user. */
	size_t o = (size_t)snprintf(fsname, sizeof(fsname),
				    "-osubtype=flowfs,ro,nosuid,nodev,default_permissions,fsname=");
	for (const char *p = c->url; *p && o + 3 < sizeof(fsname); p++) {
		if (*p == ',' || *p == '\\')
			fsname[o++] = '\\';
		fsname[o++] = *p;
	}
	fsname[o] = '\0';
	fuse_opt_add_arg(args, fsname);
	c->se = fuse_session_new(args, &fs_ops, sizeof(fs_ops), c);
	if (!c->se || fuse_set_signal_handlers(c->se) != 0)
		return -1;
	if (fuse_session_mount(c->se, mnt) != 0) {
		fprintf(stderr, "flowfs: cannot mount on %s (a stale mount there? try fusermount3 -u %s)\n",
			mnt, mnt);
		return -1;
	}
	*mounted = true;
	return 0;
}

/*
 * After detaching: the descriptor limit raised (every rendered file of a
 * snapshot is an open descriptor, and every request a socket), the
 * engine and its threads, the snapshot room, then FUSE's loop until the
 * unmount.  The exit status: 0 after an unmount, 1 on a failure.
 */
static int fs_serve(struct fs_ctx *c, struct fetch_opts *fo, const char *mnt, int clone_fd)
{
	struct fuse_loop_config *lc;
	struct rlimit rl;
	char err[FETCH_ERRLEN];
	int ret;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (fetch_engine_open(fo, &c->engine, err)) {
		fprintf(stderr, "flowfs: %s\n", err);
		return 1;
	}
	explicit_bzero(c->token, sizeof(c->token));
	if (snap_dir_open(c))
		return 1;
	fs_log_at(c, FETCH_LOG_INFO, "mounted %s on %s (cache %s, log_level %s); snapshots may "
		  "hold %.1f MiB (snapshot_max)", c->url, mnt, c->cache_dir,
		  c->o.log_level ? c->o.log_level : "info", (double)c->snap_max / 1048576.0);
	lc = fuse_loop_cfg_create();
	if (!lc)
		return 1;
	fuse_loop_cfg_set_max_threads(lc, 64);
	fuse_loop_cfg_set_clone_fd(lc, (unsigned)clone_fd);
	/* the loop returns the signal that ended it: an unmount, not a failure */
	ret = fuse_session_loop_mt(c->se, lc) < 0 ? 1 : 0;
	fuse_loop_cfg_destroy(lc);
	fs_log_refused_flush(c);
	fs_log_at(c, FETCH_LOG_INFO, "unmounting");
	fs_folders_shutdown(c);
	fs_log_at(c, FETCH_LOG_INFO, "unmounted %s", mnt);
	return ret;
}

/* Everything the mount held, given back (a part never made is skipped). */
static void fs_teardown(struct fs_ctx *c, bool mounted)
{
	if (c->se) {
		if (mounted)
			fuse_session_unmount(c->se);
		fuse_remove_signal_handlers(c->se);
		fuse_session_destroy(c->se);
	}
	if (c->small_cache)
		cache_close(c->small_cache);
	if (c->engine)
		fetch_engine_close(c->engine);
	if (c->snap_fd >= 0) {
		unlinkat(c->cache_fd, strrchr(c->snap_dir, '/') + 1, AT_REMOVEDIR);
		close(c->snap_fd);
	}
	if (c->cache_fd >= 0)
		close(c->cache_fd);
	if (c->log)
		fclose(c->log);
	for (size_t i = 0; i < c->capinodes; i++)
		free(c->inodes[i]);
	free(c->inodes);
	explicit_bzero(c->token, sizeof(c->token));
	free(c->o.url);
	for (size_t i = 0; i < fs_prog.nopts; i++)
		if (fs_opts_table[i].type == OPTTAB_TEXT && fs_opts_table[i].at != OPTTAB_NOWHERE)
			free(*(char **)(void *)((char *)&c->o + fs_opts_table[i].at));
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts fopts;
	static struct fs_ctx ctx;
	struct fs_ctx *c = &ctx;
	struct fetch_opts fo;
	const struct fetch_driver *drv;
	const char *bare;
	char err[FETCH_ERRLEN], mnt[PATH_MAX], cdir[PATH_MAX];
	int ret = 1;
	bool mounted = false;

	/* A daemon of short-lived threads (a worker a folder, two a render):
	 * glibc would give them up to 8 malloc arenas a core, each keeping its
	 * peak; the soak benchmark saw RSS climb 228 MiB an hour that way, and
	 * stay flat with one arena.  Two keep the decoders from contending. */
	mallopt(M_ARENA_MAX, 2);
	/* first of all: no core dump, no tracing by the user's other
	 * processes, before a secret is read */
	if (fetch_no_dump(err)) {
		fprintf(stderr, "flowfs: %s\n", err);
		return 1;
	}
	memset(&fopts, 0, sizeof(fopts));
	mtx_init(&c->lock);
	mtx_init(&c->small_lock);
	pthread_mutex_init(&c->refused.lock, NULL);
	pthread_cond_init(&c->queue_cond, NULL);
	c->uid = getuid();
	c->gid = getgid();
	c->cache_fd = c->snap_fd = -1;

	ret = fs_parse_args(c, &args, &fopts);
	if (ret >= 0)
		goto out;
	ret = 1;
	if (fs_settings(c, &drv, &bare, cdir, sizeof(cdir)) || fs_places(c, fopts.mountpoint, cdir, mnt) ||
	    fs_cache_room(c, cdir) || fs_probe(c, drv, bare, &fo) || fs_mount(c, &args, mnt, &mounted))
		goto out;
	fuse_daemonize(fopts.foreground);
	/* after detaching: the snapshot room, the engine and its threads */
	ret = fs_serve(c, &fo, mnt, fopts.clone_fd);
out:
	fs_teardown(c, mounted);
	free(fopts.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
