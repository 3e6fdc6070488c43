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
#include <stddef.h>
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

/* What the command line gives, as the option table stores it (opttab_store). */
struct ff_opts {
	char *ip, *peer, *from, *to, *tz, *token_file, *cache, *output, *ca_file;
	char *driver, *tenant, *files_tz, *nfdump, *ssh_config, *identity, *known_hosts;
	char *profile, *channels, *collector_tz;
	int max_inflight, live_ttl, stall_timeout, request_timeout, connect_timeout, retries;
	int max_records, active_timeout, insecure, quiet;
	char *cache_url;
	int pg_heartbeat, pg_expiry;
};

enum { K_OUTPUT = 'o', K_HELP = 'h', K_VERSION = 256, K_MAN, K_OTHER };

#define AT(f) offsetof(struct ff_opts, f)
#define TEXT(nm, a, f, h, ...) \
	{.name = nm, .type = OPTTAB_TEXT, .arg = a, .help = h, .key = K_OTHER, .at = AT(f), \
	 __VA_ARGS__}

/* flowfetch's options: --help, --man and the parser read this table only. */
static const struct opttab ff_opts_table[] = {
	TEXT("ip", "ADDR|PREFIX", ip, "the subject: an address, or a prefix (198.51.100.0/24); "
	     "required"),
	TEXT("peer", "ADDR|PREFIX", peer, "only the flows between the subject and this peer"),
	TEXT("from", "T", from, "the range's start: a date (whole days in --tz) or an ISO 8601 "
	     "time (YYYY-MM-DDTHH:MM[:SS[.mmm]][Z|+HH:MM]), in the grammar of flowfs's folder "
	     "names; times select flows that start in [from, to); required"),
	TEXT("to", "T", to, "the range's end: a date (inclusive: its whole day) or a time "
	     "(exclusive); required"),
	TEXT("tz", "ZONE", tz, "the time zone of dates, of times without an offset and of the "
	     "output", .def_text = "UTC"),
	{.name = "output", .short_name = 'o', .type = OPTTAB_TEXT, .arg = "FILE",
	 .help = "the file to write: FILE.csv, FILE.ndjson or FILE.sqlite, written as "
		 "FILE.part and renamed when whole; - writes CSV to stdout; required",
	 .key = K_OUTPUT, .at = AT(output)},
	TEXT("token_file", "FILE", token_file, FETCH_HELP_TOKEN_FILE,
	     .def_text = "$FLOWFS_TOKEN"),
	TEXT("driver", "NAME", driver, FETCH_HELP_DRIVER, .flags = OPTTAB_DYNAMIC),
	TEXT("tenant", "ID", tenant, FETCH_HELP_TENANT),
	FETCH_OPTTAB(MAX_RECORDS, "max_records", K_OTHER, AT(max_records)),
	TEXT("files_tz", "ZONE", files_tz, FETCH_HELP_FILES_TZ, .def_text = "--tz"),
	TEXT("profile", "ID", profile, FETCH_HELP_PROFILE, .def_text = FETCH_DEF_PROFILE),
	TEXT("channels", "A,B", channels, FETCH_HELP_CHANNELS, .def_text = FETCH_DEF_CHANNELS),
	TEXT("collector_tz", "ZONE", collector_tz, FETCH_HELP_COLLECTOR_TZ, .def_text = "UTC"),
	FETCH_OPTTAB(ACTIVE_TIMEOUT, "active_timeout", K_OTHER, AT(active_timeout)),
	TEXT("nfdump", "PROGRAM", nfdump, FETCH_HELP_NFDUMP, .def_text = FETCH_DEF_NFDUMP),
	TEXT("ssh_config", "FILE", ssh_config, FETCH_HELP_SSH_CONFIG),
	TEXT("identity", "FILE", identity, FETCH_HELP_IDENTITY),
	TEXT("known_hosts", "FILE", known_hosts, FETCH_HELP_KNOWN_HOSTS,
	     .def_text = FETCH_DEF_KNOWN_HOSTS),
	TEXT("cache", "DIR", cache, FETCH_HELP_CACHE, .def_text = FETCH_DEF_CACHE),
	TEXT("cache_url", "CONNINFO", cache_url, FETCH_HELP_CACHE_URL,
	     .def_text = FETCH_DEF_CACHE_URL),
	FETCH_OPTTAB(PG_HEARTBEAT, "pg_heartbeat", K_OTHER, AT(pg_heartbeat)),
	FETCH_OPTTAB(PG_EXPIRY, "pg_expiry", K_OTHER, AT(pg_expiry)),
	FETCH_OPTTAB(MAX_INFLIGHT, "max_inflight", K_OTHER, AT(max_inflight)),
	FETCH_OPTTAB(LIVE_TTL, "live_ttl", K_OTHER, AT(live_ttl)),
	FETCH_OPTTAB(STALL_TIMEOUT, "stall_timeout", K_OTHER, AT(stall_timeout)),
	FETCH_OPTTAB(REQUEST_TIMEOUT, "request_timeout", K_OTHER, AT(request_timeout)),
	FETCH_OPTTAB(CONNECT_TIMEOUT, "connect_timeout", K_OTHER, AT(connect_timeout)),
	FETCH_OPTTAB(RETRIES, "retries", K_OTHER, AT(retries)),
	TEXT("ca_file", "FILE", ca_file, FETCH_HELP_CA_FILE),
	{.name = "insecure", .type = OPTTAB_FLAG, .help = FETCH_HELP_INSECURE, .key = K_OTHER,
	 .at = AT(insecure)},
	{.name = "quiet", .type = OPTTAB_FLAG, .help = "no progress line, no summary",
	 .key = K_OTHER, .at = AT(quiet)},
	{.name = "help", .short_name = 'h', .type = OPTTAB_FLAG, .help = "this help, and exit",
	 .key = K_HELP, .at = OPTTAB_NOWHERE},
	{.name = "version", .type = OPTTAB_FLAG, .help = "the version, and the libraries', and "
	 "exit", .key = K_VERSION, .at = OPTTAB_NOWHERE},
	{.name = "man", .type = OPTTAB_FLAG, .help = "the man page (roff) on stdout, and exit",
	 .key = K_MAN, .at = OPTTAB_NOWHERE},
};

static const struct opttab_example ff_examples[] = {
	{"Every flow of 192.0.2.10 on 27 November 2026 (UTC), into a CSV file, the token in a "
	 "private file:",
	 "flowfetch https://collector.example --ip 192.0.2.10 \\\n"
	 "    --from 2026-11-27 --to 2026-11-27 --token-file ~/.flowfs-token \\\n"
	 "    -o case-4711/192.0.2.10.csv"},
	{"Two hours between two parties, as a SQLite database, from an nfdump archive:",
	 "flowfetch nfdump:/var/cache/nfdump --ip 10.0.1.5 --peer 203.0.113.7 \\\n"
	 "    --from 2026-11-27T10:00 --to 2026-11-27T12:00 -o flows.sqlite"},
};

static const struct opttab_prog ff_prog = {
	.name = "flowfetch", .section = 1, .version = FLOWFS_VERSION,
	.summary = "download the flows of an address from a flow collector into one file",
	.synopsis = "URL --ip ADDR|PREFIX [--peer ADDR|PREFIX] --from T --to T -o FILE [options]",
	.description =
		"flowfetch downloads every flow of an address (or a prefix, or the flows between "
		"two parties) that started in a range from a collector, losslessly however many "
		"there are, and writes them to one file (CSV, JSON Lines or SQLite). The token "
		"comes from --token-file or FLOWFS_TOKEN, never from the command line.\n"
		"\n"
		"What it fetches is cached (--cache): a second run asks the collector only for "
		"what is missing, and an interrupted run resumes where it stopped. The file is "
		"written as FILE.part and renamed when whole, so a FILE that exists is complete "
		"as rendered.\n"
		"\n"
		"Exit status: 0 the file holds every flow of the range; 1 an error (nothing is "
		"written); 2 bad usage; 3 written but incomplete (the message names each gap); "
		"130 interrupted.\n",
	.style = OPTTAB_LONG, .opts = ff_opts_table,
	.nopts = sizeof(ff_opts_table) / sizeof(ff_opts_table[0]),
	.examples = ff_examples, .nexamples = sizeof(ff_examples) / sizeof(ff_examples[0]),
	.files = "$XDG_CACHE_HOME/flowfs\tthe cache: one SQLite database per collector (also "
		 "flowfs's)",
	.see_also = "flowfs(8), flowsim(1)",
	.footer = "exit status: 0 complete, 1 error, 2 usage, 3 incomplete, 130 interrupted\n",
	.values = fetch_driver_values,
};
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

/* The one-line message of a failed query.  A full disk (-ENOSPC, SQLite's
 * "database or disk is full") also names the cache directory, and says that
 * what was stored before it filled is kept. */
/* The engine's log lines (an audit pass) go to stderr; not the windows
 * asked (FETCH_LOG_DEBUG: the progress bar shows them). */
static void say_log(void *arg, int level, void *tag, const char *line)
{
	(void)tag;
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

/* flowfetch --version: its own, and the libraries it runs with. */
static void ff_version(void)
{
	char libs[160];

	fetch_versions(libs, sizeof(libs));
	printf("flowfetch %s\n%s\n", FLOWFS_VERSION, libs);
}

/* Free what opttab_store strdup'd. */
static void ff_opts_free(struct ff_opts *o)
{
	for (size_t i = 0; i < ff_prog.nopts; i++)
		if (ff_opts_table[i].type == OPTTAB_TEXT && ff_opts_table[i].at != OPTTAB_NOWHERE)
			free(*(char **)(void *)((char *)o + ff_opts_table[i].at));
}

/*
 * The command line into o (the table's defaults first) and *url: -1 to go
 * on, or the exit status when flowfetch is done (0 after --help, --version
 * or --man; 2 on bad usage, said on stderr with the usage).
 */
static int ff_parse_args(int argc, char **argv, struct ff_opts *o, const char **url)
{
	static struct opttab_getopt g;
	char err[OPTTAB_ERRLEN];
	int c;

	memset(o, 0, sizeof(*o));
	opttab_defaults(&ff_prog, o);
	if (opttab_getopt(&ff_prog, &g))
		return 2;
	for (int li = -1; (c = getopt_long(argc, argv, g.shortopts, g.longopts, &li)) != -1;
	     li = -1) {
		const struct opttab *t = opttab_getopt_entry(&g, c, li);
		if (!t) {
			opttab_help(&ff_prog, stderr);
			return 2;
		}
		switch (t->key) {
		case K_HELP: opttab_help(&ff_prog, stdout); return 0;
		case K_VERSION: ff_version(); return 0;
		case K_MAN: opttab_man(&ff_prog, stdout); return 0;
		default: break;
		}
		if (opttab_store(t, OPTTAB_LONG, o, optarg, err)) {
			fprintf(stderr, "flowfetch: %s\n", err);
			return 2;
		}
	}
	if (optind != argc - 1 || !o->ip || !o->from || !o->to || !o->output) {
		fprintf(stderr, "flowfetch: URL, --ip, --from, --to and -o are required\n");
		opttab_help(&ff_prog, stderr);
		return 2;
	}
	*url = argv[optind];
	return -1;
}

/* The output's format from -o's name: 0 with *fmt, or -EINVAL (said). */
static int ff_format(const char *out, enum cache_format *fmt)
{
	size_t ol = strlen(out);

	if (strcmp(out, "-") == 0 || (ol > 4 && strcmp(out + ol - 4, ".csv") == 0))
		*fmt = CACHE_CSV;
	else if (ol > 7 && strcmp(out + ol - 7, ".ndjson") == 0)
		*fmt = CACHE_NDJSON;
	else if (ol > 7 && strcmp(out + ol - 7, ".sqlite") == 0)
		*fmt = CACHE_SQLITE;
	else {
		fprintf(stderr, "flowfetch: -o must end in .csv, .ndjson or .sqlite (or be -)\n");
		return -EINVAL;
	}
	return 0;
}

/*
 * The question the options ask, into *q: the zone set (TZ, once, so that
 * localtime never re-reads it per row), the subject and peer, the range
 * (an inclusive --to date means its day's end).  0, or -EINVAL with the
 * message on stderr (bad usage).
 */
static int ff_question(const struct ff_opts *o, struct cache_query *q)
{
	const char *tz = o->tz ? o->tz : "UTC";
	bool to_date;

	if (setenv("TZ", tz, 1) != 0)
		return -errno;
	tzset();
	if (!cache_tz_valid(tz)) {
		fprintf(stderr, "flowfetch: unknown time zone '%s' (an IANA name such as Europe/Berlin)\n", tz);
		return -EINVAL;
	}
	memset(q, 0, sizeof(*q));
	if (parse_party("--ip", o->ip, &q->subject))
		return -EINVAL;
	if (o->peer) {
		if (parse_party("--peer", o->peer, &q->peer))
			return -EINVAL;
		if (q->peer.v4 != q->subject.v4) {
			fprintf(stderr, "flowfetch: --ip and --peer are of different address families\n");
			return -EINVAL;
		}
		q->has_peer = true;
	}
	if (parse_when("--from", o->from, &q->start, NULL) ||
	    parse_when("--to", o->to, &q->end, &to_date))
		return -EINVAL;
	if (to_date)
		q->end = day_after(q->end);
	if (q->start >= q->end) {
		fprintf(stderr, "flowfetch: --from must be before --to\n");
		return -EINVAL;
	}
	return 0;
}

/* Signals: SIGINT and SIGTERM set 'interrupted', SIGPIPE ignored, SIGWINCH
 * blocked in every thread from here on (the ticker takes it, tick_main). */
static void ff_signals(void)
{
	struct sigaction sa;
	sigset_t winch;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&winch);
	sigaddset(&winch, SIGWINCH);
	pthread_sigmask(SIG_BLOCK, &winch, NULL);
}

/*
 * The engine on the collector at url, with the options' token (read here,
 * zeroed once the engine has its copy) and cache directory (into dir,
 * checked before any request): 0 with *e, or the exit status (2 for bad
 * usage, 1 for a failure), the cause said on stderr.
 */
static int ff_engine(const struct ff_opts *o, const char *url, bool *quiet, char *dir,
		     size_t dirlen, struct fetch_engine **e)
{
	static char token[FETCH_TOKEN_MAX + 2];
	char err[FETCH_ERRLEN], cerr[CACHE_ERRLEN];
	const struct fetch_driver *drv;
	const char *bare;
	int rc;

	if (fetch_driver_resolve(url, o->driver, &drv, &bare, err)) {
		fprintf(stderr, "flowfetch: %s\n", err);
		return 2;
	}
	/* a user before '@' is a secret's place for a driver with a token (an
	 * nfdump+ssh:// URL's user is only a login name) */
	if (drv->secret && fetch_url_check(url, "--token-file", err)) {
		fprintf(stderr, "flowfetch: %s\n", err);
		return 2;
	}
	/* a driver that takes no token (nfdump): none is read */
	if ((drv->secret && fetch_token_read(o->token_file, token, sizeof(token), err)) ||
	    fetch_cache_dir(o->cache, dir, dirlen, err)) {
		fprintf(stderr, "flowfetch: %s\n", err);
		return 2;
	}
	/* the cache directory, checked (owner, mode, no link) before any
	 * request; the engine's cache_open checks it again when it opens it */
	int cfd = cache_dir_open(dir, cerr);
	if (cfd < 0) {
		fprintf(stderr, "flowfetch: %s\n", cerr);
		explicit_bzero(token, sizeof(token));
		return 1;
	}
	close(cfd);
	/* once, before the token is sent */
	if (token[0] && fetch_clear_text_warning(bare, drv->secret, err, sizeof(err)))
		fprintf(stderr, "flowfetch: warning: %s\n", err);
	ff_signals();
	if (fetch_global_init()) {
		fprintf(stderr, "flowfetch: cannot initialise libcurl\n");
		explicit_bzero(token, sizeof(token));
		return 1;
	}
	struct fetch_opts fo = {
		.url = url, .token = token[0] ? token : NULL, .cache_dir = dir,
		.max_inflight = (unsigned)o->max_inflight, .live_ttl_ms = o->live_ttl * 1000LL,
		.stall_s = o->stall_timeout, .request_timeout_ms = o->request_timeout * 1000L,
		.connect_timeout_ms = o->connect_timeout * 1000L, .max_retries = (unsigned)o->retries,
		.compress = -1, .insecure = o->insecure, .ca_file = o->ca_file,
		.driver = o->driver, .tenant = o->tenant, .max_records = (uint32_t)o->max_records,
		.files_tz = o->files_tz, .nfdump = o->nfdump,
		.profile = o->profile, .channels = o->channels, .collector_tz = o->collector_tz,
		.active_timeout_s = (unsigned)o->active_timeout, .ssh_config = o->ssh_config,
		.identity = o->identity, .known_hosts = o->known_hosts,
		.cache_url = o->cache_url, .pg_heartbeat_s = o->pg_heartbeat,
		.pg_expiry_s = o->pg_expiry,
		.log = say_log, .log_arg = quiet,
	};
	rc = fetch_engine_open(&fo, e, err);
	explicit_bzero(token, sizeof(token));
	if (rc) {
		say_failure(rc, err, dir);
		return 1;
	}
	return 0;
}

/* The range against the collector's clock and retention: 0, or 2 (bad
 * usage: no flows there yet, or none kept), said on stderr. */
static int ff_range_check(const struct fetch_info *info, const struct cache_query *q)
{
	int64_t oldest = (info->now_ms / CACHE_DAY_MS - info->retention_days) * CACHE_DAY_MS;
	char nowtext[40];

	cache_time_format(info->now_ms, nowtext, sizeof(nowtext));
	if (q->start > info->now_ms) {
		fprintf(stderr, "flowfetch: the range starts after the collector's clock (now %s); "
				"there are no flows there yet\n", nowtext);
		return 2;
	}
	if (q->end > day_after(info->now_ms)) {
		fprintf(stderr, "flowfetch: the range ends after today (in --tz, by the collector's "
				"clock, now %s); there are no flows there yet\n", nowtext);
		return 2;
	}
	if (info->retention_days > 0 && q->end <= oldest) {	/* 0: the collector does not say */
		fprintf(stderr, "flowfetch: the range ends before the collector's retention (%d days)\n",
			info->retention_days);
		return 2;
	}
	return 0;
}

/*
 * The query run (the progress line on a terminal unless quiet) and its
 * outcome audited: 0 with *complete (no gap, nothing rejected), or the
 * exit status (130 interrupted, 1 failed or the audit found holes), said.
 */
static int ff_fetch(struct fetch_engine *e, const struct cache_query *q, bool quiet,
		    const char *dir, struct fetch_result *res, bool *complete)
{
	static struct fetch_progress prog;
	struct ticker tk = {.prog = &prog};
	struct cache_audit audit;
	char err[FETCH_ERRLEN];
	bool tty = !quiet && isatty(STDERR_FILENO);
	int rc;

	if (tty && pthread_create(&tk.th, NULL, tick_main, &tk) != 0)
		tty = false;
	rc = fetch_query(e, q, &prog, &interrupted, res, err);
	if (tty) {
		atomic_store(&tk.stop, 1);
		pthread_join(tk.th, NULL);
	}
	if (rc == -ECANCELED) {
		fprintf(stderr, "flowfetch: interrupted; what was fetched is kept in the cache\n");
		return 130;
	}
	if (rc) {
		say_failure(rc, err, dir);
		return 1;
	}
	/* exit 0 says every flow of the range is in the file: the store's
	 * audit stands behind it, not the planner (issue 10) */
	rc = fetch_audit(e, fetch_engine_cache(e), q, res, &audit, err);
	if (!rc && audit.holes.n) {
		char holes[160];
		fetch_audit_holes_text(&audit, holes, sizeof(holes));
		snprintf(err, FETCH_ERRLEN, "the cache does not cover %s of the range", holes);
		rc = -EIO;
	}
	*complete = !rc && res->complete && audit.ngaps == 0;
	cache_audit_free(&audit);
	if (rc) {
		say_failure(rc, err, dir);
		return 1;
	}
	return 0;
}

/*
 * The query's flows rendered into out_path (through out_path.part,
 * renamed when whole; "-": stdout) with the provenance of url and the
 * options: 0 with *rows, or -errno said on stderr (no file left).
 */
static int ff_render(struct fetch_engine *e, const struct cache_query *q, const char *url,
		     const char *tz, const char *out_path, enum cache_format fmt, int64_t *rows)
{
	const struct fetch_info *info = fetch_engine_info(e);
	char subject[64], peertext[64] = "", fromtext[40], totext[40], cerr[CACHE_ERRLEN] = "";
	char part[4200] = "";
	FILE *out = stdout;
	int rc;

	cache_prefix_format(&q->subject, subject, sizeof(subject));
	if (q->has_peer)
		cache_prefix_format(&q->peer, peertext, sizeof(peertext));
	cache_time_format(q->start, fromtext, sizeof(fromtext));
	cache_time_format(q->end, totext, sizeof(totext));
	struct cache_meta meta[] = {
		{"collector", url}, {"product", info->product}, {"driver", fetch_engine_driver(e)},
		{"subject", subject}, {"peer", peertext}, {"from", fromtext}, {"to", totext},
		{"tz", tz}, {"tool", "flowfetch " FLOWFS_VERSION},
	};
	if (strcmp(out_path, "-") != 0) {
		snprintf(part, sizeof(part), "%s.part", out_path);
		unlink(part);
		if (fmt != CACHE_SQLITE && !(out = fopen(part, "w"))) {
			rc = -errno;
			fprintf(stderr, "flowfetch: cannot write %s: %s\n", part, strerror(-rc));
			return rc;
		}
	}
	rc = cache_render(fetch_engine_cache(e), q, fmt, out, part, meta,
			  sizeof(meta) / sizeof(meta[0]), rows, cerr);
	if (out != stdout && fmt != CACHE_SQLITE && fclose(out) != 0 && !rc)
		rc = -EIO;
	if (!rc && part[0] && rename(part, out_path) != 0)
		rc = -errno;
	if (rc) {
		fprintf(stderr, "flowfetch: cannot write the output: %s\n", cerr[0] ? cerr : strerror(-rc));
		if (part[0])
			unlink(part);
	}
	return rc;
}

/* The summary line (unless quiet), each gap and the rejected records, on
 * stderr: 0 when the file is complete, else 3. */
static int ff_report(struct fetch_engine *e, const struct cache_query *q,
		     const struct fetch_result *res, bool complete, bool quiet, const char *out_path,
		     int64_t rows)
{
	struct cache_gap *gaps = NULL;
	size_t ngaps = 0;

	cache_gaps(fetch_engine_cache(e), q, &gaps, &ngaps, NULL);
	if (!quiet)
		fprintf(stderr, "flowfetch: %lld flows written to %s; %llu requests, %llu retries, "
			"%llu records fetched in %.2f s (decoding %.2f s, storing %.2f s)%s\n",
			(long long)rows, strcmp(out_path, "-") ? out_path : "stdout",
			(unsigned long long)res->requests, (unsigned long long)res->retries,
			(unsigned long long)res->records, res->seconds, res->decode_s, res->store_s,
			complete ? "" : "; INCOMPLETE");
	for (size_t i = 0; i < ngaps; i++) {
		char a[40], b[40];
		cache_time_format(gaps[i].start, a, sizeof(a));
		cache_time_format(gaps[i].end, b, sizeof(b));
		fprintf(stderr, "flowfetch: gap: %s to %s, peer %s: %s (%lld records seen)\n", a, b,
			gaps[i].peer, gaps[i].reason, (long long)gaps[i].seen);
	}
	free(gaps);
	if (res->rejected)
		fprintf(stderr, "flowfetch: %llu records were rejected (%llu malformed, %llu outside "
				"the question); their windows are gaps\n",
			(unsigned long long)res->rejected,
			(unsigned long long)(res->rejected - res->foreign),
			(unsigned long long)res->foreign);
	return complete && ngaps == 0 ? 0 : 3;
}

int main(int argc, char **argv)
{
	struct ff_opts o;
	struct fetch_engine *e = NULL;
	struct fetch_result res;
	struct cache_query q;
	enum cache_format fmt;
	char err[FETCH_ERRLEN], dir[4096];
	const char *url = NULL;
	bool quiet, complete = false;
	int64_t rows = 0;
	int status;

	/* first of all: no core dump, no tracing by the user's other
	 * processes, before a secret is read */
	if (fetch_no_dump(err)) {
		fprintf(stderr, "flowfetch: %s\n", err);
		return 1;
	}
	status = ff_parse_args(argc, argv, &o, &url);
	if (status >= 0)
		goto out;
	quiet = o.quiet;
	status = 2;
	if (ff_question(&o, &q) || ff_format(o.output, &fmt))
		goto out;
	if ((status = ff_engine(&o, url, &quiet, dir, sizeof(dir), &e)) ||
	    (status = ff_range_check(fetch_engine_info(e), &q)) ||
	    (status = ff_fetch(e, &q, quiet, dir, &res, &complete)))
		goto out;
	status = 1;
	if (ff_render(e, &q, url, o.tz ? o.tz : "UTC", o.output, fmt, &rows))
		goto out;
	status = ff_report(e, &q, &res, complete, quiet, o.output, rows);
out:
	fetch_engine_close(e);
	ff_opts_free(&o);
	return status;
}
