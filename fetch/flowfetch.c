/*
 * flowfetch.c - the engine without FUSE: one query, one file.
 *
 *   flowfetch URL --ip A [--peer P] --from T --to T [--tz Z]
 *             [--token-file F] [--cache DIR] -o FILE
 *
 * The token comes from --token-file or FLOWFS_TOKEN, never from the
 * command line (it would show in the process list).  The output is
 * written to FILE.part and renamed when whole, so a FILE that exists is
 * always complete as rendered.  Exit status: 0 complete, 1 error, 2 bad
 * usage, 3 written but incomplete (a gap or rejected records: the message
 * says what is missing), 130 interrupted.
 */
#include "fetch.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


static atomic_int interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	atomic_store(&interrupted, 1);
}

static void usage(FILE *f)
{
	fputs("usage: flowfetch URL --ip ADDR|PREFIX [--peer ADDR|PREFIX] --from T --to T -o FILE\n"
	      "  --from T, --to T     a date (YYYY-MM-DD: whole days in --tz, --to inclusive)\n"
	      "                       or an ISO 8601 time (YYYY-MM-DDTHH:MM[:SS[.mmm]][Z|+HH:MM]);\n"
	      "                       times select flows that start in [from, to)\n"
	      "  --tz ZONE            time zone for dates, times without offset and output (default UTC)\n"
	      "  -o FILE              FILE.csv, FILE.ndjson or FILE.sqlite; - for CSV on stdout\n"
	      "  --token-file F       the bearer token (else $FLOWFS_TOKEN); for an SNA Manager\n"
	      "                       user:password\n"
	      , f);
	char drivers[512];
	fetch_driver_help(drivers, sizeof(drivers));
	fprintf(f, "  --driver NAME        %s\n", drivers);
	fputs("  --tenant ID          sna: the tenant (domain) id, when the Manager has several\n"
	      "  --max-records N      the collector's cap when it does not say (sna; default 10000);\n"
	      "                       nfdump: the most records a window may hold (default 10000)\n"
	      "  --files-tz ZONE      nfdump: the zone of the archive's file names: UTC, an offset\n"
	      "                       (+01:00) or --tz (the default)\n"
	      "  --active-timeout S   nfdump: the exporters' active timeout (default 300)\n"
	      "  --nfdump PROGRAM     nfdump: the nfdump program (default nfdump on PATH; over ssh:\n"
	      "                       on the collector's PATH)\n"
	      "  --ssh-config F       nfdump+ssh: ssh's configuration file (ssh -F)\n"
	      "  --identity F         nfdump+ssh: the private key (ssh -i)\n"
	      "  --known-hosts F      nfdump+ssh: the known hosts (default the user's)\n"
	      "  --cache DIR          cache directory (default $XDG_CACHE_HOME/flowfs)\n"
	      "  --max-inflight N     requests in flight (default 4)\n"
	      "  --live-ttl S         refetch live windows older than S seconds (default 60)\n"
	      "  --stall-timeout S    give a request up after S seconds without data (default 30)\n"
	      "  --request-timeout S  give a request up after S seconds in all (default 300)\n"
	      "  --connect-timeout S  (default 10)     --retries N  per window (default 6)\n"
	      "  --ca-file F          trust this CA bundle; --insecure: do not verify TLS\n"
	      "  --quiet              no progress, no summary\n"
	      "exit status: 0 complete, 1 error, 2 usage, 3 incomplete, 130 interrupted\n", f);
}

/* Read the token from a private file (fetch_token_file_check; its first
 * line): 0, or -errno with the cause in err; a line longer than
 * FETCH_TOKEN_MAX is refused (out holds one byte more, to see it), never
 * cut. */
static int read_token(const char *path, char *out, size_t len, char *err)
{
	FILE *f = fopen(path, "r");
	size_t n;
	int rc;

	if (!f) {
		snprintf(err, FETCH_ERRLEN, "cannot read the token file %s: %s", path, strerror(errno));
		return -errno;
	}
	rc = fetch_token_file_check(fileno(f), path, err);
	if (rc) {
		fclose(f);
		return rc;
	}
	n = fread(out, 1, len - 1, f);
	fclose(f);
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	if (!out[0]) {
		snprintf(err, FETCH_ERRLEN, "the token file %s is empty", path);
		return -EINVAL;
	}
	if (strlen(out) > FETCH_TOKEN_MAX) {
		explicit_bzero(out, len);
		snprintf(err, FETCH_ERRLEN, "the token in %s is longer than %d bytes (16 KiB), the "
			 "most flowfetch accepts", path, FETCH_TOKEN_MAX);
		return -EINVAL;
	}
	return 0;
}

/* An --ip or --peer value into *p: 0, or -EINVAL with a message that
 * says why (host bits set: which network was meant). */
static int parse_party(const char *opt, const char *text, struct cache_prefix *p)
{
	struct cache_prefix network;
	const char *why;
	char net[64];

	if (cache_prefix_parse_why(text, p, &why, &network) == 0)
		return 0;
	if (network.len) {
		cache_prefix_format(&network, net, sizeof(net));
		fprintf(stderr, "flowfetch: %s '%s': %s; did you mean %s?\n", opt, text, why, net);
	} else {
		fprintf(stderr, "flowfetch: %s '%s': %s\n", opt, text, why);
	}
	return -EINVAL;
}

/* A --from or --to value (cache_when_parse: a date is its local midnight,
 * *is_date tells the caller, when it asks, that an inclusive --to date
 * means the day's end): 0, or -EINVAL with a message that says why and
 * the forms taken. */
static int parse_when(const char *opt, const char *text, int64_t *ms, bool *is_date)
{
	struct cache_when w;
	const char *why;

	if (cache_when_parse(text, strlen(text), 0, &w, &why)) {
		fprintf(stderr, "flowfetch: %s '%s': %s (accepted: %s, the time with an optional "
				"Z or +hh:mm)\n", opt, text, why, cache_when_forms);
		return -EINVAL;
	}
	*ms = w.ms;
	if (is_date)
		*is_date = w.is_date;
	return 0;
}

/* The end of the day that starts at 'ms' (23, 24 or 25 hours later). */
static int64_t day_after(int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	localtime_r(&t, &tm);
	tm.tm_mday++;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = -1;
	return (int64_t)cache_mktime(&tm) * 1000;
}

/*
 * The progress line (fetch_progress_line) on a terminal, redrawn in place
 * every 250 ms: `\r`, the line, `\033[K`.  It is one column narrower
 * than the terminal, since a character in the last column makes some
 * terminals wrap at once.  A resize is learnt from SIGWINCH without a
 * handler, so without a flag outside this struct: main blocks SIGWINCH
 * before any thread starts, and this thread takes it with sigtimedwait,
 * which is also its 250 ms sleep; then the width is read again
 * (TIOCGWINSZ on stderr) and the line redrawn at once.
 */
struct ticker {
	struct fetch_progress *prog;
	atomic_int stop;
	pthread_t th;
};

/* stderr's terminal width, or 80 when it does not say. */
static int tick_cols(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

static void *tick_main(void *arg)
{
	struct ticker *t = arg;
	struct fetch_progress *p = t->prog;
	struct timespec ts = {0, 250000000};
	sigset_t winch;
	char line[512], frame[sizeof(line) + 8];
	int cols = tick_cols();

	sigemptyset(&winch);
	sigaddset(&winch, SIGWINCH);
	while (!atomic_load(&t->stop)) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		struct fetch_progress_view v = {
			.flows = atomic_load(&p->flows),
			.windows_done = atomic_load(&p->windows_done),
			.windows_planned = atomic_load(&p->windows_planned),
			.requests = atomic_load(&p->requests),
			.retries = atomic_load(&p->retries),
		};
		int64_t started = atomic_load(&p->started_ms);
		v.elapsed_ms = started ? (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - started : 0;
		fetch_progress_line(&v, cols - 1, line, sizeof(line));
		snprintf(frame, sizeof(frame), "\r%s\033[K", line);
		fputs(frame, stderr);
		if (sigtimedwait(&winch, NULL, &ts) == SIGWINCH)
			cols = tick_cols();
	}
	fputs("\r\033[K", stderr);
	return NULL;
}

enum { O_IP = 256, O_PEER, O_FROM, O_TO, O_TZ, O_TOKENFILE, O_CACHE, O_INFLIGHT,
       O_LIVETTL, O_CAFILE, O_INSECURE, O_QUIET, O_HELP, O_STALL, O_REQTIMEOUT,
       O_CONNTIMEOUT, O_RETRIES, O_DRIVER, O_TENANT, O_MAXREC, O_FILESTZ, O_ACTIVE,
       O_NFDUMP, O_SSHCONFIG, O_IDENTITY, O_KNOWNHOSTS };

/* A whole number in [lo, hi], or -1. */
static long number(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	return errno || end == s || *end || v < lo || v > hi ? -1 : v;
}

/* The one-line message of a failed query.  A full disk (-ENOSPC, SQLite's
 * "database or disk is full") also names the cache directory, and says that
 * what was stored before it filled is kept. */
/* The engine's log lines (an audit pass) go to stderr; not the windows
 * asked (FETCH_LOG_DEBUG: the progress bar shows them). */
static void say_log(void *arg, int level, const struct cache_query *q, const char *line)
{
	(void)q;
	if (!*(const bool *)arg && level <= FETCH_LOG_INFO)
		fprintf(stderr, "flowfetch: %s\n", line);
}

static void say_failure(int rc, const char *err, const char *dir)
{
	if (rc == -ENOSPC)
		fprintf(stderr, "flowfetch: %s: %s on the disk of the cache %s; what was fetched "
				"is kept, free some space and run again\n", err, strerror(ENOSPC), dir);
	else
		fprintf(stderr, "flowfetch: %s\n", err);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"ip", 1, 0, O_IP}, {"peer", 1, 0, O_PEER}, {"from", 1, 0, O_FROM},
		{"to", 1, 0, O_TO}, {"tz", 1, 0, O_TZ}, {"token-file", 1, 0, O_TOKENFILE},
		{"cache", 1, 0, O_CACHE}, {"max-inflight", 1, 0, O_INFLIGHT},
		{"live-ttl", 1, 0, O_LIVETTL}, {"ca-file", 1, 0, O_CAFILE},
		{"insecure", 0, 0, O_INSECURE}, {"quiet", 0, 0, O_QUIET},
		{"help", 0, 0, O_HELP}, {"output", 1, 0, 'o'},
		{"stall-timeout", 1, 0, O_STALL}, {"request-timeout", 1, 0, O_REQTIMEOUT},
		{"connect-timeout", 1, 0, O_CONNTIMEOUT}, {"retries", 1, 0, O_RETRIES},
		{"driver", 1, 0, O_DRIVER}, {"tenant", 1, 0, O_TENANT},
		{"max-records", 1, 0, O_MAXREC}, {"files-tz", 1, 0, O_FILESTZ},
		{"active-timeout", 1, 0, O_ACTIVE}, {"nfdump", 1, 0, O_NFDUMP},
		{"ssh-config", 1, 0, O_SSHCONFIG}, {"identity", 1, 0, O_IDENTITY},
		{"known-hosts", 1, 0, O_KNOWNHOSTS},
		{0, 0, 0, 0},
	};
	const char *ip = NULL, *peer = NULL, *from = NULL, *to = NULL, *tz = "UTC";
	const char *token_file = NULL, *cache_dir = NULL, *out_path = NULL, *ca_file = NULL;
	const char *driver = NULL, *tenant = NULL, *files_tz = NULL, *nfdump = NULL;
	const char *ssh_config = NULL, *identity = NULL, *known_hosts = NULL;
	char token[FETCH_TOKEN_MAX + 2] = "", err[FETCH_ERRLEN], cerr[CACHE_ERRLEN], dir[4096];
	char part[4200] = "";
	long inflight = 4, live_ttl = 60, stall = 30, reqto = 300, connto = 10, retries = 6;
	long maxrec = 0, active = FETCH_ACTIVE_TIMEOUT_DEFAULT;
	bool insecure = false, quiet = false;
	struct fetch_engine *e = NULL;
	struct fetch_result res;
	struct cache_query q;
	static struct fetch_progress prog;
	int c, rc, status = 1;

	/* first of all: no core dump, no tracing by the user's other
	 * processes, before a secret is read */
	if (fetch_no_dump(err)) {
		fprintf(stderr, "flowfetch: %s\n", err);
		return 1;
	}
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case O_IP: ip = optarg; break;
		case O_PEER: peer = optarg; break;
		case O_FROM: from = optarg; break;
		case O_TO: to = optarg; break;
		case O_TZ: tz = optarg; break;
		case O_TOKENFILE: token_file = optarg; break;
		case O_CACHE: cache_dir = optarg; break;
		case O_INFLIGHT:
		case O_LIVETTL:
		case O_STALL:
		case O_REQTIMEOUT:
		case O_CONNTIMEOUT:
		case O_MAXREC:
		case O_ACTIVE:
		case O_RETRIES: {
			static const struct { int opt; long lo, hi; const char *name; } lim[] = {
				{O_INFLIGHT, 1, 64, "--max-inflight"}, {O_LIVETTL, 0, 86400, "--live-ttl"},
				{O_STALL, 1, 3600, "--stall-timeout"}, {O_REQTIMEOUT, 1, 86400, "--request-timeout"},
				{O_CONNTIMEOUT, 1, 600, "--connect-timeout"}, {O_RETRIES, 1, 100, "--retries"},
				{O_MAXREC, 1, 10000000, "--max-records"},
				{O_ACTIVE, 1, FETCH_ACTIVE_TIMEOUT_MAX, "--active-timeout"},
			};
			for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
				if (lim[i].opt != c)
					continue;
				long v = number(optarg, lim[i].lo, lim[i].hi);
				if (v < 0) {
					fprintf(stderr, "flowfetch: %s must be a whole number from %ld to %ld\n",
						lim[i].name, lim[i].lo, lim[i].hi);
					return 2;
				}
				*(c == O_INFLIGHT ? &inflight : c == O_LIVETTL ? &live_ttl : c == O_STALL ? &stall :
				  c == O_REQTIMEOUT ? &reqto : c == O_CONNTIMEOUT ? &connto :
				  c == O_MAXREC ? &maxrec : c == O_ACTIVE ? &active : &retries) = v;
			}
			break;
		}
		case O_CAFILE: ca_file = optarg; break;
		case O_DRIVER: driver = optarg; break;
		case O_TENANT: tenant = optarg; break;
		case O_FILESTZ: files_tz = optarg; break;
		case O_NFDUMP: nfdump = optarg; break;
		case O_SSHCONFIG: ssh_config = optarg; break;
		case O_IDENTITY: identity = optarg; break;
		case O_KNOWNHOSTS: known_hosts = optarg; break;
		case O_INSECURE: insecure = true; break;
		case O_QUIET: quiet = true; break;
		case 'o': out_path = optarg; break;
		case O_HELP:
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1 || !ip || !from || !to || !out_path) {
		fprintf(stderr, "flowfetch: URL, --ip, --from, --to and -o are required\n");
		usage(stderr);
		return 2;
	}
	const char *url = argv[optind], *bare;
	const struct fetch_driver *drv;
	if (fetch_driver_resolve(url, driver, &drv, &bare, err)) {
		fprintf(stderr, "flowfetch: %s\n", err);
		return 2;
	}
	/* a user before '@' is a secret's place for a driver with a token (an
	 * nfdump+ssh:// URL's user is only a login name) */
	if (drv->secret && fetch_url_check(url, "--token-file", err)) {
		fprintf(stderr, "flowfetch: %s\n", err);
		return 2;
	}

	/* the zone: set once, so that localtime never re-reads it per row */
	if (setenv("TZ", tz, 1) != 0)
		return 1;
	tzset();
	if (!cache_tz_valid(tz)) {
		fprintf(stderr, "flowfetch: unknown time zone '%s' (an IANA name such as Europe/Berlin)\n", tz);
		return 2;
	}

	memset(&q, 0, sizeof(q));
	if (parse_party("--ip", ip, &q.subject))
		return 2;
	if (peer) {
		if (parse_party("--peer", peer, &q.peer))
			return 2;
		if (q.peer.v4 != q.subject.v4) {
			fprintf(stderr, "flowfetch: --ip and --peer are of different address families\n");
			return 2;
		}
		q.has_peer = true;
	}
	bool to_date;
	if (parse_when("--from", from, &q.start, NULL) || parse_when("--to", to, &q.end, &to_date))
		return 2;
	if (to_date)
		q.end = day_after(q.end);
	if (q.start >= q.end) {
		fprintf(stderr, "flowfetch: --from must be before --to\n");
		return 2;
	}

	enum cache_format fmt;
	size_t ol = strlen(out_path);
	if (strcmp(out_path, "-") == 0 || (ol > 4 && strcmp(out_path + ol - 4, ".csv") == 0))
		fmt = CACHE_CSV;
	else if (ol > 7 && strcmp(out_path + ol - 7, ".ndjson") == 0)
		fmt = CACHE_NDJSON;
	else if (ol > 7 && strcmp(out_path + ol - 7, ".sqlite") == 0)
		fmt = CACHE_SQLITE;
	else {
		fprintf(stderr, "flowfetch: -o must end in .csv, .ndjson or .sqlite (or be -)\n");
		return 2;
	}

	if (!drv->secret) {
		/* a driver that takes no token (nfdump): none is read */
	} else if (token_file) {
		if (read_token(token_file, token, sizeof(token), err)) {
			fprintf(stderr, "flowfetch: %s\n", err);
			return 2;
		}
	} else if (getenv("FLOWFS_TOKEN")) {
		if (strlen(getenv("FLOWFS_TOKEN")) > FETCH_TOKEN_MAX) {
			fprintf(stderr, "flowfetch: FLOWFS_TOKEN is longer than %d bytes (16 KiB), "
				"the most flowfetch accepts\n", FETCH_TOKEN_MAX);
			return 2;
		}
		snprintf(token, sizeof(token), "%s", getenv("FLOWFS_TOKEN"));
	}
	if (cache_dir) {
		snprintf(dir, sizeof(dir), "%s", cache_dir);
	} else if (getenv("XDG_CACHE_HOME") && getenv("XDG_CACHE_HOME")[0]) {
		snprintf(dir, sizeof(dir), "%s/flowfs", getenv("XDG_CACHE_HOME"));
	} else if (getenv("HOME")) {
		snprintf(dir, sizeof(dir), "%s/.cache/flowfs", getenv("HOME"));
	} else {
		fprintf(stderr, "flowfetch: no --cache, XDG_CACHE_HOME or HOME\n");
		return 2;
	}

	/* the cache directory, checked (owner, mode, no link) before any
	 * request; the engine's cache_open checks it again when it opens it */
	int cfd = cache_dir_open(dir, cerr);
	if (cfd < 0) {
		fprintf(stderr, "flowfetch: %s\n", cerr);
		return 1;
	}
	close(cfd);
	/* once, before the token is sent */
	if (token[0] && fetch_clear_text_warning(bare, drv->secret, err, sizeof(err)))
		fprintf(stderr, "flowfetch: warning: %s\n", err);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* blocked in every thread, from here on: the ticker takes it (tick_main) */
	sigset_t winch;
	sigemptyset(&winch);
	sigaddset(&winch, SIGWINCH);
	pthread_sigmask(SIG_BLOCK, &winch, NULL);
	if (fetch_global_init()) {
		fprintf(stderr, "flowfetch: cannot initialise libcurl\n");
		return 1;
	}

	struct fetch_opts fo = {
		.url = url, .token = token[0] ? token : NULL, .cache_dir = dir,
		.max_inflight = (unsigned)inflight, .live_ttl_ms = live_ttl * 1000,
		.stall_s = stall, .request_timeout_ms = reqto * 1000,
		.connect_timeout_ms = connto * 1000, .max_retries = retries ? (unsigned)retries : 0,
		.compress = -1, .insecure = insecure, .ca_file = ca_file,
		.driver = driver, .tenant = tenant, .max_records = (uint32_t)maxrec,
		.files_tz = files_tz, .nfdump = nfdump, .active_timeout_s = (unsigned)active,
		.ssh_config = ssh_config, .identity = identity, .known_hosts = known_hosts,
		.log = say_log, .log_arg = &quiet,
	};
	rc = fetch_engine_open(&fo, &e, err);
	explicit_bzero(token, sizeof(token));
	if (rc) {
		say_failure(rc, err, dir);
		goto out;
	}
	const struct fetch_info *info = fetch_engine_info(e);
	int64_t oldest = (info->now_ms / 86400000 - info->retention_days) * 86400000;
	char nowtext[40];
	cache_time_format(info->now_ms, nowtext, sizeof(nowtext));
	if (q.start > info->now_ms) {
		fprintf(stderr, "flowfetch: the range starts after the collector's clock (now %s); "
				"there are no flows there yet\n", nowtext);
		status = 2;
		goto out;
	}
	if (q.end > day_after(info->now_ms)) {
		fprintf(stderr, "flowfetch: the range ends after today (in --tz, by the collector's "
				"clock, now %s); there are no flows there yet\n", nowtext);
		status = 2;
		goto out;
	}
	if (info->retention_days > 0 && q.end <= oldest) {	/* 0: the collector does not say */
		fprintf(stderr, "flowfetch: the range ends before the collector's retention (%d days)\n",
			info->retention_days);
		status = 2;
		goto out;
	}

	struct ticker tk = {.prog = &prog};
	bool tty = !quiet && isatty(STDERR_FILENO);
	if (tty && pthread_create(&tk.th, NULL, tick_main, &tk) != 0)
		tty = false;
	rc = fetch_query(e, &q, &prog, &interrupted, &res, err);
	if (tty) {
		atomic_store(&tk.stop, 1);
		pthread_join(tk.th, NULL);
	}
	if (rc == -ECANCELED) {
		fprintf(stderr, "flowfetch: interrupted; what was fetched is kept in the cache\n");
		status = 130;
		goto out;
	}
	if (rc) {
		say_failure(rc, err, dir);
		goto out;
	}

	/* exit 0 says every flow of the range is in the file: the store's
	 * audit stands behind it, not the planner (issue 10) */
	struct cache_audit audit;
	bool complete;
	rc = fetch_audit(e, fetch_engine_cache(e), &q, &res, &audit, err);
	if (!rc && audit.holes.n) {
		char holes[160];
		fetch_audit_holes_text(&audit, holes, sizeof(holes));
		snprintf(err, FETCH_ERRLEN, "the cache does not cover %s of the range", holes);
		rc = -EIO;
	}
	if (rc) {
		cache_audit_free(&audit);
		say_failure(rc, err, dir);
		goto out;
	}
	complete = res.complete && audit.ngaps == 0;
	cache_audit_free(&audit);

	/* render */
	char subject[64], peertext[64] = "", fromtext[40], totext[40];
	cache_prefix_format(&q.subject, subject, sizeof(subject));
	if (q.has_peer)
		cache_prefix_format(&q.peer, peertext, sizeof(peertext));
	cache_time_format(q.start, fromtext, sizeof(fromtext));
	cache_time_format(q.end, totext, sizeof(totext));
	struct cache_meta meta[] = {
		{"collector", url}, {"product", info->product}, {"driver", fetch_engine_driver(e)},
		{"subject", subject}, {"peer", peertext}, {"from", fromtext}, {"to", totext},
		{"tz", tz}, {"tool", "flowfetch " FLOWFS_VERSION},
	};
	int64_t rows = 0;
	FILE *out = stdout;
	if (strcmp(out_path, "-") != 0) {
		snprintf(part, sizeof(part), "%s.part", out_path);
		unlink(part);
		if (fmt != CACHE_SQLITE) {
			out = fopen(part, "w");
			if (!out) {
				fprintf(stderr, "flowfetch: cannot write %s: %s\n", part, strerror(errno));
				part[0] = '\0';
				goto out;
			}
		}
	}
	rc = cache_render(fetch_engine_cache(e), &q, fmt, out, part, meta,
			  sizeof(meta) / sizeof(meta[0]), &rows, cerr);
	if (out != stdout && fmt != CACHE_SQLITE && fclose(out) != 0 && !rc)
		rc = -EIO;
	if (!rc && part[0] && rename(part, out_path) != 0)
		rc = -errno;
	if (rc) {
		fprintf(stderr, "flowfetch: cannot write the output: %s\n", cerr[0] ? cerr : strerror(-rc));
		goto out;
	}
	part[0] = '\0';

	struct cache_gap *gaps = NULL;
	size_t ngaps = 0;
	cache_gaps(fetch_engine_cache(e), &q, &gaps, &ngaps, NULL);
	if (!quiet)
		fprintf(stderr, "flowfetch: %lld flows written to %s; %llu requests, %llu retries, "
			"%llu records fetched in %.2f s (decoding %.2f s, storing %.2f s)%s\n",
			(long long)rows, strcmp(out_path, "-") ? out_path : "stdout",
			(unsigned long long)res.requests, (unsigned long long)res.retries,
			(unsigned long long)res.records, res.seconds, res.decode_s, res.store_s,
			complete ? "" : "; INCOMPLETE");
	for (size_t i = 0; i < ngaps; i++) {
		char a[40], b[40];
		cache_time_format(gaps[i].start, a, sizeof(a));
		cache_time_format(gaps[i].end, b, sizeof(b));
		fprintf(stderr, "flowfetch: gap: %s to %s, peer %s: %s (%lld records seen)\n", a, b,
			gaps[i].peer, gaps[i].reason, (long long)gaps[i].seen);
	}
	free(gaps);
	if (res.rejected)
		fprintf(stderr, "flowfetch: %llu records were rejected (%llu malformed, %llu outside "
				"the question); their windows are gaps\n",
			(unsigned long long)res.rejected,
			(unsigned long long)(res.rejected - res.foreign),
			(unsigned long long)res.foreign);
	status = complete && ngaps == 0 ? 0 : 3;
out:
	if (part[0])
		unlink(part);
	fetch_engine_close(e);
	return status;
}
