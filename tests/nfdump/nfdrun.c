/*
 * nfdrun - the nfdump dialect's core run once, for the integration tests
 * (tests/integration/test_nfdump_ssh.py): the files of a window, the
 * command, its run and its decoding, on a local archive or over ssh.
 *
 *   nfdrun [options] ARCHIVE SUBJECT FROM_MS TO_MS
 *
 * ARCHIVE is a local directory or an nfdump+ssh:// URL.  Options:
 * --peer P, --layout N, --files-tz Z, --deadline-ms N (from now),
 * --ssh PROG, --ssh-config F, --identity F, --known-hosts F,
 * --connect-timeout S.
 *
 * Prints `file REL` for each file of the window, then nfdump's output as
 * it came, then one line `records R kept K outside O foreign F rejected
 * X`.  On failure: `nfdrun: ERRNAME: cause` on stderr, exit status 2.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "fetch.h"
#include "nfdump.h"
#include "nfdump_ssh.h"

#define NFDRUN_OUT_MAX (256u << 20)

static int usage(void)
{
	fprintf(stderr, "usage: nfdrun [--peer P] [--layout N] [--files-tz Z] [--deadline-ms N] "
		"[--ssh PROG] [--ssh-config F] [--identity F] [--known-hosts F] "
		"[--connect-timeout S] ARCHIVE SUBJECT FROM_MS TO_MS\n");
	return 2;
}

/* The errno's name, for the tests to match. */
static const char *errname(int rc)
{
	switch (-rc) {
	case EACCES: return "EACCES";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case ETIMEDOUT: return "ETIMEDOUT";
	case ENOENT: return "ENOENT";
	case EINVAL: return "EINVAL";
	case EIO: return "EIO";
	case E2BIG: return "E2BIG";
	case EBADMSG: return "EBADMSG";
	default: return "other";
	}
}

int main(int argc, char **argv)
{
	struct nfd_ssh_opts so = {0};
	struct nfd_archive a = {0};
	struct nfd_ssh_url u;
	struct nfd_files files = {0};
	struct nfd_cmd cmd;
	struct nfd_ssh_cmd scmd = {0};
	struct nfd_buf buf = {0};
	struct nfd_out o = {0};
	struct cache_query q = {0};
	const char *peer = NULL;
	char err[FETCH_ERRLEN] = "";
	int64_t deadline = 0;
	bool ssh;
	int i = 1, rc;

	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		const char *k = argv[i] + 2, *v = argv[i + 1];
		if (strcmp(k, "peer") == 0)
			peer = v;
		else if (strcmp(k, "layout") == 0)
			a.layout = atoi(v);
		else if (strcmp(k, "files-tz") == 0)
			a.files_tz = v;
		else if (strcmp(k, "deadline-ms") == 0)
			deadline = nfd_mono_ms() + atoll(v);
		else if (strcmp(k, "ssh") == 0)
			so.ssh = v;
		else if (strcmp(k, "ssh-config") == 0)
			so.config_file = v;
		else if (strcmp(k, "identity") == 0)
			so.identity_file = v;
		else if (strcmp(k, "known-hosts") == 0)
			so.known_hosts = v;
		else if (strcmp(k, "connect-timeout") == 0)
			so.connect_timeout_s = atoi(v);
		else
			return usage();
	}
	if (argc - i != 4)
		return usage();
	if (cache_prefix_parse(argv[i + 1], &q.subject) != 0 ||
	    (peer && cache_prefix_parse(peer, &q.peer) != 0)) {
		fprintf(stderr, "nfdrun: EINVAL: a bad subject or peer\n");
		return 2;
	}
	q.has_peer = peer != NULL;
	q.start = atoll(argv[i + 2]);
	q.end = atoll(argv[i + 3]);
	ssh = strncmp(argv[i], NFD_SSH_PREFIX, strlen(NFD_SSH_PREFIX)) == 0;
	if (ssh) {
		rc = nfd_ssh_parse(argv[i], &u, err);
		if (rc)
			goto fail;
		a.root = u.path;
		rc = nfd_ssh_files(&u, &so, &a, q.start, q.end, deadline, NULL, &files, err);
	} else {
		a.root = argv[i];
		rc = nfd_archive_files(&a, q.start, q.end, &files, err);
	}
	if (rc)
		goto fail;
	for (size_t k = 0; k < files.n; k++)
		printf("file %s\n", files.v[k].rel);
	rc = nfd_argv(NULL, &a, &files, 0, &q, &cmd, err);
	if (rc)
		goto fail;
	if (ssh) {
		rc = nfd_ssh_wrap(&u, &so, &cmd, &scmd, err);
		if (rc == 0)
			rc = nfd_run_as(&nfd_ssh_runner, scmd.argv, scmd.envp, deadline, NULL,
					NFDRUN_OUT_MAX, &buf, err);
		rc = nfd_ssh_errno(rc, err);
	} else {
		rc = nfd_run(cmd.argv, cmd.envp, deadline, NULL, NFDRUN_OUT_MAX, &buf, err);
	}
	if (rc)
		goto fail;
	rc = nfd_decode(buf.p ? buf.p : "", buf.len, &q, q.start, q.end, &o, err);
	if (rc)
		goto fail;
	fwrite(buf.p ? buf.p : "", 1, buf.len, stdout);
	printf("\nrecords %zu kept %zu outside %zu foreign %zu rejected %zu\n", o.records, o.n,
	       o.outside, o.foreign, o.rejected);
fail:
	if (rc)
		fprintf(stderr, "nfdrun: %s: %s\n", errname(rc), err);
	nfd_out_free(&o);
	nfd_buf_free(&buf);
	nfd_ssh_cmd_free(&scmd);
	nfd_files_free(&files);
	return rc ? 2 : 0;
}
