/*
 * nfdump.h - the core of the nfdump dialect (issue 14): an archive of
 * nfcapd files read with Debian's `nfdump` 1.7.1 as a subprocess.
 *
 * Four steps, each usable alone (the driver that wires them into the
 * engine is a thin shim over them):
 *
 *   nfd_archive_files  which of the archive's files can hold the flows that
 *                      started in a window [start, end)
 *   nfd_argv           the command for those files, subject and peer
 *   nfd_run            run it: pipes, bounded buffers, a deadline, cancel
 *   nfd_decode         nfdump's output into struct flow_rec, selected by
 *                      first-seen and checked against subject and peer
 *
 * The output format is `-o json -q` read line by line (docs/nfdump.md,
 * "Decoding", says why and shows real output).  Conventions as in the rest
 * of fetch/: every function returns 0 or a negative errno and writes a one
 * line cause into err (FETCH_ERRLEN bytes) when it fails; no global state.
 */
#ifndef FLOWFS_NFDUMP_H
#define FLOWFS_NFDUMP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"

#define NFD_LINE_MAX 1024		/* longest output line taken (nfdump's are < 200) */
#define NFD_STDERR_MAX 4096		/* nfdump's stderr kept for the error */
#define NFD_FILES_MAX 8192		/* files one listing may hold (28 days of 5-minute files) */
#define NFD_REL_MAX 128			/* a file's path under the archive's root, with its NUL */
#define NFD_CHANNELS_MAX 16		/* nfsen channels of one profile */
#define NFD_LAYOUT_MAX 8		/* nfcapd -S 0 to 8 */
#define NFD_INTERVAL_MS (300 * 1000)	/* nfcapd -t: a file's interval */
#define NFD_ACTIVE_MS (300 * 1000)	/* a long flow is exported at least this often */
#define NFD_GRACE_MS 500		/* SIGTERM, then SIGKILL this much later */

/*
 * An archive: nfcapd's -w directory (root, no channels), or an nfsen
 * profile (root its profiles-data/<profile> directory, e.g.
 * profiles-data/live, and the channels its subdirectories, each with the
 * same layout).  File names are nfcapd.YYYYmmddHHMM[SS] in the collector's
 * local time.
 */
struct nfd_archive {
	const char *root;		/* no ':' (nfdump's -M separator) */
	const char *channels[NFD_CHANNELS_MAX];	/* [A-Za-z0-9_.-]+, not "." or ".." */
	size_t nchannels;		/* 0: a plain nfcapd archive */
	int layout;			/* nfcapd -S: 0 flat, 1 %Y/%m/%d, 2 %Y/%m/%d/%H,
					 * 3 %Y/%W/%u, 4 %Y/%W/%u/%H, 5 %Y/%j, 6 %Y/%j/%H,
					 * 7 %F, 8 %F/%H */
	/* The zone of the file names (nfd_tz_open's): NULL or "" the
	 * process's zone (TZ), "UTC" (or "Z"), a fixed offset "+hh:mm" /
	 * "-hh:mm", or a zone's name ("Europe/Prague"), read from its TZif
	 * file, the process's TZ untouched. */
	const char *files_tz;
	int64_t interval_ms;		/* nfcapd -t; 0: NFD_INTERVAL_MS */
	/* How long after its start a flow may still be written: the
	 * exporter's active timeout plus the collector's delay; 0:
	 * NFD_ACTIVE_MS + the interval.  Files up to this far past a window's
	 * end are read, so long flows are not lost. */
	int64_t bound_ms;
};

/* One file: its interval's start (UTC ms) and its path under the root
 * ("2026/11/27/nfcapd.202611270005"; under each channel for nfsen). */
struct nfd_file {
	int64_t ms;
	char rel[NFD_REL_MAX];
	uint32_t chans;			/* nfsen: the channels that hold it (bit c for
					 * channels[c]); 0 for a plain archive */
};

struct nfd_files {
	struct nfd_file *v;
	size_t n;
};

void nfd_files_free(struct nfd_files *f);

/*
 * The archive's files that can hold a flow that started in [start, end):
 * those whose interval [T, T + interval) ends after start and that begin
 * before end + bound, in time order (ties by path), each once (the union of
 * the channels, each file's chans saying which hold it).  Only the layout's directories for the days or hours in
 * that range are read (no recursion); a name that is not
 * nfcapd.YYYYmmddHHMM[SS] is ignored (nfcapd.current.PID, dotfiles).
 * A missing directory is no file.  Fails with -EINVAL (a bad layout, zone,
 * channel or range), -E2BIG (more than NFD_FILES_MAX files, or a path
 * longer than NFD_REL_MAX or PATH_MAX), -ENOMEM, or opendir's errno for
 * the root or a channel (-ENOENT: "no archive at ..."), err saying which.
 */
int nfd_archive_files(const struct nfd_archive *a, int64_t start, int64_t end,
		      struct nfd_files *out, char *err);

/*
 * The zone of an archive's file names (nfdump_tz.c; docs/nfdump.md, "File
 * names and their time").  nfd_tz_open takes files_tz as nfd_archive
 * says: NULL or "" the process's zone (localtime_r), "UTC" or "Z", a
 * fixed offset "+hh:mm" (up to 14 h), or a zone's name of
 * [A-Za-z0-9_+/-] (not absolute, no "..") whose TZif file under $TZDIR
 * (default /usr/share/zoneinfo) is read with a strict, bounded parser
 * (version 2+, its 64-bit data and footer TZ string; no leap seconds).
 * It fails with -EINVAL (err saying why: a bad offset or name, no such
 * zone, a file that is not one), -ENOMEM, or open's errno.
 */
#define NFD_TZ_TRANS_MAX 4096		/* transitions of a zone file (America/New_York: 236) */
struct nfd_tz;
int nfd_tz_open(const char *files_tz, struct nfd_tz **out, char *err);
void nfd_tz_free(struct nfd_tz *z);

/* The zone's name as given, NULL for the process's zone. */
const char *nfd_tz_name(const struct nfd_tz *z);

/* The UTC offset (local = UTC + off, seconds) at UTC second t: 0, or
 * -ERANGE past a zone file's last transition when it has no TZ string,
 * -EOVERFLOW for a time localtime_r cannot take. */
int nfd_tz_offset(const struct nfd_tz *z, int64_t t, int32_t *off);

/* The wall time of UTC second t, as seconds on a UTC-like scale (the wall
 * clock's date and time read as if UTC); nfd_tz_offset's errors. */
int nfd_tz_wall(const struct nfd_tz *z, int64_t t, int64_t *wall);

/*
 * The UTC seconds of a wall time (on nfd_tz_wall's scale).  Once: first
 * and second equal.  Twice (the repeated hour when clocks go back): first
 * the earlier, second the later.  Skipped (the hour clocks jump over, which
 * nfcapd never names): both the wall time read with the offset in force
 * before the change (02:30 on Europe/Prague's spring day is 01:30 UTC, as
 * mktime does).  nfd_tz_offset's errors.
 */
enum nfd_tz_fold { NFD_TZ_ONCE, NFD_TZ_TWICE, NFD_TZ_SKIPPED };
int nfd_tz_utc(const struct nfd_tz *z, int64_t wall, int64_t *first, int64_t *second,
	       enum nfd_tz_fold *fold);

/*
 * Detecting the zone (docs/nfdump.md, "Detecting the zone"): `nfdump -I -r
 * FILE` prints a file's statistics, among them "Flows: N", "First: S" and
 * "Last: S" (UTC epoch seconds).  nfd_stat_parse reads those three lines:
 * 0, or -EBADMSG (err says so) when one is missing or not a number.
 */
struct nfd_stat {
	int64_t flows, first, last;
};
int nfd_stat_parse(const char *buf, size_t len, struct nfd_stat *st, char *err);

/*
 * Does a file's statistics fit its name read in z?  name_wall: the name's
 * wall time (nfd_tz_wall's scale), interval_s nfcapd's -t.  The records of
 * a file were received in its slot [S, S + I), so its Last lies in [S - I,
 * S + I] (a quiet exporter's last flow ended up to an interval before the
 * slot); the offset seen is name_wall - Last - I/2 rounded to 15 minutes
 * (*seen), the zone's at that name *zone_off.  AGREES when they are equal
 * (either hour of a repeated one), DIFFERS when not; for files longer than
 * 5 minutes, where [S - I, S + I] holds several quarter hours, AGREES when
 * the zone's offset is one that Last allows (*seen a hint); INCONCLUSIVE when the
 * file holds no flow or the offset seen is past 14 hours (replayed or
 * copied data).  Pure: no I/O, no clock.
 */
enum nfd_tz_verdict { NFD_TZ_AGREES, NFD_TZ_DIFFERS, NFD_TZ_INCONCLUSIVE };
enum nfd_tz_verdict nfd_tz_check(const struct nfd_tz *z, int64_t name_wall, int64_t interval_s,
				 const struct nfd_stat *st, int32_t *seen, int32_t *zone_off);

/* An offset as "+hh:mm" / "-hh:mm" into buf (at least 8 bytes). */
void nfd_tz_format(int32_t off, char *buf, size_t len);

/*
 * The start (UTC ms) of the interval a file named nfcapd.YYYYmmddHHMM[SS]
 * stands for, its name read in files_tz (nfd_archive's rules; a name in
 * the repeated hour: the earlier time, nfd_tz_utc).  name NULL: only
 * files_tz is checked.  -EINVAL, err saying why, for a zone nfd_tz_open
 * refuses or a name that is not an nfcapd file's.
 */
int nfd_name_time(const char *name, const char *files_tz, int64_t *ms, char *err);

/* The wall time (seconds, UTC-like scale) of a name nfcapd.YYYYmmddHHMM[SS];
 * -EINVAL for any other name. */
int nfd_name_wall(const char *name, int64_t *wall);

/*
 * Where nfd_archive_scan reads a directory: NULL is the local file system
 * (opendir); the ssh side (nfdump_ssh.h) serves listings it fetched from
 * the collector in one command.  list() calls take(arg, NAME) for each
 * entry of the directory at path (the root, or root/channel, then "/" and
 * the layout's subdirectory, as nfd_archive_files would open it) and
 * returns 0, -ENOENT when there is no such directory, take's error when
 * take fails (then it stops), or another negative errno (err may say why;
 * else the scan says "cannot read the archive's directory").
 */
struct nfd_dirsrc {
	int (*list)(void *ctx, const char *path, int (*take)(void *arg, const char *name),
		    void *arg, char *err);
	void *ctx;
};

/* nfd_archive_files with the directories read through src (NULL: the local
 * file system; nfd_archive_files is this with NULL). */
int nfd_archive_scan(const struct nfd_archive *a, int64_t start, int64_t end,
		     const struct nfd_dirsrc *src, struct nfd_files *out, char *err);

/* nfdump's output format: -o json, read line by line (docs/nfdump.md). */
extern const char nfd_format[];

/*
 * One run of nfdump: argv (NULL-terminated) and a minimal environment
 * (TZ=UTC, LC_ALL=C, PATH), all pointing into the struct's own buffers.
 */
#define NFD_ARGV_MAX 16
struct nfd_cmd {
	char *argv[NFD_ARGV_MAX];
	char *envp[4];
	char mdirs[4096 + NFD_CHANNELS_MAX * 64];	/* -M root[:channel...] */
	char range[2 * NFD_REL_MAX + 2];		/* -R first:last */
	char filter[320];
	char prog[4096];
};

/*
 * The command that prints every flow of files (a listing from
 * nfd_archive_files, n >= 1) that involves q's subject and, when q has one,
 * its peer: `nfdump -C none -q -o json -M ROOT[/CHANNEL] -R FIRST:LAST
 * FILTER` with FILTER `host A` or `net P/len` (`any` for a /0), and with a
 * peer `(src SUBJECT and dst PEER) or (dst SUBJECT and src PEER)` (the peer
 * on the other side, also when its prefix holds the subject), written
 * canonically from the parsed prefixes.  An nfsen profile is read one
 * channel a command (chan, an index into a->channels; ignored for a plain
 * archive), FIRST and LAST the first and last of files that channel
 * holds: nfdump 1.7.1's -M with several channels fails with "stat() error
 * ... File not found" when a file of the range is missing in one of them
 * (a channel added later, a collector that stopped).  No -t: in 1.7.1 it
 * keeps only flows entirely inside its range; the decoder selects by
 * start.  prog: the nfdump binary (NULL: "nfdump", found on PATH).
 * -ENOENT when files is empty (or the channel holds none of them: nothing
 * to read), -EINVAL for a root with ':', a bad channel or index, -E2BIG
 * when a path does not fit.
 */
int nfd_argv(const char *prog, const struct nfd_archive *a, const struct nfd_files *files,
	     size_t chan, const struct cache_query *q, struct nfd_cmd *out, char *err);

/* A growing output buffer (p malloc'd, NUL-terminated when not NULL). */
struct nfd_buf {
	char *p;
	size_t len, cap;
};

void nfd_buf_free(struct nfd_buf *b);

/* Room for n more bytes and a NUL in b (grown by doubling); -ENOMEM. */
int nfd_buf_reserve(struct nfd_buf *b, size_t n);

/* CLOCK_MONOTONIC in ms, the clock of nfd_run's deadline. */
int64_t nfd_mono_ms(void);

/*
 * Run argv[0] (searched on PATH when it has no '/') with envp, stdin from
 * /dev/null, stdout into out (appended, at most limit bytes) and stderr
 * kept up to NFD_STDERR_MAX bytes, in its own process group with default
 * signals and an empty signal mask.  Waits with poll() until the child
 * has exited and both pipes are closed.  On the deadline (CLOCK_MONOTONIC
 * ms, 0: none), on *cancel becoming non-zero (checked every 50 ms; cancel
 * may be NULL) or when stdout passes limit, the child's group is sent
 * SIGTERM, then SIGKILL after NFD_GRACE_MS; the child is always reaped.
 *
 * Returns 0 when it exited with status 0; -ETIMEDOUT, -ECANCELED, -E2BIG
 * for the three reasons above; -EIO when it exited non-zero or was killed
 * by a signal, err saying "nfdump exited with status 254 (the filter was
 * refused): <its stderr>"; -ENOENT when the program cannot be run;
 * -ENOMEM; pipe's and poll's errno.  err is one line (stderr escaped).
 */
int nfd_run(char *const argv[], char *const envp[], int64_t deadline_ms,
	    const atomic_int *cancel, size_t limit, struct nfd_buf *out, char *err);

/*
 * Who nfd_run_as runs, for its errors: the name they start with ("nfdump",
 * "ssh") and what a non-zero exit status means.
 */
struct nfd_runner {
	const char *name;
	const char *(*meaning)(int status);
};

/* nfdump 1.7.1's exit statuses explained ("the filter was refused" for
 * 254); nfd_nfdump_runner is {"nfdump", nfd_exit_meaning}. */
const char *nfd_exit_meaning(int status);
extern const struct nfd_runner nfd_nfdump_runner;

/* nfd_run, with errors naming who (nfd_run is this with nfd_nfdump_runner). */
int nfd_run_as(const struct nfd_runner *who, char *const argv[], char *const envp[],
	       int64_t deadline_ms, const atomic_int *cancel, size_t limit, struct nfd_buf *out,
	       char *err);

/*
 * Where nfd_run_sink puts the child's stdout: called with each chunk as it
 * is read (at most 64 KiB, any byte boundary); 0 to go on, or a negative
 * errno with err written to stop: the child is killed and nfd_run_sink
 * returns that errno.
 */
typedef int (*nfd_sink_fn)(void *arg, const char *p, size_t n, char *err);

/* The sink of nfd_run_as: stdout appended to out, at most limit bytes past
 * start_len (then -E2BIG, "WHO printed more than LIMIT bytes"; -ENOMEM). */
struct nfd_buf_sink {
	const struct nfd_runner *who;
	struct nfd_buf *out;
	size_t limit, start_len;
};
int nfd_buf_take(void *arg, const char *p, size_t n, char *err);

/* nfd_run_as, with stdout handed to sink as it comes instead of kept:
 * output is consumed while the child writes (no limit of its own: the
 * sink bounds what it keeps). */
int nfd_run_sink(const struct nfd_runner *who, char *const argv[], char *const envp[],
		 int64_t deadline_ms, const atomic_int *cancel, nfd_sink_fn sink, void *arg,
		 char *err);

/* What nfd_decode found. */
struct nfd_out {
	struct flow_rec *recs;		/* malloc'd, n kept */
	size_t n, cap;
	size_t records;			/* records in the output, kept or not */
	size_t outside;			/* started outside [start, end): another window's */
	size_t foreign;			/* neither side in the subject (or not the peer) */
	size_t rejected;		/* malformed records, never kept */
	/* The largest (received - last) in ms of the records decoded (kept,
	 * outside or foreign, not rejected) that come from an exporter
	 * (export_sysid not 0): how long after its end the collector stored
	 * a record.  0 when none says so: nfpcapd's records (sysid 0) carry
	 * its run's wall clock as "received", which says nothing. */
	int64_t late_ms;
	char why[160];			/* the first rejection's cause */
};

void nfd_out_free(struct nfd_out *o);

/*
 * Decode nfdump's `-o json -q` output (len bytes at buf, no NUL needed)
 * into out (appended).  A record is kept when its first-seen is in
 * [start, end) and it involves q's subject (and q's peer on the other
 * side, when q has one); others are counted in outside or foreign.
 * Strict: a record with a line longer than NFD_LINE_MAX, a number that is
 * not a plain decimal in range, an address inet_pton refuses, a time that
 * is not yyyy-mm-ddThh:mm:ss.mmm, a field twice or a required field
 * (first, last, proto, addresses, in_packets, in_bytes) missing is
 * rejected and counted, the first cause in out->why.  out->late_ms is
 * raised to the lateness of each record parsed (see struct nfd_out).
 * Unknown fields -1;
 * what nfdump says beyond the columns goes to extra (docs/nfdump.md).
 * Ids: see docs/nfdump.md ("Flow ids"): a hash of the identifying fields,
 * and ".2", ".3" ... for identical records again in the same call.
 * "No matching flows" and empty output are zero records.  Returns 0,
 * -ENOMEM, or -EBADMSG (err says why) for output that holds lines but
 * not one record of nfdump's JSON.
 */
int nfd_decode(const char *buf, size_t len, const struct cache_query *q, int64_t start,
	       int64_t end, struct nfd_out *out, char *err);

/*
 * nfd_decode in steps, for output read while nfdump writes it (the
 * driver's windows feed nfd_run_sink's chunks): nfd_dec_new starts
 * decoding into out (q must outlive the decoder), nfd_dec_feed takes the
 * next bytes (any boundary: a line cut between two chunks is kept, up to
 * NFD_LINE_MAX bytes), nfd_dec_end takes the end of the output (the last
 * line, the check for output that is not nfdump's JSON, the ids of
 * identical records; cut: the output was stopped on purpose, so a line or
 * record it ends inside is dropped, not counted as rejected) and
 * nfd_dec_free frees the decoder, never out.
 * Records are kept in out as they end, so out->n may be read between
 * feeds.  nfd_dec_new and nfd_dec_feed fail only with -ENOMEM (nfd_dec_new
 * writes err); nfd_dec_end returns what nfd_decode does.  After a failure
 * the decoder may only be freed.
 */
struct nfd_dec;
int nfd_dec_new(const struct cache_query *q, int64_t start, int64_t end, struct nfd_out *out,
		struct nfd_dec **dp, char *err);
int nfd_dec_feed(struct nfd_dec *d, const char *buf, size_t len);
int nfd_dec_end(struct nfd_dec *d, bool cut, char *err);
void nfd_dec_free(struct nfd_dec *d);

#endif
