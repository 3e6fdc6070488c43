/*
 * fs.h - the whole face of the filesystem room: the flowfs daemon's
 * context, its query folders and the errno table.  path.h is the grammar.
 *
 * Why the low-level libfuse API: a file of a query folder cannot be
 * stat'ed before its query has run, and a query can take minutes (or hang
 * on a stalled collector until its deadline).  With the low-level API a
 * request need not be answered by the thread that received it: getattr and
 * open of a file whose snapshot is not ready are parked on their folder and
 * answered by the folder's worker thread when it is ready, so the session
 * loop's threads never wait on the network.  Listings, .progress and every
 * other folder stay answerable however many readers wait, and an
 * interrupted reader (Ctrl-C) is answered EINTR at once while the download
 * goes on.
 */
#ifndef FLOWFS_FS_H
#define FLOWFS_FS_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fetch.h"
#include "mtx.h"
#include "path.h"

/*
 * LOCKING
 *
 * Three mutexes, each guarding what is marked with its name below:
 *
 *   c->lock        the mount's tables (inodes, folders, the queue of
 *                  queries, the snapshots' bytes, use_clock) and every
 *                  field of every struct fs_folder (folder.c) but its
 *                  node, ino and serial (fixed when it is made), cancel
 *                  and prog (atomics, the engine writes prog).  Every FUSE
 *                  operation but read and readdir of made-up text takes
 *                  it, so it is held only for memory work: finding a
 *                  node, a folder, a waiter, a slot.  c->queue_cond is
 *                  waited on with it.
 *   c->small_lock  small_cache (the daemon's own connection for listings
 *                  and collector/) and days; held over one short SQLite
 *                  read, may log.
 *   c->refused.lock  struct fs_refused; a leaf, no I/O under it.
 *
 * Order: none of the three is taken while another is held (c->lock is
 * let go before fs_log_gaps, which takes small_lock), and none is held
 * across a call into the engine (fetch_query, which takes the engine's
 * own locks: fetch_i.h) or the cache's writes.
 *
 * Never under c->lock: SQLite (a connection may wait its busy timeout,
 * 60 s, for another process), a line of the log (a write and a flush:
 * log_write asserts it), the network, the close of a snapshot's last
 * descriptor (it frees the file's blocks), fuse_lowlevel_notify_* (the
 * kernel may be waiting on us).  folder.c collects such work under the
 * lock (struct fs_later) and does it after letting go.  Allowed under
 * it: memory, fuse_reply_* (a write to /dev/fuse, which does not wait),
 * pthread_cond_broadcast, starting a worker and joining one that has
 * ended but for its return (worker_start, folders_sweep), the close of
 * a dup of a descriptor another still holds.
 *
 * The locks are struct mtx (mtx.h): in debug builds a function
 * documented "caller holds c->lock" checks it (mtx_assert_held), and one
 * that must not be called with it (fs_log_gaps, log_write, cache opens)
 * checks that too (mtx_assert_not_held).
 */

/* The most day folders a subject lists (fs_days). */
#define FS_DAYS_MAX 800

/* The mount's options (-o ...). */
struct fs_opts {
	char *token_file, *cache, *tz, *ca_file, *driver, *tenant;
	int live_ttl, max_inflight, stall_timeout, request_timeout, retries, max_records;
	int max_queries;	/* queries running at once, mount-wide */
	int retention_days;	/* days listed when the collector does not say */
	int insecure, foreground;
	char *snapshot_max;	/* the bound on the snapshots' bytes, as given */
	char *log_level;	/* -o log_level=error|info|debug (default info) */
	char *files_tz, *nfdump;	/* nfdump: the zone of the file names, the program */
	char *profile, *channels, *collector_tz;	/* flowmon */
	int active_timeout;	/* nfdump: the exporters' active timeout, s */
	char *ssh_config, *identity, *known_hosts;	/* nfdump+ssh: ssh's -F, -i, known_hosts */
	int connect_timeout;	/* s: a connection (HTTP, ssh) not made by then fails */
	char *cache_url;	/* the team's shared cache (libpq's), or NULL */
	int pg_heartbeat, pg_expiry;	/* its session's heartbeat and expiry, s */
	char *url;		/* the first non-option argument */
	int nonopt;
};

struct fs_folder;

/*
 * Refused names, as the log tells of them (fs_log_refused): each path once
 * while it is among the last FS_REFUSED_RECENT logged, and at most
 * FS_REFUSED_PER_MIN lines a minute, then one line saying that the rest of
 * the minute is not logged, and later one saying how many were not.  A
 * `find` or a shell's probing cannot flood the log.
 */
#define FS_REFUSED_RECENT 256
#define FS_REFUSED_PER_MIN 20
struct fs_refused {
	pthread_mutex_t lock;	/* guards this struct; a leaf, no I/O under it */
	uint64_t recent[FS_REFUSED_RECENT];	/* hashes of the paths logged; 0 free */
	unsigned next;		/* the slot the next path takes (a ring) */
	int64_t minute_ms;	/* when the current minute began (CLOCK_MONOTONIC) */
	unsigned logged;	/* lines logged in it */
	uint64_t unlogged;	/* refusals not logged since the last count was logged */
};

/* The one context of a mount. */
struct fs_ctx {
	struct fs_opts o;
	char url[2048], cache_dir[2048], snap_dir[2200], log_path[2200];
	/* the cache directory, checked (cache_dir_open), and this mount's
	 * snapshot directory in it, held under its flock: everything flowfs
	 * makes there is opened relative to them, never through a link */
	int cache_fd, snap_fd;
	char token[FETCH_TOKEN_MAX + 2];	/* one more: a longer token is seen, and refused */
	struct fetch_engine *engine;
	struct fuse_session *se;
	uid_t uid;
	gid_t gid;
	struct mtx lock;		/* the fields marked "lock", every folder (LOCKING) */
	struct fs_inode **inodes;	/* open-addressed by ino (lock) */
	size_t ninodes, capinodes;	/* (lock) */
	struct fs_folder **folders;	/* the folders held, folder.c (lock) */
	size_t nfolders, capfolders;	/* (lock) */
	uint64_t folder_serial;		/* the last folder's serial, names its snapshot files (lock) */
	/* The mount-wide bound on queries (-o max_queries): how many folders
	 * hold a slot (their query runs, or is about to), and the folders
	 * waiting for one, first come first served (folder.c).  Under lock. */
	int queries_running;
	struct fs_folder *queue_head, *queue_tail;
	size_t queue_len;
	pthread_cond_t queue_cond;	/* a slot handed to a waiting worker, or unmounting
					 * (waited on with lock) */
	FILE *log;			/* set before the session starts; never under lock */
	int log_level;		/* FETCH_LOG_*: lines above it are not written */
	struct fs_refused refused;	/* under refused.lock */
	atomic_int stopping;
	uint64_t use_clock;		/* folders' last use, for the LRU (under lock) */
	/* The snapshots' disk: snap_bytes is the sum of the sizes of the
	 * rendered files the folders hold open (deleted files in snap_dir,
	 * under lock); past snap_max (-o snapshot_max, fixed at mount) the
	 * least recently used idle snapshots are dropped (folder.c). */
	uint64_t snap_bytes, snap_max;
	/* a connection for the daemon's own short reads (listings,
	 * collector/), one user at a time */
	struct mtx small_lock;
	struct cache *small_cache;	/* (small_lock) */
	/* The day folders' times as the last subject listing read them
	 * (fs_days_fetched), for the stats of ls -l that follow it: the
	 * subject's name, the days' bounds, their fetch times (0: not held
	 * whole), when read, and cover_gen then.  Under small_lock. */
	struct {
		char subject[160];
		int64_t bounds[FS_DAYS_MAX + 1], fetched[FS_DAYS_MAX];
		size_t n;
		int64_t at_ms;
		uint64_t gen;
	} days;
	atomic_uint_fast64_t cover_gen;	/* one more each time a folder's query ends */
};

/* An inode the kernel knows (looked up and not yet forgotten). */
struct fs_inode {
	uint64_t ino;
	uint64_t nlookup;
	struct fs_node node;
};

/* The operations (ops.c). */
extern const struct fuse_lowlevel_ops fs_ops;

/*
 * The day folders' fetch times: day i of n is [bounds[i], bounds[i + 1])
 * of q's subject (and peer); fetched[i] is the fetch time (ms) when the
 * cache holds the day whole, else 0.  One SQL query, never a request;
 * with 'listing' its answer is kept for the stats that follow (one day
 * asked within FS_DAYS_KEEP_MS of it, before another query ends, is
 * answered from it without a query), and for the same listing again
 * within that time (a folder listed every second while a day downloads
 * reads the store once in ten seconds).  A failure is logged and answered
 * as "not held" (all 0).
 */
#define FS_DAYS_KEEP_MS 10000
void fs_days_fetched(struct fs_ctx *c, const struct cache_query *q, const int64_t *bounds,
		     size_t n, bool listing, int64_t *fetched);

/* The (subject, peer) pairs the cache holds, for the root's listing. */
int fs_cached_subjects(struct fs_ctx *c, struct cache_query **out, size_t *n);

/* Log each gap of q (at most FS_LOG_GAPS, then how many more), each line
 * starting with 'who'; a failure to read them is logged instead.  Reads
 * the cache under small_lock: never called with c->lock held. */
#define FS_LOG_GAPS 20
void fs_log_gaps(struct fs_ctx *c, const struct cache_query *q, const char *name);

/* The collector's clock now (its /info clock plus the time since). */
void fs_clock_now(struct fs_ctx *c, struct fs_clock *clk);

/* ---- folder.c: query folders, their snapshots and waiting readers ------- */

/* getattr or open of a file of a query folder: answered now when its
 * snapshot is ready, else parked and answered by the folder's worker. */
void fs_folder_getattr(struct fs_ctx *c, fuse_req_t req, const struct fs_node *n, uint64_t ino);
void fs_folder_open(struct fs_ctx *c, fuse_req_t req, const struct fs_node *n, uint64_t ino,
		    struct fuse_file_info *fi);
/* The attributes of a query file whose snapshot is ready (0), without
 * waiting; -EAGAIN when it is not.  Lookup answers with them, so that a
 * renewed name does not reset a cached file's size (and its page cache). */
int fs_folder_stat(struct fs_ctx *c, const struct fs_node *n, uint64_t ino, struct stat *st,
		   double *timeout);
/* The text of .progress for a folder (malloc'd), NULL when out of memory;
 * never waits, and never makes a folder: one never asked is "state:
 * idle".  Its last line counts the mount's queries and folders. */
char *fs_folder_progress(struct fs_ctx *c, const struct fs_node *n);
/* Unmount: cancel every worker's query or render and join every worker,
 * answer every parked request EINTR, free the folders.  After it no
 * thread of folder.c uses the engine, the cache or the log. */
void fs_folders_shutdown(struct fs_ctx *c);

/* The snapshots held now: how many folders hold rendered files, and the
 * sum of those files' sizes (c->snap_bytes).  Never fails. */
void fs_snapshots_held(struct fs_ctx *c, size_t *folders, uint64_t *bytes);

/* An open file: an fd on a rendered snapshot, or bytes in memory. */
struct fs_handle {
	int fd;
	char *mem;
	size_t size;
	struct fs_folder *folder;	/* the folder of fd's snapshot (counted in its opens), or NULL */
};

/* Release: close h's descriptor and free it; a snapshot's handle is no
 * longer counted as open, so that its folder may be dropped again. */
void fs_handle_release(struct fs_ctx *c, struct fs_handle *h);

/* Files made from the cache rather than a query: README.txt and
 * collector/ (malloc'd text). */
int fs_static_file(struct fs_ctx *c, const struct fs_node *n, char **text, size_t *len);

/* ---- errors ----------------------------------------------------------------- */

/* The one table that turns an engine or cache failure into the errno a
 * reader sees. */
int fs_errno(int rc);

/* Whether a failure (a negative errno, as fs_errno takes) may pass by
 * itself: a full disk, out of descriptors or memory, a busy database, an
 * interruption.  A render that fails so answers the readers waiting for it
 * and is tried again on the next read; any other failure is kept with the
 * snapshot. */
bool fs_errno_transient(int rc);

/* Log a line (to the log file, and stderr in the foreground), stamped
 * with the time in ISO 8601 UTC.  fs_log writes a failure (FETCH_LOG_ERROR:
 * always written); fs_log_at a line of any level, written only when the
 * mount's -o log_level= takes it.  Never fails: a line that cannot be
 * written is lost. */
void fs_log(struct fs_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fs_log_at(struct fs_ctx *c, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Log that the name 'name' in the folder 'parent' was refused (ENOENT),
 * with why (fs_lookup_why) and what that folder takes, under the limits of
 * struct fs_refused: a path logged lately, or past the minute's lines, is
 * not logged again.  Never fails. */
void fs_log_refused(struct fs_ctx *c, const struct fs_node *parent, const char *name,
		    const char *why);

/* Log that the name 'name' in the folder 'parent', taken as the node n,
 * is another spelling of n's canonical name ("2026-12-5" for
 * "2026-12-05"), so that the log's lines about n, which use the canonical
 * path, can be found from the name typed; under the same limits as
 * fs_log_refused, at level info.  Nothing when name is canonical.  Never
 * fails. */
void fs_log_spelling(struct fs_ctx *c, const struct fs_node *parent, const char *name,
		     const struct fs_node *n);

/* Log how many refused names were not logged, if any (at unmount). */
void fs_log_refused_flush(struct fs_ctx *c);

/* Room for a node's canonical path (fs_node_path), which names a query
 * folder in every log line about its query: "/10.0.1.5/2026-12-05". */
#define FS_PATH_LEN 512

#endif
