/*
 * nfdump_ssh.h - the nfdump dialect over ssh (issue 14): an archive on the
 * collector, `nfdump+ssh://[user@]host[:port]/var/cache/nfdump`, read by
 * running the same commands there through OpenSSH's ssh(1).
 *
 * Three steps beside nfdump.h's:
 *
 *   nfd_ssh_parse    the URL into user, host, port and path, strictly
 *   nfd_ssh_files    the archive's files for a window, listed on the
 *                    collector in one ssh command (nfd_archive_scan's rules)
 *   nfd_ssh_wrap     nfd_argv's command as an ssh command: every argument
 *                    single-quoted for the remote shell, behind
 *                    `exec env TZ=UTC LC_ALL=C`
 *
 * then nfd_run_as(&nfd_ssh_runner, ...) runs it (a deadline, cancel,
 * bounded output, the process group killed) and nfd_decode reads it, as
 * for a local archive.  ssh runs with BatchMode=yes (never a password or a
 * host key question), the user's keys, agent and known_hosts, or the files
 * given in struct nfd_ssh_opts.  docs/nfdump.md, "Over ssh", says what the
 * user sets up and what was verified.
 *
 * The seam for the driver: a `nfdump+ssh://` URL is parsed with
 * nfd_ssh_parse; the archive's root is the URL's path; where the local
 * driver calls nfd_archive_files it calls nfd_ssh_files, and where it runs
 * nfd_argv's command with nfd_run it runs nfd_ssh_wrap's with
 * nfd_run_as(&nfd_ssh_runner, ...), then maps errors with nfd_ssh_errno;
 * its open reads the archive's tree with nfd_ssh_tree_read.  Wired:
 * nfdump_drv.c serves both forms (the table's nfdump line).
 */
#ifndef FLOWFS_NFDUMP_SSH_H
#define FLOWFS_NFDUMP_SSH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nfdump.h"

#define NFD_SSH_PREFIX "nfdump+ssh://"
#define NFD_SSH_USER_MAX 32		/* a user name's characters */
#define NFD_SSH_HOST_MAX 253		/* a DNS name's characters */
#define NFD_SSH_PATH_MAX 1024		/* the archive's path on the collector */
#define NFD_SSH_CMD_MAX (64 * 1024)	/* one command for the remote shell */
#define NFD_SSH_DIRS_MAX 2048		/* directories one listing reads */
#define NFD_SSH_LIST_MAX (16u << 20)	/* a listing's output: 700,000 names */
#define NFD_SSH_CONNECT_S 10		/* ConnectTimeout by default */
#define NFD_SSH_ALIVE_S 15		/* ServerAliveInterval by default */

/*
 * A parsed URL.  host is a DNS name (an IPv4 address is one) or an IPv6
 * address, without brackets; port 0 and user "" leave them to ssh's
 * configuration.
 */
struct nfd_ssh_url {
	char user[NFD_SSH_USER_MAX + 1];
	char host[NFD_SSH_HOST_MAX + 1];
	int port;
	char path[NFD_SSH_PATH_MAX];
};

/*
 * Parse `nfdump+ssh://[user@]host[:port]/abs/path`.  user: 1 to 32 of
 * [A-Za-z0-9._-], not starting with '-'; host: a DNS name (labels of
 * [A-Za-z0-9-], 1 to 63 characters, not starting or ending with '-', at
 * most 253 in all) or an IPv6 address in brackets (no zone); port: 1 to
 * 65535, decimal without leading zeros; path: absolute, taken literally
 * (no %-decoding), no control character (newline, CR, ...), no ':'
 * (nfdump's -M separator), shorter than NFD_SSH_PATH_MAX.  Any quote,
 * space, ';' or '$' in the path is kept: it is quoted for the remote
 * shell, never interpreted.  Returns 0, or -EINVAL with err saying which
 * part is refused and why.
 */
int nfd_ssh_parse(const char *url, struct nfd_ssh_url *u, char *err);

/*
 * What the fronts pass through to ssh (each NULL or 0 for the default).
 * File names: 1 to 1023 of [A-Za-z0-9/._+,=@~-] (ssh_config(5) would
 * split a name at a space and expand '%' tokens), else -EINVAL.
 */
struct nfd_ssh_opts {
	const char *ssh;		/* the ssh program; NULL: "ssh" on PATH */
	const char *config_file;	/* ssh -F (then /etc/ssh/ssh_config is not read) */
	const char *identity_file;	/* ssh -i */
	const char *known_hosts;	/* -o UserKnownHostsFile=; NULL: the user's */
	const char *nfdump;		/* nfdump on the collector; NULL: "nfdump" on its PATH */
	int connect_timeout_s;		/* ConnectTimeout; 0: NFD_SSH_CONNECT_S */
	int alive_interval_s;		/* ServerAliveInterval (3 unanswered end it); 0: NFD_SSH_ALIVE_S */
};

/* One ssh command: argv and envp (NULL-terminated) point into the
 * struct's own store; remote is the command for the remote shell. */
#define NFD_SSH_ARGV_MAX 32
struct nfd_ssh_cmd {
	char *argv[NFD_SSH_ARGV_MAX];
	char *envp[5];
	char store[8192];
	size_t used;
	char *remote;			/* malloc'd, argv's last */
};

void nfd_ssh_cmd_free(struct nfd_ssh_cmd *c);

/*
 * Append arg to buf (len bytes, NUL-terminated, *used its length) quoted
 * for a POSIX shell: between single quotes, each ' written '\''.  Every
 * byte but NUL stands for itself inside single quotes (POSIX sh, 2.2.2),
 * so no word of arg is ever expanded or run.  -E2BIG when it does not fit
 * (buf keeps what it held).
 */
int nfd_ssh_quote(char *buf, size_t len, size_t *used, const char *arg);

/*
 * The ssh command that runs remote on u's host:
 *
 *   ssh -T -o BatchMode=yes -o ConnectTimeout=N -o ServerAliveInterval=S
 *       -o ServerAliveCountMax=3 -o ControlMaster=no [-F config]
 *       [-i identity] [-o UserKnownHostsFile=FILE] [-p port] [-l user]
 *       -- host REMOTE
 *
 * (ControlMaster=no: a master the user's configuration would start and
 * keep (ControlPersist) would hold the pipes open after the command; an
 * existing master is still used.)
 * with the environment PATH, and HOME and SSH_AUTH_SOCK when set (the
 * user's keys and agent), nothing else.  remote is copied.  Returns 0,
 * -EINVAL (a bad option, err says which), -E2BIG (remote longer than
 * NFD_SSH_CMD_MAX or the store full), -ENOMEM.
 */
int nfd_ssh_argv(const struct nfd_ssh_url *u, const struct nfd_ssh_opts *o, const char *remote,
		 struct nfd_ssh_cmd *out, char *err);

/*
 * nfd_argv's command (c) as an ssh command: the remote command is
 * `exec env TZ=UTC LC_ALL=C 'nfdump' '-C' 'none' ... 'FILTER'`, every
 * argument of c and each of its environment's entries but PATH quoted
 * with nfd_ssh_quote (the collector's own PATH finds nfdump).  Errors as
 * nfd_ssh_argv's.
 */
int nfd_ssh_wrap(const struct nfd_ssh_url *u, const struct nfd_ssh_opts *o,
		 const struct nfd_cmd *c, struct nfd_ssh_cmd *out, char *err);

/* For nfd_run_as: errors start with "ssh"; 255 is ssh's own failure, 127
 * no nfdump on the collector, the rest nfdump's statuses. */
extern const struct nfd_runner nfd_ssh_runner;

/*
 * The errno for a failed nfd_run_as(&nfd_ssh_runner, ...) or
 * nfd_ssh_files: rc, except that ssh's own failure (status 255) becomes
 * -EACCES when OpenSSH's message says the key or user was refused or the
 * host key is unknown or changed, -EHOSTUNREACH when the host cannot be
 * resolved or reached (refused, timed out, no route), -EIO otherwise.
 */
int nfd_ssh_errno(int rc, const char *err);

/*
 * nfd_archive_files for the archive a on u's host (a->root: the path on
 * the collector, normally u->path): the same files, by the same rules,
 * listed there with one ssh command that prints each directory the
 * window needs (`ls -1q`) or says it is missing.  deadline_ms and cancel
 * as nfd_run's.  Returns 0, nfd_archive_files's errors (-ENOENT: no
 * archive at the path), nfd_run_as's (through nfd_ssh_errno), -E2BIG when
 * the window needs more than NFD_SSH_DIRS_MAX directories or the listing
 * passes NFD_SSH_LIST_MAX bytes, -EBADMSG when the listing is not the
 * script's (a login script that prints?).
 */
int nfd_ssh_files(const struct nfd_ssh_url *u, const struct nfd_ssh_opts *o,
		  const struct nfd_archive *a, int64_t start, int64_t end, int64_t deadline_ms,
		  const atomic_int *cancel, struct nfd_files *out, char *err);

/*
 * The whole archive's tree, read once at open (its layout, channels, first
 * and last file): `ls -1qRpL .` in the archive's directory on the
 * collector (links followed, as the local walk follows them), one ssh
 * command, the directories indexed by their path under
 * the archive ("" the archive itself, "live/2026/11").
 */
#define NFD_SSH_TREE_DIRS 65536		/* directories a tree holds */
struct nfd_ssh_dir {
	const char *rel;		/* into text */
	size_t begin, end;		/* its names' lines in text, NUL-terminated */
};
struct nfd_ssh_tree {
	char *text;			/* the listing, malloc'd */
	size_t len;
	struct nfd_ssh_dir *d;		/* sorted by rel */
	size_t n, cap;
};

/*
 * Read the tree of the archive at u->path on u's host (dot files left
 * out, as ls does; names with a newline read with '?').  deadline_ms and
 * cancel as nfd_run's.  Returns 0, -ENOENT when the path is not a
 * directory there, nfd_run_as's errors through nfd_ssh_errno (ssh's
 * reason in err), -E2BIG past NFD_SSH_LIST_MAX bytes or NFD_SSH_TREE_DIRS
 * directories, -EBADMSG when the output is not ls's (a login script that
 * prints?), -ENOMEM.  t is empty on failure.
 */
int nfd_ssh_tree_read(const struct nfd_ssh_url *u, const struct nfd_ssh_opts *o,
		      int64_t deadline_ms, const atomic_int *cancel, struct nfd_ssh_tree *t,
		      char *err);

/* take(arg, NAME, is a directory) for each entry of the directory rel of
 * t, in ls's order, until take returns non-zero (returned); -ENOENT when t
 * has no such directory. */
int nfd_ssh_tree_list(const struct nfd_ssh_tree *t, const char *rel,
		      int (*take)(void *arg, const char *name, bool dir), void *arg);

void nfd_ssh_tree_free(struct nfd_ssh_tree *t);

#endif
