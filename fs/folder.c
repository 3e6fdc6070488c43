/*
 * folder.c - query folders: one query each (single flight), a snapshot of
 * rendered files, and the readers waiting for them.
 *
 * A folder's worker thread runs its query once for any number of readers,
 * then renders the files readers ask for, one at a time, into the
 * snapshot directory; each rendered file is opened and at once unlinked,
 * so the snapshot is a set of descriptors: exact sizes, identical bytes on
 * every read, nothing left on disk after a crash, and an open handle keeps
 * its generation (a dup of the descriptor) when a live folder is refreshed.
 * SHA256SUMS is computed over exactly the bytes served: a text file's
 * digest is taken as it is written (render_sink), flows.sqlite's bytes are
 * read back from its descriptor.
 */
#include "arr.h"
#include "fs.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { F_IDLE, F_RUNNING, F_READY, F_FAILED };

struct fs_waiter {
	struct fs_waiter *next;
	fuse_req_t req;
	int file;
	bool open;
	struct fuse_file_info fi;
	uint64_t ino;
};

/* A query's counters as they stood when it ended (fetch_progress's,
 * without the atomics): what .progress shows of the fetch behind a
 * snapshot. */
struct fs_tally {
	uint64_t windows_done, windows_planned, records, requests, retries, gaps, rejected;
};

struct snap_file {
	int fd;
	uint64_t size;
	int err;
	bool hashed;		/* sha holds the SHA-256 of its bytes (render_sink) */
	unsigned char sha[32];
};

struct fs_folder {
	uint64_t ino;
	struct fs_node node;
	uint64_t serial;	/* unique in the mount: names its snapshot files */
	int state;
	bool worker;		/* a worker serves this folder's waiters */
	bool joinable;		/* 'thread' is a worker not yet joined */
	bool has_slot;		/* holds one of the max_queries slots */
	bool queued;		/* waits for a slot, in c->queue_head's list */
	struct fs_folder *qnext;	/* the next in the queue */
	pthread_t thread;
	unsigned gen;
	int64_t made_ms;
	int64_t made_seq;	/* the cache's coverage mark at made_ms */
	bool live;
	int err;
	char cause[FETCH_ERRLEN];
	struct fetch_progress prog;
	struct fetch_result res;
	/* the snapshot's fetch (kept with res when a dropped snapshot is made
	 * again from the cache): its counters, the flows it holds, and for a
	 * live folder the time it is complete up to */
	struct fs_tally tally;
	int64_t flows;
	int64_t as_of_ms;
	struct snap_file files[FS_NFILES];
	struct fs_waiter *waiters;
	atomic_int cancel;
	uint64_t used;		/* when last served (the mount's counter) */
	unsigned opens;		/* handles open on its files (fs_handle.folder) */
	bool big_logged;	/* said that this generation alone passes snapshot_max */
};

/* Snapshots kept open: each is up to seven descriptors and its (deleted)
 * files on disk.  Past this many, or past c->snap_max bytes in all, the
 * least recently used idle folder's snapshot is dropped (snapshots_trim);
 * its next reader renders it again from the cache (no request). */
#define SNAPSHOTS_MAX 24

/*
 * Work that may not be done under c->lock (fs.h, LOCKING), collected
 * while it is held and done once it is let go (later_run): log lines,
 * and snapshot descriptors to close (the last close of a deleted file
 * frees its blocks).  Bounded: a line past FS_LATER_LINES is counted and
 * the count logged; a descriptor past FS_LATER_FDS is closed at once.
 */
#define FS_LATER_LINES 8
#define FS_LATER_FDS (4 * FS_NFILES)
struct fs_later {
	struct {
		int level;
		char text[512];
	} line[FS_LATER_LINES];
	size_t nlines, lost;
	int fd[FS_LATER_FDS];
	size_t nfds;
};

/* A log line for later, at FETCH_LOG_* level 'level' (fs_log_at's). */
static void later_log(struct fs_later *l, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void later_log(struct fs_later *l, int level, const char *fmt, ...)
{
	va_list ap;

	if (l->nlines == FS_LATER_LINES) {
		l->lost++;
		return;
	}
	l->line[l->nlines].level = level;
	va_start(ap, fmt);
	vsnprintf(l->line[l->nlines].text, sizeof(l->line[0].text), fmt, ap);
	va_end(ap);
	l->nlines++;
}

/* A descriptor to close later (at once when l is full). */
static void later_close(struct fs_later *l, int fd)
{
	if (l->nfds < FS_LATER_FDS)
		l->fd[l->nfds++] = fd;
	else
		close(fd);
}

/* Do what l holds, and empty it.  Caller does not hold c->lock. */
static void later_run(struct fs_ctx *c, struct fs_later *l)
{
	mtx_assert_not_held(&c->lock);
	for (size_t i = 0; i < l->nfds; i++)
		close(l->fd[i]);
	for (size_t i = 0; i < l->nlines; i++)
		fs_log_at(c, l->line[i].level, "%s", l->line[i].text);
	if (l->lost)
		fs_log(c, "%zu more lines about snapshots were not logged", l->lost);
	l->nlines = l->lost = l->nfds = 0;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The query folder's node of any node at or below it. */
static struct fs_node folder_node(const struct fs_node *n)
{
	struct fs_node qn = *n;

	qn.kind = FS_QUERY;
	qn.file = 0;
	return qn;
}

/* The folder of a query node when the mount holds it, else NULL: found
 * by its inode number and then its canonical path, so that two folders
 * whose numbers collide are never taken for each other.  Caller holds
 * c->lock. */
static struct fs_folder *folder_find(struct fs_ctx *c, const struct fs_node *n)
{
	struct fs_node qn = folder_node(n);
	uint64_t ino = fs_node_ino(&qn);

	mtx_assert_held(&c->lock);
	for (size_t i = 0; i < c->nfolders; i++)
		if (c->folders[i]->ino == ino && fs_node_same(&c->folders[i]->node, &qn))
			return c->folders[i];
	return NULL;
}

/* Whether the mount may forget a folder: idle, with no snapshot ever made
 * (no provenance to keep, no cause of a failure to show), no reader, no
 * worker, no place in the queue.  Such a folder is what was left by
 * readers who went away before its query ran. */
static bool folder_droppable(const struct fs_folder *f)
{
	return f->state == F_IDLE && f->gen == 0 && !f->waiters && !f->worker && !f->queued &&
	       !f->has_slot && !f->opens;
}

/* Free every droppable folder (joining its ended worker, which takes no
 * time: see folder_worker), so that the table holds only folders with
 * something to keep.  Caller holds c->lock; never fails. */
static void folders_sweep(struct fs_ctx *c)
{
	mtx_assert_held(&c->lock);
	for (size_t i = 0; i < c->nfolders;) {
		struct fs_folder *f = c->folders[i];
		if (!folder_droppable(f)) {
			i++;
			continue;
		}
		if (f->joinable)
			pthread_join(f->thread, NULL);
		free(f);
		c->folders[i] = c->folders[--c->nfolders];
		c->folders[c->nfolders] = NULL;
	}
}

/* The folder of a query node, made on first use (after the droppable
 * ones are freed); NULL when out of memory.  Caller holds c->lock. */
static struct fs_folder *folder_get(struct fs_ctx *c, const struct fs_node *n)
{
	struct fs_folder *f = folder_find(c, n);

	if (f)
		return f;
	folders_sweep(c);
	if (arr_grow(&c->folders, &c->capfolders, c->nfolders + 1, sizeof(*c->folders)))
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->node = folder_node(n);
	f->ino = fs_node_ino(&f->node);
	f->serial = ++c->folder_serial;
	for (int i = 0; i < FS_NFILES; i++)
		f->files[i].fd = -1;
	c->folders[c->nfolders++] = f;
	return f;
}

static bool folder_is_live(struct fs_ctx *c, const struct fs_folder *f)
{
	struct fs_clock clk;
	const struct fetch_info *info = fetch_engine_info(c->engine);

	fs_clock_now(c, &clk);
	return f->node.q.end > clk.now_ms - (int64_t)info->export_delay_s * 1000;
}

/* The time a live folder fetched by res is complete up to: the
 * collector's export edge (its clock when the query began, less the
 * export delay, to the second below), within the folder's range. */
static int64_t folder_as_of(struct fs_ctx *c, const struct fs_folder *f,
			    const struct fetch_result *res)
{
	const struct fetch_info *info = fetch_engine_info(c->engine);
	/* to the second below: the milliseconds since the probe say nothing */
	int64_t edge = res->collector_now_ms - (int64_t)info->export_delay_s * 1000;
	edge -= edge % 1000;

	return edge < f->node.q.start ? f->node.q.start : edge > f->node.q.end ? f->node.q.end : edge;
}

static struct fs_tally tally_of(const struct fetch_progress *p)
{
	struct fs_tally t = {
		.windows_done = atomic_load(&p->windows_done),
		.windows_planned = atomic_load(&p->windows_planned),
		.records = atomic_load(&p->records),
		.requests = atomic_load(&p->requests),
		.retries = atomic_load(&p->retries),
		.gaps = atomic_load(&p->gaps),
		.rejected = atomic_load(&p->rejected),
	};
	return t;
}

static double attr_timeout(const struct fs_folder *f)
{
	return f->live ? 1.0 : 3600.0;
}

static void fill_stat(struct fs_ctx *c, const struct fs_folder *f, int file, uint64_t ino,
		      struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_uid = c->uid;
	st->st_gid = c->gid;
	st->st_size = (off_t)f->files[file].size;
	st->st_blksize = 65536;
	st->st_blocks = (blkcnt_t)((f->files[file].size + 511) / 512);
	st->st_mtime = st->st_ctime = st->st_atime = (time_t)(f->made_ms / 1000);
}

/* Answer one waiter from the snapshot (caller holds c->lock). */
static void answer(struct fs_ctx *c, struct fs_folder *f, struct fs_waiter *w)
{
	struct snap_file *sf = &f->files[w->file];

	mtx_assert_held(&c->lock);
	if (sf->err) {
		fuse_reply_err(w->req, sf->err);
		return;
	}
	if (!w->open) {
		struct stat st;
		fill_stat(c, f, w->file, w->ino, &st);
		fuse_reply_attr(w->req, &st, attr_timeout(f));
		return;
	}
	struct fs_handle *h = calloc(1, sizeof(*h));
	int fd = h ? dup(sf->fd) : -1;
	if (!h || fd < 0) {
		free(h);
		fuse_reply_err(w->req, h ? EMFILE : ENOMEM);
		return;
	}
	h->fd = fd;
	h->size = sf->size;
	h->folder = f;
	f->opens++;
	w->fi.fh = (uint64_t)(uintptr_t)h;
	w->fi.keep_cache = !f->live;
	w->fi.direct_io = 0;
	if (fuse_reply_open(w->req, &w->fi) != 0) {	/* the reader went away */
		f->opens--;
		close(fd);
		free(h);
	}
}

void fs_handle_release(struct fs_ctx *c, struct fs_handle *h)
{
	if (h->folder) {
		mtx_lock(&c->lock);
		h->folder->opens--;
		mtx_unlock(&c->lock);
	}
	if (h->fd >= 0)
		close(h->fd);
	free(h->mem);
	free(h);
}

/* Answer, and drop, every waiter whose file is ready or failed; with
 * 'err', every waiter (the query failed). */
static void answer_ready(struct fs_ctx *c, struct fs_folder *f, int err)
{
	struct fs_waiter **pp = &f->waiters;

	while (*pp) {
		struct fs_waiter *w = *pp;
		if (!err && f->files[w->file].fd < 0 && !f->files[w->file].err) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		if (err)
			fuse_reply_err(w->req, err);
		else
			answer(c, f, w);
		free(w);
	}
}

/* Answer, and drop, every waiter of one file with err: the readers of a
 * render that failed for a transient cause (caller holds c->lock). */
static void answer_file_err(struct fs_folder *f, int file, int err)
{
	struct fs_waiter **pp = &f->waiters;

	while (*pp) {
		struct fs_waiter *w = *pp;
		if (w->file != file) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		fuse_reply_err(w->req, err);
		free(w);
	}
}

/* The bytes of f's rendered files (caller holds c->lock). */
static uint64_t snapshot_size(const struct fs_folder *f)
{
	uint64_t n = 0;

	for (int i = 0; i < FS_NFILES; i++)
		if (f->files[i].fd >= 0)
			n += f->files[i].size;
	return n;
}

/* Forget f's rendered files (their descriptors closed later, by 'later')
 * and take their bytes off c->snap_bytes (caller holds c->lock).  A file a
 * reader still has open keeps its own descriptor (a dup, answer()): its
 * bytes stay on disk, uncounted, until that reader closes it. */
static void snapshot_drop(struct fs_ctx *c, struct fs_folder *f, struct fs_later *later)
{
	mtx_assert_held(&c->lock);
	c->snap_bytes -= snapshot_size(f);
	f->big_logged = false;
	for (int i = 0; i < FS_NFILES; i++) {
		if (f->files[i].fd >= 0)
			later_close(later, f->files[i].fd);
		f->files[i].fd = -1;
		f->files[i].size = 0;
		f->files[i].err = 0;
		f->files[i].hashed = false;
	}
}

static bool needs_query(struct fs_ctx *c, struct fs_folder *f);

void fs_snapshots_held(struct fs_ctx *c, size_t *folders, uint64_t *bytes)
{
	mtx_lock(&c->lock);
	*folders = 0;
	for (size_t i = 0; i < c->nfolders; i++)
		if (snapshot_size(c->folders[i]) > 0)
			(*folders)++;
	*bytes = c->snap_bytes;
	mtx_unlock(&c->lock);
}

/*
 * Drop least recently used idle snapshots while more than SNAPSHOTS_MAX
 * are open or their files pass c->snap_max bytes (for bytes, only one
 * that holds some).  Idle: no worker (none is being queried or rendered),
 * no reader waiting, no handle open on it; so a snapshot larger than the
 * bound alone is served whole, and the bytes held stay under the bound
 * plus the snapshots in use.  Each drop for space is logged (by 'later')
 * with what the snapshots hold after it.  Caller holds c->lock; never
 * fails.
 */
static void snapshots_trim(struct fs_ctx *c, struct fs_later *later)
{
	mtx_assert_held(&c->lock);
	for (;;) {
		size_t open = 0;
		struct fs_folder *lru = NULL;
		bool space = c->snap_bytes > c->snap_max;

		for (size_t i = 0; i < c->nfolders; i++) {
			struct fs_folder *f = c->folders[i];
			if (f->state != F_READY)
				continue;
			open++;
			if (f->worker || f->waiters || f->opens)
				continue;
			if (space && open <= SNAPSHOTS_MAX && snapshot_size(f) == 0)
				continue;
			if (!lru || f->used < lru->used)
				lru = f;
		}
		if (!lru || (open <= SNAPSHOTS_MAX && !space))
			return;
		uint64_t freed = snapshot_size(lru);
		snapshot_drop(c, lru, later);
		lru->state = F_IDLE;
		if (space && freed) {
			char where[FS_PATH_LEN];
			fs_node_path(&lru->node, where, sizeof(where));
			later_log(later, FETCH_LOG_INFO, "%s: snapshot dropped for space: %.1f MiB; "
				  "snapshots now hold %.1f MiB of at most %.1f MiB (snapshot_max)",
				  where, (double)freed / 1048576.0,
			       (double)c->snap_bytes / 1048576.0, (double)c->snap_max / 1048576.0);
		}
	}
}

int fs_folder_stat(struct fs_ctx *c, const struct fs_node *n, uint64_t ino, struct stat *st,
		   double *timeout)
{
	int rc = -EAGAIN;

	mtx_lock(&c->lock);
	struct fs_folder *f = folder_find(c, n);
	if (f && f->state == F_READY && !needs_query(c, f) && f->files[n->file].fd >= 0) {
		fill_stat(c, f, n->file, ino, st);
		*timeout = attr_timeout(f);
		f->used = ++c->use_clock;
		rc = 0;
	}
	mtx_unlock(&c->lock);
	return rc;
}

/* ---- rendering ------------------------------------------------------------ */

/* The name of a new file in the snapshot directory, for one render. */
static void snap_name(struct fs_folder *f, int file, char *buf, size_t len)
{
	snprintf(buf, len, "%016llx-%llu-%u-%s", (unsigned long long)f->ino,
		 (unsigned long long)f->serial, f->gen,
		 fs_file_names[file][0] == '.' ? "progress" : fs_file_names[file]);
}

static int json_time(cJSON *o, const char *key, int64_t ms)
{
	char t[40];
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(t + strlen(t), sizeof(t) - strlen(t), ".%03dZ", (int)(ms % 1000));
	return cJSON_AddStringToObject(o, key, t) ? 0 : -ENOMEM;
}

/* The query a snapshot renders: a final folder's reports show the
 * coverage as of its fetch, so that a snapshot dropped and made again from
 * the cache has the same bytes even after another folder's download
 * covered more of its range (a pair folder gains its subject's rows); a
 * live folder's say up to when it is complete, and how often refreshed. */
static struct cache_query snap_query(const struct fs_ctx *c, const struct fs_folder *f)
{
	struct cache_query q = f->node.q;
	q.as_of_ms = f->live ? 0 : f->made_ms;
	q.as_of_seq = f->made_seq;
	if (f->live) {
		q.live_as_of_ms = f->as_of_ms;
		q.live_refresh_s = c->o.live_ttl;
	}
	return q;
}

/* query.json: provenance of the snapshot.  Never the token. */
static int render_query_json(struct fs_ctx *c, struct fs_folder *f, struct cache *cc, FILE *out,
			     char *err)
{
	const struct fetch_info *info = fetch_engine_info(c->engine);
	cJSON *o = cJSON_CreateObject(), *cov, *gaps;
	struct cache_cover *covers = NULL;
	struct cache_gap *gv = NULL;
	size_t ncov = 0, ngap = 0;
	char buf[256];
	int64_t flows = 0;
	int rc = -ENOMEM;

	if (!o)
		return -ENOMEM;
	cJSON_AddStringToObject(o, "collector", c->url);
	cJSON_AddStringToObject(o, "product", info->product);
	cJSON_AddStringToObject(o, "product_version", info->version);
	cJSON_AddStringToObject(o, "driver", fetch_engine_driver(c->engine));
	cJSON_AddStringToObject(o, "dialect", info->dialect);
	fs_node_name(&f->node, buf, sizeof(buf));
	cJSON_AddStringToObject(o, "folder", buf);
	cache_prefix_format(&f->node.q.subject, buf, sizeof(buf));
	cJSON_AddStringToObject(o, "subject", buf);
	if (f->node.q.has_peer) {
		cache_prefix_format(&f->node.q.peer, buf, sizeof(buf));
		cJSON_AddStringToObject(o, "peer", buf);
	} else {
		cJSON_AddNullToObject(o, "peer");
	}
	json_time(o, "start", f->node.q.start);
	json_time(o, "end", f->node.q.end);
	cJSON_AddNumberToObject(o, "start_ms", (double)f->node.q.start);
	cJSON_AddNumberToObject(o, "end_ms", (double)f->node.q.end);
	cJSON_AddStringToObject(o, "tz", c->o.tz ? c->o.tz : "UTC");
	cJSON_AddBoolToObject(o, "live", f->live);
	cache_count(cc, &f->node.q, &flows, NULL);
	struct cache_query sq = snap_query(c, f);
	if (f->live) {
		/* what "complete" means here: every flow that started before
		 * complete_up_to is in the files; later ones are not all
		 * exported yet, and the folder is fetched again on access at
		 * most every refresh_s seconds */
		char live[160];
		cache_live_text(&sq, live, sizeof(live));
		json_time(o, "complete_up_to", f->as_of_ms);
		cJSON_AddNumberToObject(o, "refresh_s", c->o.live_ttl);
		cJSON_AddStringToObject(o, "status", live);
	}
	rc = cache_gaps(cc, &f->node.q, &gv, &ngap, err);
	if (!rc)
		rc = cache_coverage(cc, &sq, wall_ms(), (int64_t)c->o.live_ttl * 1000, &covers,
				    &ncov, err);
	if (rc)
		goto out;
	/* "complete" is the store's audit of the snapshot's range, as of its
	 * mark, never the planner's belief (issue 10); a live folder's, of
	 * [start, complete_up_to) */
	char aerr[FETCH_ERRLEN];
	struct cache_audit audit;
	struct cache_query aq = sq;
	if (f->live)
		aq.end = f->as_of_ms > aq.start ? f->as_of_ms : aq.start + 1;
	rc = fetch_audit(c->engine, cc, &aq, &f->res, &audit, aerr);
	if (rc) {
		snprintf(err, CACHE_ERRLEN, "%.200s", aerr);
		goto out;
	}
	cJSON_AddBoolToObject(o, "complete", audit.holes.n == 0 && audit.ngaps == 0 &&
						     ngap == 0 && f->res.rejected == 0);
	cJSON *au = cJSON_AddObjectToObject(o, "audit");
	cJSON_AddStringToObject(au, "method", "coverage and gap rows of the cache, swept over the range");
	cJSON_AddNumberToObject(au, "covered_ms", (double)audit.covered_ms);
	cJSON_AddNumberToObject(au, "gap_ms", (double)audit.gap_ms);
	cJSON_AddNumberToObject(au, "holes", (double)audit.holes.n);
	cJSON_AddNumberToObject(au, "passes", (double)f->res.audit_passes);
	cache_audit_free(&audit);
	cJSON_AddNumberToObject(o, "flows", (double)flows);
	cJSON *fetch = cJSON_AddObjectToObject(o, "fetch");
	json_time(fetch, "finished", f->made_ms);
	cJSON_AddNumberToObject(fetch, "seconds", f->res.seconds);
	cJSON_AddNumberToObject(fetch, "requests", (double)f->res.requests);
	cJSON_AddNumberToObject(fetch, "retries", (double)f->res.retries);
	cJSON_AddNumberToObject(fetch, "records", (double)f->res.records);
	cJSON_AddNumberToObject(fetch, "rejected", (double)f->res.rejected);
	if (info->uncapped)	/* the collector has no cap */
		cJSON_AddNullToObject(fetch, "max_records");
	else
		cJSON_AddNumberToObject(fetch, "max_records", (double)info->max_records);
	cov = cJSON_AddArrayToObject(o, "coverage");
	for (size_t i = 0; cov && i < ncov; i++) {
		cJSON *e = cJSON_CreateObject();
		json_time(e, "start", covers[i].start);
		json_time(e, "end", covers[i].end);
		json_time(e, "fetched", covers[i].fetched_ms);
		cJSON_AddBoolToObject(e, "provisional", covers[i].provisional);
		cJSON_AddNumberToObject(e, "records", (double)covers[i].records);
		cJSON_AddItemToArray(cov, e);
	}
	gaps = cJSON_AddArrayToObject(o, "gaps");
	for (size_t i = 0; gaps && i < ngap; i++) {
		cJSON *e = cJSON_CreateObject();
		json_time(e, "start", gv[i].start);
		json_time(e, "end", gv[i].end);
		cJSON_AddStringToObject(e, "peer", gv[i].peer);
		cJSON_AddNumberToObject(e, "seen", (double)gv[i].seen);
		cJSON_AddStringToObject(e, "reason", gv[i].reason);
		cJSON_AddItemToArray(gaps, e);
	}
	cJSON_AddStringToObject(o, "version", "flowfs " FLOWFS_VERSION);
	char *text = cJSON_Print(o);
	rc = text && fputs(text, out) >= 0 && fputc('\n', out) != EOF ? 0 : -EIO;
	cJSON_free(text);
out:
	free(covers);
	free(gv);
	cJSON_Delete(o);
	return rc;
}

static int render_file(struct fs_ctx *c, struct fs_folder *f, struct cache *cc, int file);

/* The SHA-256 of the bytes of fd, read from its start; 0 or -errno. */
static int sums_read(int fd, char *buf, size_t len, unsigned char md[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	off_t off = 0;
	ssize_t n;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(ctx);
		return -ENOMEM;
	}
	while ((n = pread(fd, buf, len, off)) > 0) {
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		off += n;
	}
	int rc = n < 0 ? -errno : 0;
	EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* SHA256SUMS over the bytes of the other six files, as served: the digest
 * each text file got while it was written (render_sink), and for
 * flows.sqlite, which SQLite writes page by page in no order, its bytes
 * read back. */
static int render_sums(struct fs_ctx *c, struct fs_folder *f, struct cache *cc, FILE *out)
{
	static const int order[] = {FS_F_CSV, FS_F_NDJSON, FS_F_SQLITE, FS_F_SUMMARY,
				    FS_F_TIMELINE, FS_F_QUERY_JSON};
	char *buf = NULL;
	int rc = 0;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]) && !rc; i++) {
		int file = order[i];
		unsigned char md[32];
		if (atomic_load(&f->cancel)) {		/* unmounting */
			rc = -EINTR;
			break;
		}
		mtx_lock(&c->lock);
		bool have = f->files[file].fd >= 0, hashed = have && f->files[file].hashed;
		if (hashed)
			memcpy(md, f->files[file].sha, sizeof(md));
		mtx_unlock(&c->lock);
		if (!have)
			rc = render_file(c, f, cc, file);
		if (rc || f->files[file].err) {
			rc = rc ? rc : -f->files[file].err;
			break;
		}
		mtx_lock(&c->lock);
		hashed = f->files[file].hashed;
		if (hashed)
			memcpy(md, f->files[file].sha, sizeof(md));
		mtx_unlock(&c->lock);
		if (!hashed) {
			if (!buf && !(buf = malloc(1 << 20))) {
				rc = -ENOMEM;
				break;
			}
			rc = sums_read(f->files[file].fd, buf, 1 << 20, md);
			if (rc)
				break;
		}
		for (int k = 0; k < 32; k++)
			fprintf(out, "%02x", md[k]);
		fprintf(out, "  %s\n", fs_file_names[file]);
	}
	free(buf);
	return rc;
}

/* A text file being rendered: its descriptor, and the SHA-256 of every
 * byte written to it, so that SHA256SUMS need not read it back. */
struct render_sink {
	int fd;
	EVP_MD_CTX *md;
};

/* fopencookie's write: all of buf to the file (a short write is retried),
 * then into the digest.  -1 with errno on a write error. */
static ssize_t render_sink_write(void *cookie, const char *buf, size_t len)
{
	struct render_sink *s = cookie;
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(s->fd, buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	EVP_DigestUpdate(s->md, buf, len);
	return (ssize_t)len;
}

static int render_sink_close(void *cookie)
{
	struct render_sink *s = cookie;

	return close(s->fd);
}

/* Render one file of the current generation into the snapshot.  Outside
 * c->lock; publishes the descriptor under it (and logs after it).  A failure is logged and
 * returned; a transient one (fs_errno_transient: a full disk, no
 * descriptors, a busy cache, an unmount) is answered to the readers
 * waiting for this file and forgotten, so that the next read renders it
 * again; any other is kept in files[file].err, the answer of every later
 * reader of this snapshot. */
static int render_file(struct fs_ctx *c, struct fs_folder *f, struct cache *cc, int file)
{
	struct cache_query q = snap_query(c, f);
	char name[96], path[2400], cerr[CACHE_ERRLEN] = "";
	struct render_sink sink = {.fd = -1};
	unsigned char sha[32] = {0};
	bool hashed = false;
	FILE *out = NULL;
	int rc = 0, fd = -1;
	int64_t rows = 0;

	/* a new file of this mount's own snapshot directory (O_EXCL |
	 * O_NOFOLLOW: never one that was there, never through a link);
	 * flows.sqlite is made by its renderer, O_EXCL too */
	snap_name(f, file, name, sizeof(name));
	snprintf(path, sizeof(path), "%s/%s", c->snap_dir, name);
	if (file != FS_F_SQLITE) {
		static const cookie_io_functions_t io = {.write = render_sink_write,
							 .close = render_sink_close};
		sink.fd = openat(c->snap_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
				 O_CLOEXEC, 0600);
		if (sink.fd >= 0) {
			sink.md = EVP_MD_CTX_new();
			if (!sink.md || !EVP_DigestInit_ex(sink.md, EVP_sha256(), NULL))
				errno = ENOMEM;
			else
				out = fopencookie(&sink, "w", io);
		}
		if (!out) {
			rc = -errno;
			snprintf(cerr, sizeof(cerr), "cannot write %.160s: %.60s", path, strerror(errno));
			if (sink.fd >= 0)
				close(sink.fd);
			goto done;
		}
		setvbuf(out, NULL, _IOFBF, 1 << 16);
	}
	switch (file) {
	case FS_F_CSV:
		rc = cache_render(cc, &q, CACHE_CSV, out, NULL, NULL, 0, &rows, cerr);
		break;
	case FS_F_NDJSON:
		rc = cache_render(cc, &q, CACHE_NDJSON, out, NULL, NULL, 0, &rows, cerr);
		break;
	case FS_F_SQLITE: {
		const struct fetch_info *info = fetch_engine_info(c->engine);
		char subject[64], peer[64] = "", from[40], to[40], name[128];
		cache_prefix_format(&f->node.q.subject, subject, sizeof(subject));
		if (f->node.q.has_peer)
			cache_prefix_format(&f->node.q.peer, peer, sizeof(peer));
		cache_time_format(f->node.q.start, from, sizeof(from));
		cache_time_format(f->node.q.end, to, sizeof(to));
		fs_node_name(&f->node, name, sizeof(name));
		struct cache_meta meta[] = {
			{"collector", c->url}, {"product", info->product},
			{"driver", fetch_engine_driver(c->engine)}, {"subject", subject},
			{"peer", peer}, {"folder", name}, {"from", from}, {"to", to},
			{"tz", c->o.tz ? c->o.tz : "UTC"}, {"tool", "flowfs " FLOWFS_VERSION},
		};
		rc = cache_render(cc, &q, CACHE_SQLITE, NULL, path, meta,
				  sizeof(meta) / sizeof(meta[0]), &rows, cerr);
		break;
	}
	case FS_F_SUMMARY:
		rc = cache_render_summary(cc, &q, out, cerr);
		break;
	case FS_F_TIMELINE:
		rc = cache_render_timeline(cc, &q, out, cerr);
		break;
	case FS_F_QUERY_JSON:
		rc = render_query_json(c, f, cc, out, cerr);
		break;
	case FS_F_SUMS:
		rc = render_sums(c, f, cc, out);
		break;
	default:
		rc = -ENOENT;
	}
	if (out && fclose(out) != 0 && !rc)
		rc = -errno;
	if (!rc && out)
		hashed = EVP_DigestFinal_ex(sink.md, sha, NULL) == 1;
	if (!rc) {
		fd = openat(c->snap_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			rc = -errno;
	}
done:
	EVP_MD_CTX_free(sink.md);
	unlinkat(c->snap_fd, name, 0);
	struct stat st;
	if (!rc && fstat(fd, &st) != 0)
		rc = -errno;
	if (rc) {
		char where[FS_PATH_LEN];
		fs_node_path(&f->node, where, sizeof(where));
		fs_log(c, "%s/%s: cannot render: %s", where, fs_file_names[file],
		       cerr[0] ? cerr : strerror(-rc));
	}
	struct fs_later later = {.nlines = 0};
	mtx_lock(&c->lock);
	if (!rc) {
		f->files[file].fd = fd;
		f->files[file].size = (uint64_t)st.st_size;
		f->files[file].hashed = hashed;
		memcpy(f->files[file].sha, sha, sizeof(sha));
		c->snap_bytes += (uint64_t)st.st_size;
		uint64_t mine = snapshot_size(f);
		if (mine > c->snap_max && !f->big_logged) {
			char where[FS_PATH_LEN];
			f->big_logged = true;
			fs_node_path(&f->node, where, sizeof(where));
			later_log(&later, FETCH_LOG_INFO, "%s: snapshot holds %.1f MiB, more than "
				  "snapshot_max (%.1f MiB) alone: served all the same, and dropped "
				  "when another folder's files need the room", where,
				  (double)mine / 1048576.0, (double)c->snap_max / 1048576.0);
		}
		snapshots_trim(c, &later);
	} else {
		if (fs_errno_transient(rc))
			answer_file_err(f, file, fs_errno(rc));
		else
			f->files[file].err = fs_errno(rc);
	}
	mtx_unlock(&c->lock);
	if (rc && fd >= 0)
		close(fd);
	later_run(c, &later);
	return rc;
}

/* ---- the worker ------------------------------------------------------------ */

static bool needs_query(struct fs_ctx *c, struct fs_folder *f)
{
	if (f->state == F_IDLE || f->state == F_FAILED)
		return true;
	if (f->state == F_READY && f->live &&
	    wall_ms() - f->made_ms > (int64_t)c->o.live_ttl * 1000)
		return true;
	return false;
}

struct worker_arg {
	struct fs_ctx *c;
	struct fs_folder *f;
};

/* ---- the queue: at most max_queries queries at once ------------------------

 * A folder whose query is due holds a slot while it runs (slot_take),
 * else waits in the mount's queue, first come first served.  A folder
 * queued before its worker exists (park) gets no thread until its turn:
 * the slot is handed over with a new worker (queue_grant); a worker that
 * finds a query due later (a live folder's refresh) waits for its turn on
 * c->queue_cond (slot_wait).  Only queries take slots: renders from the
 * cache do not wait for downloads.  All under c->lock. */

static void *folder_worker(void *arg);

/* Start f's worker (joining the previous one, which has ended but for its
 * return: see folder_worker).  0, or -EAGAIN / -ENOMEM with no worker
 * started. */
static int worker_start(struct fs_ctx *c, struct fs_folder *f)
{
	struct worker_arg *wa = malloc(sizeof(*wa));

	if (!wa)
		return -ENOMEM;
	if (f->joinable) {
		pthread_join(f->thread, NULL);
		f->joinable = false;
	}
	wa->c = c;
	wa->f = f;
	if (pthread_create(&f->thread, NULL, folder_worker, wa) != 0) {
		free(wa);
		return -EAGAIN;
	}
	f->worker = true;
	f->joinable = true;
	return 0;
}

static void queue_push(struct fs_ctx *c, struct fs_folder *f)
{
	mtx_assert_held(&c->lock);
	f->queued = true;
	f->qnext = NULL;
	if (c->queue_tail)
		c->queue_tail->qnext = f;
	else
		c->queue_head = f;
	c->queue_tail = f;
	c->queue_len++;
}

/* Take f out of the queue (it is in it). */
static void queue_remove(struct fs_ctx *c, struct fs_folder *f)
{
	struct fs_folder **pp = &c->queue_head, *prev = NULL;

	mtx_assert_held(&c->lock);
	while (*pp && *pp != f) {
		prev = *pp;
		pp = &(*pp)->qnext;
	}
	if (!*pp)
		return;
	*pp = f->qnext;
	if (c->queue_tail == f)
		c->queue_tail = prev;
	f->qnext = NULL;
	f->queued = false;
	c->queue_len--;
}

/* f's place in the queue, from 1; 0 when it is not queued. */
static size_t queue_position(const struct fs_ctx *c, const struct fs_folder *f)
{
	size_t i = 1;

	for (const struct fs_folder *q = c->queue_head; q; q = q->qnext, i++)
		if (q == f)
			return i;
	return 0;
}

/* A slot for f now, when one is free and nobody is queued before it. */
static bool slot_take(struct fs_ctx *c, struct fs_folder *f)
{
	mtx_assert_held(&c->lock);
	if (c->queries_running >= c->o.max_queries || c->queue_head)
		return false;
	f->has_slot = true;
	c->queries_running++;
	return true;
}

/* Hand the free slots to the queue's first folders that still have
 * readers, in order: wake a waiting worker, or start one.  A folder whose
 * worker cannot be started answers its readers EAGAIN and gives the slot
 * back.  Nothing is handed over once unmounting. */
static void queue_grant(struct fs_ctx *c)
{
	mtx_assert_held(&c->lock);
	while (!atomic_load(&c->stopping) && c->queries_running < c->o.max_queries &&
	       c->queue_head) {
		struct fs_folder *f = c->queue_head;
		queue_remove(c, f);
		if (!f->waiters)
			continue;
		f->has_slot = true;
		c->queries_running++;
		if (f->worker) {
			pthread_cond_broadcast(&c->queue_cond);
		} else if (worker_start(c, f) != 0) {
			f->has_slot = false;
			c->queries_running--;
			answer_ready(c, f, EAGAIN);
		}
	}
}

/* Give f's slot back, to the next in the queue. */
static void slot_release(struct fs_ctx *c, struct fs_folder *f)
{
	if (!f->has_slot)
		return;
	f->has_slot = false;
	c->queries_running--;
	queue_grant(c);
}

/* f's worker, a query due: wait in the queue for a slot.  True with the
 * slot held; false, out of the queue and without a slot, when no reader
 * is left to wait for it or the mount is stopping. */
static bool slot_wait(struct fs_ctx *c, struct fs_folder *f)
{
	mtx_assert_held(&c->lock);
	if (!f->has_slot && !f->queued && !slot_take(c, f))
		queue_push(c, f);
	while (!f->has_slot && f->waiters && !atomic_load(&c->stopping))
		mtx_cond_wait(&c->queue_cond, &c->lock);
	if (f->has_slot && f->waiters && !atomic_load(&c->stopping))
		return true;
	if (f->queued)
		queue_remove(c, f);
	slot_release(c, f);
	return false;
}

/* The worker's cache connection *cc, opened on first use, its reads
 * stopped by f's cancel (unmount): 0, or the error of cache_open (logged,
 * *cc left NULL). */
static int worker_cache(struct fs_ctx *c, struct fs_folder *f, struct cache **cc)
{
	char cerr[CACHE_ERRLEN];
	int rc;

	mtx_assert_not_held(&c->lock);
	if (*cc)
		return 0;
	struct cache_identity id = fetch_engine_identity(c->engine);
	rc = cache_open(c->cache_dir, &id, cc, cerr);
	if (rc) {
		*cc = NULL;
		fs_log(c, "cannot open the cache: %s", cerr);
		return rc;
	}
	cache_set_cancel(*cc, &f->cancel);
	return 0;
}

/* The coverage mark a new snapshot is rendered as of (snap_query).  On
 * failure *seq is left as it was (INT64_MAX: no bound but the time) and
 * the cause logged. */
static void folder_mark(struct fs_ctx *c, struct fs_folder *f, struct cache **cc,
			int64_t *seq)
{
	char cerr[CACHE_ERRLEN];
	int64_t s;

	if (worker_cache(c, f, cc))
		return;
	if (cache_coverage_mark(*cc, &s, cerr)) {
		fs_log(c, "cannot read the coverage mark: %s", cerr);
		return;
	}
	*seq = s;
}

/* The flows the snapshot about to be made holds (its mark seq, as of
 * as_of_ms: 0 for a live folder), for .progress and the log; 0 when the
 * cache cannot say (logged). */
static int64_t folder_count(struct fs_ctx *c, struct fs_folder *f, struct cache **cc,
			    int64_t as_of_ms, int64_t seq)
{
	char cerr[CACHE_ERRLEN];
	struct cache_query q = f->node.q;
	int64_t n = 0;

	q.as_of_ms = as_of_ms;
	q.as_of_seq = seq;
	if (worker_cache(c, f, cc))
		return 0;
	if (cache_count(*cc, &q, &n, cerr)) {
		char where[FS_PATH_LEN];
		fs_node_path(&f->node, where, sizeof(where));
		fs_log(c, "%s: cannot count its flows: %s", where, cerr);
		return 0;
	}
	return n;
}

/* The gaps recorded in a folder's range: how many, and their time. */
struct fs_gaps_total {
	size_t n;
	int64_t ms;
};

/* Sum the gaps of f's range into *gt; on failure *gt stays zero and the
 * cause is logged. */
static void folder_gaps_total(struct fs_ctx *c, struct fs_folder *f, struct cache **cc,
			      struct fs_gaps_total *gt)
{
	char cerr[CACHE_ERRLEN];
	struct cache_gap *g = NULL;
	size_t n = 0;

	if (worker_cache(c, f, cc))
		return;
	if (cache_gaps(*cc, &f->node.q, &g, &n, cerr)) {
		char where[FS_PATH_LEN];
		fs_node_path(&f->node, where, sizeof(where));
		fs_log(c, "%s: cannot list its gaps: %s", where, cerr);
		return;
	}
	gt->n = n;
	for (size_t i = 0; i < n; i++)
		gt->ms += g[i].end - g[i].start;
	free(g);
}

/* The one line that says a query ended with a snapshot (FETCH_LOG_INFO):
 * its folder, flows, requests, retries, seconds, gaps, source; into
 * 'later', logged once c->lock, which the caller holds, is let go. */
static void log_query_ready(struct fs_ctx *c, struct fs_folder *f, const struct fetch_result *res,
			    int64_t flows, const struct fs_gaps_total *gt, struct fs_later *later)
{
	char where[FS_PATH_LEN], gaps[64] = "none", live[200] = "", rej[48] = "";

	fs_node_path(&f->node, where, sizeof(where));
	if (gt->n)
		snprintf(gaps, sizeof(gaps), "%zu (%.3f s in all)", gt->n, (double)gt->ms / 1000.0);
	else if (!res->complete && res->rejected == 0)
		snprintf(gaps, sizeof(gaps), "incomplete");
	if (res->rejected)
		snprintf(rej, sizeof(rej), ", %llu records rejected",
			 (unsigned long long)res->rejected);
	if (f->live) {
		struct cache_query q = snap_query(c, f);
		size_t n = cache_live_text(&q, live + 2, sizeof(live) - 2);
		if (n) {
			live[0] = ',';
			live[1] = ' ';
		}
	}
	mtx_assert_held(&c->lock);
	later_log(later, FETCH_LOG_INFO, "%s: ready: %lld flows, %llu requests, %llu retries, %.1f s, "
		  "gaps %s%s, source %s%s", where, (long long)flows,
		  (unsigned long long)res->requests, (unsigned long long)res->retries, res->seconds,
		  gaps, rej, res->requests ? "collector" : "cache", live);
}

/* The one line that says a query ended without a snapshot: failed
 * (FETCH_LOG_ERROR, with its cause and errno) or interrupted by the
 * unmount (FETCH_LOG_INFO); into 'later', as log_query_ready's. */
static void log_query_failed(struct fs_ctx *c, struct fs_folder *f, int rc,
			     const struct fetch_result *res, const char *cause,
			     struct fs_later *later)
{
	char where[FS_PATH_LEN], errtxt[80];
	bool stop = fs_errno(rc) == EINTR && atomic_load(&c->stopping);

	fs_node_path(&f->node, where, sizeof(where));
	snprintf(errtxt, sizeof(errtxt), " (readers get %s)", strerrorname_np(fs_errno(rc)));
	later_log(later, stop ? FETCH_LOG_INFO : FETCH_LOG_ERROR,
		  "%s: %s after %.1f s, %llu requests, %llu retries, %llu records received%s%s%s",
		  where, stop ? "interrupted by the unmount" : "failed", res->seconds,
		  (unsigned long long)res->requests, (unsigned long long)res->retries,
		  (unsigned long long)res->records, stop ? "" : ": ", stop ? "" : cause,
		  stop ? "" : errtxt);
}

/*
 * A folder's worker: runs the query and renders the files its waiters ask
 * for, until none waits (or the mount stops: they are answered EINTR).
 * A query runs only with one of the mount's slots (slot_wait; a worker
 * started by queue_grant has it already), given back as soon as the query
 * ends, before the renders.
 * Its cache connection is closed before it ends, outside c->lock; readers
 * parked meanwhile are served before it clears f->worker, and after that
 * it touches nothing of the mount, so joining it (park, shutdown) is
 * immediate.  Joinable: fs_folders_shutdown joins every worker before the
 * engine, the cache and the log are freed.
 */
static void *folder_worker(void *arg)
{
	struct worker_arg *wa = arg;
	struct fs_ctx *c = wa->c;
	struct fs_folder *f = wa->f;
	struct cache *cc = NULL;
	char err[FETCH_ERRLEN];
	struct fs_later later = {.nlines = 0};

	free(wa);
	mtx_lock(&c->lock);
again:
	while (f->waiters && !atomic_load(&c->stopping)) {
		if (needs_query(c, f)) {
			if (!slot_wait(c, f))
				continue;	/* its readers left, or unmounting */
			f->state = F_RUNNING;
			memset(&f->prog, 0, sizeof(f->prog));
			f->prog.log_tag = &f->node;	/* engine_log_line's folder */
			mtx_unlock(&c->lock);
			struct fetch_result res;
			int rc = fetch_query(c->engine, &f->node.q, &f->prog, &f->cancel, &res, err);
			/* the mark first, then the time: a row committed before the
			 * mark was stamped before the time */
			int64_t seq = INT64_MAX, made, flows = 0;
			bool live = folder_is_live(c, f);
			if (!rc)
				folder_mark(c, f, &cc, &seq);
			made = wall_ms();
			/* a day folder's time is its fetch time once the cache
			 * holds it whole (ops.c): the kernel's copy is dropped, and
			 * the last listing's answer no longer used */
			atomic_fetch_add(&c->cover_gen, 1);
			if (!rc && f->node.is_day && !atomic_load(&c->stopping))
				fuse_lowlevel_notify_inval_inode(c->se, f->ino, -1, 0);
			struct fs_gaps_total gt = {0};
			if (!rc) {
				flows = folder_count(c, f, &cc, live ? 0 : made, seq);
				if (!res.complete)
					folder_gaps_total(c, f, &cc, &gt);
			}
			mtx_lock(&c->lock);
			slot_release(c, f);
			if (rc) {
				f->state = F_FAILED;
				f->err = fs_errno(rc);
				snprintf(f->cause, sizeof(f->cause), "%s", err);
				log_query_failed(c, f, rc, &res, err, &later);
				answer_ready(c, f, f->err);
				mtx_unlock(&c->lock);
				later_run(c, &later);
				mtx_lock(&c->lock);
				continue;
			}
			/* A final snapshot dropped by snapshots_trim and made again
			 * from the cache alone keeps the provenance of the fetch that
			 * made it: the same query.json, SHA256SUMS and mtime, since
			 * the kernel keeps the old pages and sizes (keep_cache). */
			bool again = f->gen > 0 && !f->live && res.requests == 0;
			snapshot_drop(c, f, &later);
			f->gen++;
			if (!again) {
				f->res = res;
				f->made_ms = made;
				f->made_seq = seq;
				f->tally = tally_of(&f->prog);
				f->flows = flows;
				f->as_of_ms = live ? folder_as_of(c, f, &res) : 0;
			}
			f->live = live;
			f->state = F_READY;
			f->used = ++c->use_clock;
			f->cause[0] = '\0';
			snapshots_trim(c, &later);
			log_query_ready(c, f, &res, flows, &gt, &later);
			/* the log, and the gaps read from the cache, once the lock
			 * every FUSE operation takes is let go (fs.h, LOCKING) */
			struct cache_query gq = f->node.q;
			char who[FS_PATH_LEN];
			fs_node_path(&f->node, who, sizeof(who));
			mtx_unlock(&c->lock);
			later_run(c, &later);
			if (!res.complete)
				fs_log_gaps(c, &gq, who);
			mtx_lock(&c->lock);
		}
		/* a file someone waits for */
		int want = -1;
		for (struct fs_waiter *w = f->waiters; w && want < 0; w = w->next)
			if (f->files[w->file].fd < 0 && !f->files[w->file].err)
				want = w->file;
		if (want < 0) {
			answer_ready(c, f, 0);
			continue;
		}
		mtx_unlock(&c->lock);
		if (worker_cache(c, f, &cc)) {
			mtx_lock(&c->lock);
			answer_ready(c, f, EIO);
			continue;
		}
		render_file(c, f, cc, want);
		mtx_lock(&c->lock);
		answer_ready(c, f, 0);
	}
	if (atomic_load(&c->stopping))
		answer_ready(c, f, EINTR);
	if (cc) {
		mtx_unlock(&c->lock);
		cache_close(cc);
		cc = NULL;
		mtx_lock(&c->lock);
		goto again;
	}
	slot_release(c, f);	/* handed over after its readers left */
	f->worker = false;
	mtx_unlock(&c->lock);
	return NULL;
}

/* Ctrl-C: answer the waiting reader now; a query under way goes on, but
 * a folder still queued with no reader left leaves the queue (its worker,
 * if it has one, is woken to see it).  The request is looked for in every
 * folder, never through 'data': libfuse may call this after the request
 * was answered and its folder dropped. */
static void on_interrupt(fuse_req_t req, void *data)
{
	struct fs_ctx *c = fuse_req_userdata(req);

	(void)data;
	mtx_lock(&c->lock);
	for (size_t i = 0; i < c->nfolders; i++) {
		struct fs_folder *f = c->folders[i];
		struct fs_waiter **pp = &f->waiters;
		while (*pp && (*pp)->req != req)
			pp = &(*pp)->next;
		if (!*pp)
			continue;
		struct fs_waiter *w = *pp;
		*pp = w->next;
		free(w);
		fuse_reply_err(req, EINTR);
		if (!f->waiters && f->queued) {
			if (f->worker)
				pthread_cond_broadcast(&c->queue_cond);
			else
				queue_remove(c, f);
		}
		break;
	}
	mtx_unlock(&c->lock);
}

/* Answer a request from its folder's snapshot when ready, else park it
 * on the folder (made now) and see that it is served: a worker started
 * when none runs (for a query only with a free slot), or the folder's
 * place in the queue.  Out of memory, or no thread: ENOMEM or EAGAIN to
 * the reader; unmounting: EINTR. */
static void park(struct fs_ctx *c, fuse_req_t req, const struct fs_node *n, uint64_t ino,
		 bool open, struct fuse_file_info *fi)
{
	struct fs_folder *f;
	struct fs_waiter *w = calloc(1, sizeof(*w));

	if (!w) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	w->req = req;
	w->file = n->file;
	w->open = open;
	w->ino = ino;
	if (fi)
		w->fi = *fi;

	mtx_lock(&c->lock);
	f = folder_find(c, n);
	/* ready now: answer from the snapshot */
	if (f && f->state == F_READY && !needs_query(c, f) &&
	    (f->files[n->file].fd >= 0 || f->files[n->file].err)) {
		f->used = ++c->use_clock;
		answer(c, f, w);
		mtx_unlock(&c->lock);
		free(w);
		return;
	}
	mtx_unlock(&c->lock);

	/* registered before the request can be answered by the worker */
	fuse_req_interrupt_func(req, on_interrupt, NULL);
	if (fuse_req_interrupted(req)) {
		free(w);
		fuse_reply_err(req, EINTR);
		return;
	}
	mtx_lock(&c->lock);
	if (atomic_load(&c->stopping)) {	/* no new worker once unmounting */
		mtx_unlock(&c->lock);
		free(w);
		fuse_reply_err(req, EINTR);
		return;
	}
	/* found again: a folder without readers may have been dropped
	 * while the lock was free */
	f = folder_get(c, n);
	if (!f) {
		mtx_unlock(&c->lock);
		free(w);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	w->next = f->waiters;
	f->waiters = w;
	/* a worker now: for renders, or for a query when a slot is free;
	 * else the folder waits its turn in the queue, without a thread */
	if (!f->worker && !f->queued) {
		if (needs_query(c, f) && !slot_take(c, f)) {
			queue_push(c, f);
		} else if (worker_start(c, f) != 0) {
			slot_release(c, f);
			answer_ready(c, f, EAGAIN);
		}
	}
	mtx_unlock(&c->lock);
}

void fs_folder_getattr(struct fs_ctx *c, fuse_req_t req, const struct fs_node *n, uint64_t ino)
{
	park(c, req, n, ino, false, NULL);
}

void fs_folder_open(struct fs_ctx *c, fuse_req_t req, const struct fs_node *n, uint64_t ino,
		    struct fuse_file_info *fi)
{
	park(c, req, n, ino, true, fi);
}

/* The counters of .progress: "windows:" to "rejected:", from t; 'ended':
 * the query is over (a window not asked then was never needed). */
static void progress_counts(FILE *m, const struct fs_tally *t, bool ended)
{
	if (ended && t->windows_planned == 0 && t->requests == 0)
		fprintf(m, "windows: none asked (all in the cache)\n");
	else
		fprintf(m, "windows: %llu done of %llu planned\n",
			(unsigned long long)t->windows_done, (unsigned long long)t->windows_planned);
	fprintf(m, "records received: %llu\nrequests: %llu\nretries: %llu\ngaps: %llu\n"
		"rejected: %llu\n", (unsigned long long)t->records,
		(unsigned long long)t->requests, (unsigned long long)t->retries,
		(unsigned long long)t->gaps, (unsigned long long)t->rejected);
}

/*
 * .progress: "key: value" lines.  state is idle (never asked, or its
 * readers left before its query ran), queued, running, ready, live (ready,
 * and refreshed on access), or failed.  A folder with a snapshot (ready or
 * live, also when the snapshot was dropped to be made again from the
 * cache) says where it came from and the counters of the fetch behind it;
 * a running or failed one, the counters of its query so far.
 */
char *fs_folder_progress(struct fs_ctx *c, const struct fs_node *n)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);

	if (!m)
		return NULL;
	mtx_lock(&c->lock);
	struct fs_folder *f = folder_find(c, n);
	/* a snapshot made, whether held now or dropped (snapshots_trim) */
	bool made = f && f->gen > 0 && (f->state == F_READY || f->state == F_IDLE);
	bool running = f && f->state == F_RUNNING;
	const char *state = !f ? "idle" : f->queued ? "queued" : running ? "running"
			  : f->state == F_FAILED ? "failed" : made ? (f->live ? "live" : "ready")
			  : "idle";
	fprintf(m, "state: %s\n", state);
	if (f && f->queued)
		fprintf(m, "position: %zu of %zu in the queue\n", queue_position(c, f),
			c->queue_len);
	if (made && !f->queued) {
		char t[40];
		fprintf(m, "source: %s\n", f->res.requests ? "collector" : "cache");
		fprintf(m, "flows: %lld\n", (long long)f->flows);
		progress_counts(m, &f->tally, true);
		cache_time_format(f->made_ms, t, sizeof(t));
		fprintf(m, "took: %.1f s\nfinished: %s\n", f->res.seconds, t);
		if (f->live) {
			struct cache_query q = snap_query(c, f);
			char live[160];
			cache_live_text(&q, live, sizeof(live));
			fprintf(m, "status: %s\n", live);
		}
		fprintf(m, "snapshot: generation %u, %s%s\n", f->gen, f->live ? "live" : "final",
			f->state == F_IDLE ? ", dropped (made again from the cache when read)" : "");
	} else if (running || (f && f->state == F_FAILED && !f->queued)) {
		struct fs_tally t = tally_of(&f->prog);
		int64_t started = atomic_load(&f->prog.started_ms);
		progress_counts(m, &t, !running);
		if (running && started)
			fprintf(m, "elapsed: %.1f s\n", (double)(wall_ms() - started) / 1000.0);
		if (f->state == F_FAILED)
			fprintf(m, "error: %s (%s)\n", f->cause, strerror(f->err));
	} else if (!f || f->gen == 0) {
		fprintf(m, "never asked: reading a file of this folder runs its query\n");
	}
	int waiting = 0;
	for (struct fs_waiter *w = f ? f->waiters : NULL; w; w = w->next)
		waiting++;
	fprintf(m, "waiting readers: %d\n", waiting);
	fprintf(m, "mount: %d of %d queries running, %zu queued, %zu folders held\n",
		c->queries_running, c->o.max_queries, c->queue_len, c->nfolders);
	mtx_unlock(&c->lock);
	if (fclose(m) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/*
 * Unmount: no worker starts after this (park answers EINTR, queue_grant
 * hands no slot), workers waiting for a slot give up, every running
 * query and render is cancelled (fetch_query's cancel, the cache's
 * cache_set_cancel) and every worker is joined, however long it takes to
 * reach its next check; only then are the folders freed, so the engine,
 * the cache and the log that flowfs frees next have no user left.  Never
 * fails.
 */
void fs_folders_shutdown(struct fs_ctx *c)
{
	atomic_store(&c->stopping, 1);
	mtx_lock(&c->lock);
	for (size_t i = 0; i < c->nfolders; i++)
		atomic_store(&c->folders[i]->cancel, 1);
	pthread_cond_broadcast(&c->queue_cond);	/* workers waiting for a slot */
	mtx_unlock(&c->lock);
	/* one at a time, outside the lock (a worker takes it to end) */
	for (;;) {
		pthread_t th;
		bool found = false;
		mtx_lock(&c->lock);
		for (size_t i = 0; i < c->nfolders && !found; i++) {
			struct fs_folder *f = c->folders[i];
			if (f->joinable) {
				th = f->thread;
				f->joinable = false;
				found = true;
			}
		}
		mtx_unlock(&c->lock);
		if (!found)
			break;
		pthread_join(th, NULL);
	}
	struct fs_later later = {.nlines = 0};
	mtx_lock(&c->lock);
	for (size_t i = 0; i < c->nfolders; i++) {
		struct fs_folder *f = c->folders[i];
		answer_ready(c, f, EINTR);
		snapshot_drop(c, f, &later);	/* past FS_LATER_FDS, closed at once */
		free(f);
		c->folders[i] = NULL;
	}
	free(c->folders);
	c->folders = NULL;
	c->nfolders = c->capfolders = 0;
	c->queue_head = c->queue_tail = NULL;
	c->queue_len = 0;
	mtx_unlock(&c->lock);
	later_run(c, &later);
}
