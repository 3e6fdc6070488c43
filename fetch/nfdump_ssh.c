/*
 * nfdump_ssh.c - an nfdump archive on another host, read through ssh(1)
 * (nfdump_ssh.h says what each function promises).
 *
 * Why OpenSSH's client as a subprocess and not a library: it brings the
 * user's configuration, keys, agent and known_hosts as they are, and
 * nfd_run_as already bounds, times and kills a subprocess.  Why the remote
 * command is one string: ssh(1) joins its arguments with spaces and gives
 * them to the user's shell on the collector, so each argument is quoted
 * here, with single quotes, the one quoting in which no character is
 * special (POSIX sh 2.2.2); the remote shell must be a POSIX one (sh,
 * bash, dash, ksh, zsh).
 *
 * Why the files are listed first, and not left to nfdump's own -R
 * FIRST:LAST with names computed from the window: nfdump 1.7.1 refuses a
 * FIRST that does not exist ("stat() error ... File not found!", exit 250),
 * and an archive has gaps (nfpcapd writes no file for a slot without
 * packets; a collector that was down wrote none).  So the window's
 * directories are listed on the collector in one command, and
 * nfd_archive_scan picks the files from those names exactly as it does
 * from a local directory: two passes, the first recording which
 * directories it would read, the second served from the listing.
 */
#include "arr.h"
#include "nfdump_ssh.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"

/* ---- the URL ------------------------------------------------------------------------- */

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A DNS name: labels of [A-Za-z0-9-], 1 to 63, no '-' at either end. */
static bool dns_name(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > NFD_SSH_HOST_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!alnum(s[i]) && !(s[i] == '-' && label > 0))
			return false;
		label++;
	}
	return true;
}

/* [user@]host[:port] of n bytes at s into u. */
static int parse_authority(const char *s, size_t n, struct nfd_ssh_url *u, char *err)
{
	const char *at = memchr(s, '@', n), *h, *end = s + n, *colon;
	size_t hn;

	if (at) {
		size_t un = (size_t)(at - s);
		if (un == 0 || un > NFD_SSH_USER_MAX || s[0] == '-') {
			snprintf(err, FETCH_ERRLEN, "nfdump+ssh URL: the user must be 1 to %d "
				 "characters, not starting with '-'", NFD_SSH_USER_MAX);
			return -EINVAL;
		}
		for (size_t i = 0; i < un; i++)
			if (!alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-') {
				snprintf(err, FETCH_ERRLEN, "nfdump+ssh URL: the user holds '%c' "
					 "(only letters, digits, '.', '_' and '-')",
					 (unsigned char)s[i] >= 32 && s[i] != 127 ? s[i] : '?');
				return -EINVAL;
			}
		memcpy(u->user, s, un);
		u->user[un] = '\0';
		s = at + 1;
	}
	if (s < end && *s == '[') {
		const char *close = memchr(s, ']', (size_t)(end - s));
		struct in6_addr a6;
		char text[64];
		if (!close || (size_t)(close - s - 1) >= sizeof(text)) {
			snprintf(err, FETCH_ERRLEN, "nfdump+ssh URL: an IPv6 host needs its ']'");
			return -EINVAL;
		}
		memcpy(text, s + 1, (size_t)(close - s - 1));
		text[close - s - 1] = '\0';
		if (inet_pton(AF_INET6, text, &a6) != 1) {
			snprintf(err, FETCH_ERRLEN, "nfdump+ssh URL: '[%.60s]' is not an IPv6 "
				 "address (a zone is not taken)", text);
			return -EINVAL;
		}
		inet_ntop(AF_INET6, &a6, u->host, sizeof(u->host));
		colon = close + 1 < end ? close + 1 : NULL;
		if (colon && *colon != ':') {
			snprintf(err, FETCH_ERRLEN, "nfdump+ssh URL: after ']' only ':PORT' may follow");
			return -EINVAL;
		}
	} else {
		colon = memchr(s, ':', (size_t)(end - s));
		h = s;
		hn = (size_t)((colon ? colon : end) - h);
		if (!dns_name(h, hn)) {
			snprintf(err, FETCH_ERRLEN, "nfdump+ssh URL: the host '%.*s' is not a DNS "
				 "name or an address (an IPv6 address goes in brackets)",
				 (int)(hn > 80 ? 80 : hn), h);
			return -EINVAL;
		}
		memcpy(u->host, h, hn);
		u->host[hn] = '\0';
	}
	if (colon) {
		const char *p = colon + 1;
		long port = 0;
		if (p == end || *p == '0' || end - p > 5) {
			snprintf(err, FETCH_ERRLEN, "nfdump+ssh URL: the port must be 1 to 65535");
			return -EINVAL;
		}
		for (; p < end; p++) {
			if (*p < '0' || *p > '9') {
				snprintf(err, FETCH_ERRLEN, "nfdump+ssh URL: the port must be a number");
				return -EINVAL;
			}
			port = port * 10 + (*p - '0');
		}
		if (port > 65535) {
			snprintf(err, FETCH_ERRLEN, "nfdump+ssh URL: the port must be 1 to 65535");
			return -EINVAL;
		}
		u->port = (int)port;
	}
	return 0;
}

int nfd_ssh_parse(const char *url, struct nfd_ssh_url *u, char *err)
{
	size_t pl = strlen(NFD_SSH_PREFIX), n;
	const char *auth, *path;
	int rc;

	memset(u, 0, sizeof(*u));
	if (strncmp(url, NFD_SSH_PREFIX, pl) != 0) {
		snprintf(err, FETCH_ERRLEN, "not an nfdump+ssh URL: it starts with %s",
			 NFD_SSH_PREFIX);
		return -EINVAL;
	}
	auth = url + pl;
	path = strchr(auth, '/');
	if (!path) {
		snprintf(err, FETCH_ERRLEN, "nfdump+ssh URL: no archive path (%shost/var/cache/nfdump)",
			 NFD_SSH_PREFIX);
		return -EINVAL;
	}
	rc = parse_authority(auth, (size_t)(path - auth), u, err);
	if (rc)
		return rc;
	n = strlen(path);
	if (n >= sizeof(u->path)) {
		snprintf(err, FETCH_ERRLEN, "nfdump+ssh URL: the path is longer than %d bytes",
			 NFD_SSH_PATH_MAX - 1);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)path[i];
		if (c < 32 || c == 127) {
			snprintf(err, FETCH_ERRLEN, "nfdump+ssh URL: the path holds a control "
				 "character (0x%02x at %zu)", c, i);
			return -EINVAL;
		}
		if (c == ':') {
			snprintf(err, FETCH_ERRLEN, "nfdump+ssh URL: the path holds a ':', nfdump's "
				 "separator of -M directories");
			return -EINVAL;
		}
	}
	memcpy(u->path, path, n + 1);
	return 0;
}

/* ---- the command ----------------------------------------------------------------------- */

void nfd_ssh_cmd_free(struct nfd_ssh_cmd *c)
{
	free(c->remote);
	c->remote = NULL;
}

int nfd_ssh_quote(char *buf, size_t len, size_t *used, const char *arg)
{
	size_t u = *used;

	if (u + 3 > len)
		goto full;
	buf[u++] = '\'';
	for (const char *p = arg; *p; p++) {
		bool q = *p == '\'';
		if (u + (q ? 4 : 1) + 2 > len)	/* and the closing quote, the NUL */
			goto full;
		if (q) {
			memcpy(buf + u, "'\\''", 4);	/* close, an escaped quote, reopen */
			u += 4;
		} else {
			buf[u++] = *p;
		}
	}
	buf[u++] = '\'';
	buf[u] = '\0';
	*used = u;
	return 0;
full:
	if (*used < len)
		buf[*used] = '\0';
	return -E2BIG;
}

/* A local file name for an ssh option (nfd_ssh_opts's rule). */
static bool file_ok(const char *f)
{
	size_t n = strlen(f);

	if (n == 0 || n > 1023 || f[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!alnum(f[i]) && !strchr("/._+,=@~-", f[i]))
			return false;
	return true;
}

/* Copy s into the command's store; its copy, or NULL when full. */
static char *store(struct nfd_ssh_cmd *c, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p;

	if (c->used + n > sizeof(c->store))
		return NULL;
	p = memcpy(c->store + c->used, s, n);
	c->used += n;
	return p;
}

int nfd_ssh_argv(const struct nfd_ssh_url *u, const struct nfd_ssh_opts *o, const char *remote,
		 struct nfd_ssh_cmd *out, char *err)
{
	const char *files[3][3] = {
		{"-F", o->config_file, "the ssh config file"},
		{"-i", o->identity_file, "the identity file"},
		{"-o", o->known_hosts, "the known_hosts file"},
	};
	int ct = o->connect_timeout_s > 0 ? o->connect_timeout_s : NFD_SSH_CONNECT_S;
	int ai = o->alive_interval_s > 0 ? o->alive_interval_s : NFD_SSH_ALIVE_S;
	const char *env[] = {"HOME", "SSH_AUTH_SOCK"};
	char opt[1100];
	size_t i = 0, e = 0, rn = strlen(remote);
	int rc = -E2BIG;

	memset(out, 0, sizeof(*out));
	if (rn > NFD_SSH_CMD_MAX) {
		snprintf(err, FETCH_ERRLEN, "the command for the collector is longer than %d bytes",
			 NFD_SSH_CMD_MAX);
		return -E2BIG;
	}
	for (size_t f = 0; f < 3; f++)
		if (files[f][1] && !file_ok(files[f][1])) {
			snprintf(err, FETCH_ERRLEN, "%s '%.200s' is refused: 1 to 1023 of "
				 "[A-Za-z0-9/._+,=@~-], not starting with '-'", files[f][2],
				 files[f][1]);
			return -EINVAL;
		}
	if (ct > 3600 || ai > 3600) {
		snprintf(err, FETCH_ERRLEN, "ssh's timeouts are at most 3600 s");
		return -EINVAL;
	}
#define ARG(s) do { if (!(out->argv[i++] = store(out, (s)))) goto full; } while (0)
	ARG(o->ssh ? o->ssh : "ssh");
	ARG("-T");
	ARG("-o");
	ARG("BatchMode=yes");
	snprintf(opt, sizeof(opt), "ConnectTimeout=%d", ct);
	ARG("-o");
	ARG(opt);
	snprintf(opt, sizeof(opt), "ServerAliveInterval=%d", ai);
	ARG("-o");
	ARG(opt);
	ARG("-o");
	ARG("ServerAliveCountMax=3");
	ARG("-o");
	ARG("ControlMaster=no");	/* never a persistent master holding our pipes */
	for (size_t f = 0; f < 3; f++) {
		if (!files[f][1])
			continue;
		ARG(files[f][0]);
		if (f == 2) {
			snprintf(opt, sizeof(opt), "UserKnownHostsFile=%s", files[f][1]);
			ARG(opt);
		} else {
			ARG(files[f][1]);
		}
	}
	if (u->port > 0) {
		snprintf(opt, sizeof(opt), "%d", u->port);
		ARG("-p");
		ARG(opt);
	}
	if (u->user[0]) {
		ARG("-l");
		ARG(u->user);
	}
	ARG("--");
	ARG(u->host);
#undef ARG
	out->remote = strdup(remote);
	if (!out->remote) {
		rc = -ENOMEM;
		goto fail;
	}
	out->argv[i++] = out->remote;
	out->argv[i] = NULL;
	if (!(out->envp[e++] = store(out, "PATH=/usr/local/bin:/usr/bin:/bin")))
		goto full;
	for (size_t k = 0; k < sizeof(env) / sizeof(env[0]); k++) {
		const char *v = getenv(env[k]);
		if (!v || strlen(v) > 1024)
			continue;
		snprintf(opt, sizeof(opt), "%s=%s", env[k], v);
		if (!(out->envp[e++] = store(out, opt)))
			goto full;
	}
	out->envp[e] = NULL;
	return 0;
full:
	snprintf(err, FETCH_ERRLEN, "the ssh command does not fit its buffer");
fail:
	nfd_ssh_cmd_free(out);
	return rc;
}

/* Append s (quoted for the shell when quote) to t, a remote command of at
 * most NFD_SSH_CMD_MAX bytes. */
static int text_add(struct nfd_buf *t, const char *s, bool quote)
{
	size_t need = quote ? 4 * strlen(s) + 2 : strlen(s);
	int rc;

	if (t->len + need > NFD_SSH_CMD_MAX)
		return -E2BIG;
	rc = nfd_buf_reserve(t, need);
	if (rc)
		return rc;
	if (quote)
		return nfd_ssh_quote(t->p, t->cap, &t->len, s);
	memcpy(t->p + t->len, s, need + 1);
	t->len += need;
	return 0;
}

/* Append a space and s quoted. */
static int text_word(struct nfd_buf *t, const char *s)
{
	int rc = text_add(t, " ", false);
	return rc ? rc : text_add(t, s, true);
}

int nfd_ssh_wrap(const struct nfd_ssh_url *u, const struct nfd_ssh_opts *o,
		 const struct nfd_cmd *c, struct nfd_ssh_cmd *out, char *err)
{
	struct nfd_buf t = {0};
	int rc = text_add(&t, "exec env", false);

	memset(out, 0, sizeof(*out));
	for (size_t k = 0; c->envp[k] && rc == 0; k++)
		if (strncmp(c->envp[k], "PATH=", 5) != 0)
			rc = text_word(&t, c->envp[k]);
	for (size_t k = 0; c->argv[k] && rc == 0; k++)
		rc = text_word(&t, c->argv[k]);
	if (rc) {
		snprintf(err, FETCH_ERRLEN, rc == -ENOMEM ? "no memory for the ssh command"
			 : "the nfdump command for the collector is longer than %d bytes",
			 NFD_SSH_CMD_MAX);
		goto cleanup;
	}
	rc = nfd_ssh_argv(u, o, t.p, out, err);
cleanup:
	nfd_buf_free(&t);
	return rc;
}

/* ---- running it ------------------------------------------------------------------------- */

/* ssh's exit status with a remote nfdump: ssh(1) exits with the remote
 * command's status, or 255 for its own error. */
static const char *ssh_nfdump_meaning(int st)
{
	if (st == 255)
		return "ssh could not connect, log in or trust the host key";
	if (st == 127)
		return "no nfdump on the collector's PATH";
	return nfd_exit_meaning(st);
}

const struct nfd_runner nfd_ssh_runner = {"ssh", ssh_nfdump_meaning};

static const char *ssh_list_meaning(int st)
{
	if (st == 255)
		return "ssh could not connect, log in or trust the host key";
	return "the archive could not be listed on the collector";
}

static const struct nfd_runner ssh_list_runner = {"ssh", ssh_list_meaning};

int nfd_ssh_errno(int rc, const char *err)
{
	static const char *const denied[] = {
		"Permission denied", "Host key verification failed",
		"REMOTE HOST IDENTIFICATION HAS CHANGED", "host key is known",
	};
	static const char *const unreachable[] = {
		"Connection refused", "Connection timed out", "No route to host",
		"Network is unreachable", "Could not resolve hostname",
	};

	if (rc != -EIO || !strstr(err, "with status 255"))
		return rc;
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++)
		if (strstr(err, denied[i]))
			return -EACCES;
	for (size_t i = 0; i < sizeof(unreachable) / sizeof(unreachable[0]); i++)
		if (strstr(err, unreachable[i]))
			return -EHOSTUNREACH;
	return rc;
}

/* ---- the listing -------------------------------------------------------------------------- */

/* One directory the window reads: its path, then what the listing said. */
struct dir {
	char *path;
	int state;		/* 0 not said, 1 present, -1 missing */
	size_t begin, end;	/* its names' lines in the listing */
};

struct listing {
	struct dir *d;
	size_t n, cap;
	char *text;		/* the listing, lines NUL-terminated */
	size_t next;		/* pass 2: where the scan is */
	bool overflow;
};

/* Pass 1: record path, list nothing. */
static int record_dir(void *ctx, const char *path, int (*take)(void *, const char *),
		      void *arg, char *err)
{
	struct listing *l = ctx;
	(void)take;
	(void)arg;

	if (l->n >= NFD_SSH_DIRS_MAX) {
		l->overflow = true;
		snprintf(err, FETCH_ERRLEN, "the window needs more than %d of the archive's "
			 "directories", NFD_SSH_DIRS_MAX);
		return -E2BIG;
	}
	if (arr_grow(&l->d, &l->cap, l->n + 1, sizeof(*l->d)))
		return -ENOMEM;
	memset(&l->d[l->n], 0, sizeof(l->d[0]));
	l->d[l->n].path = strdup(path);
	if (!l->d[l->n].path)
		return -ENOMEM;
	l->n++;
	return 0;
}

/* Pass 2: the names the listing holds for path. */
static int serve_dir(void *ctx, const char *path, int (*take)(void *, const char *),
		     void *arg, char *err)
{
	struct listing *l = ctx;
	size_t k;

	for (k = 0; k < l->n; k++) {
		size_t j = (l->next + k) % l->n;
		if (strcmp(l->d[j].path, path) == 0)
			break;
	}
	if (k == l->n) {
		snprintf(err, FETCH_ERRLEN, "directory %.200s was not listed", path);
		return -EIO;
	}
	k = (l->next + k) % l->n;
	l->next = k + 1;
	if (l->d[k].state < 0)
		return -ENOENT;
	for (size_t p = l->d[k].begin; p < l->d[k].end; p += strlen(l->text + p) + 1) {
		int rc = take(arg, l->text + p);
		if (rc)
			return rc;
	}
	return 0;
}

/* The script that lists l's directories: for each, a line "/d N" and its
 * names, or "/m N" when it is not a directory.  Names hold no '/', so a
 * line starting with '/' is always ours; ls -q writes a newline in a name
 * as '?'. */
static int list_script(const struct listing *l, struct nfd_buf *t)
{
	int rc = text_add(t, "i=0; for d in", false);

	for (size_t k = 0; k < l->n && rc == 0; k++)
		rc = text_word(t, l->d[k].path);
	return rc ? rc : text_add(t, "; do if [ -d \"$d\" ]; then printf '/d %d\\n' \"$i\"; "
			      "LC_ALL=C ls -1q -- \"$d\" || exit 1; else printf '/m %d\\n' \"$i\"; "
			      "fi; i=$((i+1)); done", false);
}

/* Split the listing (NUL-terminated, len bytes) into l's directories. */
static int parse_listing(struct listing *l, char *s, size_t len, char *err)
{
	long cur = -1;
	size_t p = 0;

	l->text = s;
	while (p < len) {
		char *nl = memchr(s + p, '\n', len - p);
		size_t e = nl ? (size_t)(nl - s) : len;
		s[e] = '\0';
		if (s[p] == '/') {
			char *end = s + p;
			long k = -1;
			if ((s[p + 1] == 'd' || s[p + 1] == 'm') && s[p + 2] == ' ' &&
			    s[p + 3] >= '0' && s[p + 3] <= '9')
				k = strtol(s + p + 3, &end, 10);
			if (k < 0 || *end || (size_t)k >= l->n || l->d[k].state) {
				snprintf(err, FETCH_ERRLEN, "the collector's listing has a bad line "
					 "'%.60s'", s + p);
				return -EBADMSG;
			}
			if (cur >= 0)
				l->d[cur].end = p;
			cur = k;
			l->d[k].state = s[p + 1] == 'd' ? 1 : -1;
			l->d[k].begin = l->d[k].end = e + 1;
		} else if (cur < 0 || l->d[cur].state < 0) {
			snprintf(err, FETCH_ERRLEN, "the collector printed '%.60s' where the listing "
				 "was expected (a login script that prints?)", s + p);
			return -EBADMSG;
		}
		p = e + 1;
	}
	if (cur >= 0)
		l->d[cur].end = p;
	for (size_t k = 0; k < l->n; k++)
		if (!l->d[k].state) {
			snprintf(err, FETCH_ERRLEN, "the collector's listing ended before directory "
				 "%.200s", l->d[k].path);
			return -EBADMSG;
		}
	return 0;
}

int nfd_ssh_files(const struct nfd_ssh_url *u, const struct nfd_ssh_opts *o,
		  const struct nfd_archive *a, int64_t start, int64_t end, int64_t deadline_ms,
		  const atomic_int *cancel, struct nfd_files *out, char *err)
{
	struct listing l = {0};
	struct nfd_dirsrc rec = {record_dir, &l}, serve = {serve_dir, &l};
	struct nfd_ssh_cmd cmd = {0};
	struct nfd_buf buf = {0}, t = {0};
	int rc;

	out->v = NULL;
	out->n = 0;
	rc = nfd_archive_scan(a, start, end, &rec, out, err);
	if (rc)
		goto cleanup;
	if (l.n == 0)
		goto cleanup;
	rc = list_script(&l, &t);
	if (rc) {
		snprintf(err, FETCH_ERRLEN, rc == -ENOMEM ? "no memory for the listing's command"
			 : "the listing's command is longer than %d bytes", NFD_SSH_CMD_MAX);
		goto cleanup;
	}
	rc = nfd_ssh_argv(u, o, t.p, &cmd, err);
	if (rc)
		goto cleanup;
	rc = nfd_run_as(&ssh_list_runner, cmd.argv, cmd.envp, deadline_ms, cancel,
			NFD_SSH_LIST_MAX, &buf, err);
	if (rc) {
		rc = nfd_ssh_errno(rc, err);
		goto cleanup;
	}
	rc = parse_listing(&l, buf.p ? buf.p : (char *)"", buf.len, err);
	if (rc)
		goto cleanup;
	rc = nfd_archive_scan(a, start, end, &serve, out, err);
cleanup:
	if (rc)
		nfd_files_free(out);
	for (size_t k = 0; k < l.n; k++)
		free(l.d[k].path);
	free(l.d);
	nfd_buf_free(&t);
	nfd_buf_free(&buf);
	nfd_ssh_cmd_free(&cmd);
	return rc;
}

/* ---- the whole archive, at open ------------------------------------------------------------- */

/* ssh's exit status with the tree's listing. */
static const char *ssh_tree_meaning(int st)
{
	if (st == 255)
		return "ssh could not connect, log in or trust the host key";
	return "the archive could not be listed on the collector";
}

static const struct nfd_runner ssh_tree_runner = {"ssh", ssh_tree_meaning};

static int tree_dir_cmp(const void *a, const void *b)
{
	return strcmp(((const struct nfd_ssh_dir *)a)->rel, ((const struct nfd_ssh_dir *)b)->rel);
}

/* Add the directory whose header line is at h ("." or "./2026/11:", ':'
 * already cut) to t, its names from line begin on. */
static int tree_add(struct nfd_ssh_tree *t, char *h, size_t begin)
{
	if (t->n >= NFD_SSH_TREE_DIRS)
		return -E2BIG;
	if (arr_grow(&t->d, &t->cap, t->n + 1, sizeof(*t->d)))
		return -ENOMEM;
	t->d[t->n].rel = strcmp(h, ".") == 0 ? h + 1 : h + 2;	/* "" or "2026/11" */
	t->d[t->n].begin = t->d[t->n].end = begin;
	t->n++;
	return 0;
}

/* Split `ls -1qRpL .`'s output (after our "/d" line) into t's directories:
 * a header is the first line or a line after an empty one, "./SUB:" (or
 * ".:"); names hold no newline (-q) and a name is never empty, so an empty
 * line only separates directories. */
static int tree_parse(struct nfd_ssh_tree *t, char *err)
{
	char *s = t->text;
	size_t len = t->len, p = 0;
	bool header = true;
	int rc;

	if (len < 3 || memcmp(s, "/d\n", 3) != 0) {
		snprintf(err, FETCH_ERRLEN, "the collector printed '%.60s' where the archive's "
			 "listing was expected (a login script that prints?)", s);
		return -EBADMSG;
	}
	p = 3;
	if (p < len && strncmp(s + p, ".:\n", 3) != 0) {
		/* an ls that writes no header for its one operand: "." */
		rc = tree_add(t, (char *)".", p);
		if (rc)
			return rc;
		header = false;
	}
	while (p < len) {
		char *nl = memchr(s + p, '\n', len - p);
		size_t e = nl ? (size_t)(nl - s) : len;
		s[e] = '\0';
		if (header) {
			if (e - p < 2 || s[e - 1] != ':' || s[p] != '.' ||
			    (s[p + 1] != '/' && s[p + 1] != ':')) {
				snprintf(err, FETCH_ERRLEN, "the collector's listing has a bad line "
					 "'%.60s' where a directory was expected", s + p);
				return -EBADMSG;
			}
			s[e - 1] = '\0';
			rc = tree_add(t, s + p, e + 1);
			if (rc) {
				if (rc == -E2BIG)
					snprintf(err, FETCH_ERRLEN, "the archive has more than %d "
						 "directories", NFD_SSH_TREE_DIRS);
				return rc;
			}
			header = false;
		} else if (s[p] == '\0') {
			header = true;
		} else {
			t->d[t->n - 1].end = e + 1;
		}
		p = e + 1;
	}
	qsort(t->d, t->n, sizeof(t->d[0]), tree_dir_cmp);
	return 0;
}

int nfd_ssh_tree_read(const struct nfd_ssh_url *u, const struct nfd_ssh_opts *o,
		      int64_t deadline_ms, const atomic_int *cancel, struct nfd_ssh_tree *t,
		      char *err)
{
	struct nfd_ssh_cmd cmd = {0};
	struct nfd_buf buf = {0}, s = {0};
	int rc;

	memset(t, 0, sizeof(*t));
	/* QUOTING_STYLE would make GNU ls quote names; -p marks directories */
	rc = text_add(&s, "if [ -d", false);
	if (!rc)
		rc = text_word(&s, u->path);
	if (!rc)
		rc = text_add(&s, " ] && cd --", false);
	if (!rc)
		rc = text_word(&s, u->path);
	if (!rc)
		rc = text_add(&s, "; then printf '/d\\n'; unset QUOTING_STYLE; LC_ALL=C exec ls "
			      "-1qRpL .; else printf '/m\\n'; fi", false);
	if (rc) {
		snprintf(err, FETCH_ERRLEN, "the archive's path is too long for the listing");
		goto cleanup;
	}
	rc = nfd_ssh_argv(u, o, s.p, &cmd, err);
	if (rc)
		goto cleanup;
	rc = nfd_run_as(&ssh_tree_runner, cmd.argv, cmd.envp, deadline_ms, cancel,
			NFD_SSH_LIST_MAX, &buf, err);
	if (rc == -E2BIG)
		snprintf(err, FETCH_ERRLEN, "the archive's listing passes %u bytes",
			 NFD_SSH_LIST_MAX);
	if (rc) {
		rc = nfd_ssh_errno(rc, err);
		goto cleanup;
	}
	t->text = buf.p ? buf.p : strdup("");
	t->len = buf.len;
	buf.p = NULL;
	if (!t->text) {
		rc = -ENOMEM;
		goto cleanup;
	}
	if (strcmp(t->text, "/m\n") == 0) {
		snprintf(err, FETCH_ERRLEN, "no archive at %.200s on %.100s: no such directory",
			 u->path, u->host);
		rc = -ENOENT;
		goto cleanup;
	}
	rc = tree_parse(t, err);
cleanup:
	if (rc)
		nfd_ssh_tree_free(t);
	nfd_buf_free(&s);
	nfd_buf_free(&buf);
	nfd_ssh_cmd_free(&cmd);
	return rc;
}

int nfd_ssh_tree_list(const struct nfd_ssh_tree *t, const char *rel,
		      int (*take)(void *arg, const char *name, bool dir), void *arg)
{
	struct nfd_ssh_dir key = {.rel = rel}, *d;

	d = t->n ? bsearch(&key, t->d, t->n, sizeof(t->d[0]), tree_dir_cmp) : NULL;
	if (!d)
		return -ENOENT;
	for (size_t p = d->begin; p < d->end; p += strlen(t->text + p) + 1) {
		const char *name = t->text + p;
		size_t n = strlen(name);
		char plain[256];
		int rc;
		if (n == 0)
			continue;
		if (name[n - 1] == '/') {
			if (n > sizeof(plain))
				continue;
			memcpy(plain, name, n - 1);
			plain[n - 1] = '\0';
			rc = take(arg, plain, true);
		} else {
			rc = take(arg, name, false);
		}
		if (rc)
			return rc;
	}
	return 0;
}

void nfd_ssh_tree_free(struct nfd_ssh_tree *t)
{
	free(t->text);
	free(t->d);
	memset(t, 0, sizeof(*t));
}
