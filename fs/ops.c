/*
 * ops.c - the low-level FUSE operations of flowfs, and the inode table.
 *
 * Inode numbers are a hash of the canonical path (fs_node_ino), so they
 * are the same on every mount (but for the second of two nodes whose
 * hashes collide: inode_ref); the table maps the numbers the kernel holds
 * (looked up, not yet forgotten) back to their nodes.  Nothing here waits
 * on the network: listings come from the grammar and the cache, and files
 * of query folders are handed to folder.c, which parks them.
 */
#include "arr.h"
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ENTRY_TIMEOUT 60.0	/* names (and invalid names) are stable */
#define NEG_TIMEOUT 60.0

/* ---- the inode table (open addressing, caller holds c->lock) ------------- */

static struct fs_inode **slot_of(struct fs_ctx *c, uint64_t ino)
{
	size_t mask = c->capinodes - 1, i = (size_t)(ino * 0x9e3779b97f4a7c15ULL) & mask;

	while (c->inodes[i] && c->inodes[i]->ino != ino)
		i = (i + 1) & mask;
	return &c->inodes[i];
}

static int table_grow(struct fs_ctx *c)
{
	size_t old = c->capinodes, cap = old ? old * 2 : 1024;
	struct fs_inode **was = c->inodes;

	c->inodes = calloc(cap, sizeof(*c->inodes));
	if (!c->inodes) {
		c->inodes = was;
		return -ENOMEM;
	}
	c->capinodes = cap;
	for (size_t i = 0; i < old; i++)
		if (was[i])
			*slot_of(c, was[i]->ino) = was[i];
	free(was);
	return 0;
}

static struct fs_inode *inode_find(struct fs_ctx *c, uint64_t ino)
{
	mtx_assert_held(&c->lock);
	return c->capinodes ? *slot_of(c, ino) : NULL;
}

/* Count one more lookup of n, under the number it has in the table:
 * fs_node_ino's, or when another node holds that one (a collision of the
 * hash), the next free one along fs_ino_next, so that two nodes never
 * share an inode.  *ino is the number to give the kernel; -ENOMEM. */
static int inode_ref(struct fs_ctx *c, const struct fs_node *n, uint64_t *ino)
{
	uint64_t num = fs_node_ino(n);
	struct fs_inode **s;

	mtx_assert_held(&c->lock);
	if ((c->ninodes + 1) * 2 > c->capinodes && table_grow(c))
		return -ENOMEM;
	for (;;) {
		s = slot_of(c, num);
		if (!*s || fs_node_same(&(*s)->node, n))
			break;
		num = fs_ino_next(num);
	}
	if (!*s) {
		struct fs_inode *in = calloc(1, sizeof(*in));
		if (!in)
			return -ENOMEM;
		in->ino = num;
		in->node = *n;
		*s = in;
		c->ninodes++;
	}
	(*s)->nlookup++;
	*ino = num;
	return 0;
}

/* Forget: remove and re-insert the run after the slot (no tombstones). */
static void inode_unref(struct fs_ctx *c, uint64_t ino, uint64_t n)
{
	struct fs_inode **s;

	mtx_assert_held(&c->lock);
	s = c->capinodes ? slot_of(c, ino) : NULL;
	if (!s || !*s)
		return;
	if ((*s)->nlookup > n) {
		(*s)->nlookup -= n;
		return;
	}
	free(*s);
	*s = NULL;
	c->ninodes--;
	size_t mask = c->capinodes - 1, i = (size_t)(s - c->inodes);
	for (i = (i + 1) & mask; c->inodes[i]; i = (i + 1) & mask) {
		struct fs_inode *mv = c->inodes[i];
		c->inodes[i] = NULL;
		*slot_of(c, mv->ino) = mv;
	}
}

/* The node of an inode number the kernel gave us. */
static int node_of(struct fs_ctx *c, fuse_ino_t ino, struct fs_node *out)
{
	if (ino == FUSE_ROOT_ID) {
		memset(out, 0, sizeof(*out));
		out->kind = FS_ROOT;
		return 0;
	}
	mtx_lock(&c->lock);
	struct fs_inode *in = inode_find(c, ino);
	if (in)
		*out = in->node;
	mtx_unlock(&c->lock);
	return in ? 0 : -ENOENT;
}

static bool is_dir(enum fs_kind k)
{
	return k == FS_ROOT || k == FS_COLLECTOR || k == FS_SUBJECT || k == FS_QUERY;
}

/* Attributes that need no query: folders and made-up files. */
static int plain_stat(struct fs_ctx *c, const struct fs_node *n, uint64_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = c->uid;
	st->st_gid = c->gid;
	st->st_blksize = 65536;
	if (is_dir(n->kind)) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		if (n->kind == FS_QUERY)
			st->st_mtime = (time_t)(n->q.start / 1000);
		/* a day the cache holds whole: when it was fetched */
		if (n->kind == FS_QUERY && n->is_day) {
			int64_t bounds[2] = {n->q.start, n->q.end}, fetched;
			fs_days_fetched(c, &n->q, bounds, 1, false, &fetched);
			if (fetched > 0)
				st->st_mtime = (time_t)(fetched / 1000);
		}
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		if (n->kind == FS_README || n->kind == FS_COLLECTOR_FILE) {
			char *text = NULL;
			size_t len = 0;
			if (fs_static_file(c, n, &text, &len) == 0)
				st->st_size = (off_t)len;
			free(text);
		}
	}
	st->st_ctime = st->st_atime = st->st_mtime;
	return 0;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_ctx *c = fuse_req_userdata(req);
	struct fs_node pn, n;
	struct fs_clock clk;
	struct fuse_entry_param e;
	char why[FS_WHY_LEN];
	int rc;

	memset(&e, 0, sizeof(e));
	if (node_of(c, parent, &pn)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fs_clock_now(c, &clk);
	rc = fs_lookup_why(&pn, name, &clk, &n, why, sizeof(why));
	if (rc == -ENOENT || rc == -ENAMETOOLONG)
		fs_log_refused(c, &pn, name, why);	/* FUSE carries only the errno */
	if (rc == -ENOENT) {
		e.ino = 0;	/* a negative entry: the kernel remembers it */
		e.entry_timeout = NEG_TIMEOUT;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (n.kind == FS_SUBJECT || n.kind == FS_QUERY)
		fs_log_spelling(c, &pn, name, &n);
	mtx_lock(&c->lock);
	rc = inode_ref(c, &n, &e.ino);
	mtx_unlock(&c->lock);
	if (rc) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	e.entry_timeout = ENTRY_TIMEOUT;
	e.attr_timeout = ENTRY_TIMEOUT;
	if (n.kind != FS_FILE || n.file == FS_F_PROGRESS ||
	    fs_folder_stat(c, &n, e.ino, &e.attr, &e.attr_timeout) != 0) {
		plain_stat(c, &n, e.ino, &e.attr);
		/* a query file's size is known only after its query:
		 * attributes that expire at once make the kernel ask getattr
		 * before any use */
		if (n.kind == FS_FILE)
			e.attr_timeout = 0.0;
	}
	fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct fs_ctx *c = fuse_req_userdata(req);

	mtx_lock(&c->lock);
	inode_unref(c, ino, nlookup);
	mtx_unlock(&c->lock);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct fs_ctx *c = fuse_req_userdata(req);

	mtx_lock(&c->lock);
	for (size_t i = 0; i < count; i++)
		inode_unref(c, forgets[i].ino, forgets[i].nlookup);
	mtx_unlock(&c->lock);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_ctx *c = fuse_req_userdata(req);
	struct fs_node n;
	struct stat st;

	(void)fi;
	if (node_of(c, ino, &n)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (n.kind == FS_FILE && n.file != FS_F_PROGRESS) {
		fs_folder_getattr(c, req, &n, ino);
		return;
	}
	plain_stat(c, &n, ino, &st);
	fuse_reply_attr(req, &st, n.kind == FS_FILE ? 0.0 : ENTRY_TIMEOUT);
}

/* A directory listing, built whole (they are small) and served by offset. */
struct listing {
	char *buf;
	size_t len, cap;
};

static void list_add(fuse_req_t req, struct listing *l, const char *name, const struct fs_node *n)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_ino = n ? fs_node_ino(n) : FUSE_ROOT_ID;
	st.st_mode = n && !is_dir(n->kind) ? S_IFREG : S_IFDIR;
	size_t need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
	if (l->len + need > l->cap) {
		if (arr_grow(&l->buf, &l->cap, l->len + need, 1))
			return;
	}
	fuse_add_direntry(req, l->buf + l->len, need, name, &st, (off_t)(l->len + need));
	l->len += need;
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct fs_ctx *c = fuse_req_userdata(req);
	struct listing l = {0};
	struct fs_node n, child;
	struct fs_clock clk;

	(void)fi;
	if (node_of(c, ino, &n)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!is_dir(n.kind)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fs_clock_now(c, &clk);
	list_add(req, &l, ".", &n);
	list_add(req, &l, "..", NULL);
	switch (n.kind) {
	case FS_ROOT: {
		child.kind = FS_README;
		list_add(req, &l, "README.txt", &child);
		child.kind = FS_COLLECTOR;
		list_add(req, &l, "collector", &child);
		struct cache_query *subj = NULL;
		size_t ns = 0;
		if (fs_cached_subjects(c, &subj, &ns) == 0) {
			for (size_t i = 0; i < ns; i++) {
				char name[160];
				memset(&child, 0, sizeof(child));
				child.kind = FS_SUBJECT;
				child.q = subj[i];
				fs_subject_name(&subj[i], name, sizeof(name));
				list_add(req, &l, name, &child);
			}
		}
		free(subj);
		break;
	}
	case FS_COLLECTOR:
		for (int i = 0; i < FS_NCFILES; i++) {
			memset(&child, 0, sizeof(child));
			child.kind = FS_COLLECTOR_FILE;
			child.file = i;
			list_add(req, &l, fs_collector_names[i], &child);
		}
		break;
	case FS_SUBJECT: {
		int64_t days[FS_DAYS_MAX], bounds[FS_DAYS_MAX + 1], *fetched = NULL;
		int nd = fs_days(&clk, days, FS_DAYS_MAX);
		size_t nb = 0;
		for (int i = 0; i < nd; i++) {
			char name[64];
			child = n;
			child.kind = FS_QUERY;
			child.is_day = true;
			child.q.start = days[i];
			child.q.end = i + 1 < nd ? days[i + 1] : 0;
			fs_node_name(&child, name, sizeof(name));
			/* the parsed node, so that end and inode are exact */
			if (fs_lookup(&n, name, &clk, &child) != 0)
				continue;
			list_add(req, &l, name, &child);
			if (nb == 0 || bounds[nb] == child.q.start) {
				bounds[nb] = child.q.start;
				bounds[++nb] = child.q.end;
			}
		}
		/* the days' times for the stats of ls -l that follow: one
		 * query, at the listing's start (the kernel reads it in parts) */
		if (off == 0 && nb > 0 && (fetched = malloc(nb * sizeof(*fetched))))
			fs_days_fetched(c, &n.q, bounds, nb, true, fetched);
		free(fetched);
		break;
	}
	case FS_QUERY:
		for (int i = 0; i < FS_NFILES; i++) {
			if (i == FS_F_PROGRESS)
				continue;	/* unlisted, so that cp -r leaves it */
			child = n;
			child.kind = FS_FILE;
			child.file = i;
			list_add(req, &l, fs_file_names[i], &child);
		}
		break;
	default:
		break;
	}
	if ((size_t)off >= l.len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, l.buf + off, l.len - (size_t)off < size ? l.len - (size_t)off : size);
	free(l.buf);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_ctx *c = fuse_req_userdata(req);
	struct fs_node n;

	if (node_of(c, ino, &n)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (is_dir(n.kind)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (n.kind == FS_FILE && n.file != FS_F_PROGRESS) {
		fs_folder_open(c, req, &n, ino, fi);
		return;
	}
	struct fs_handle *h = calloc(1, sizeof(*h));
	char *text = NULL;
	size_t len = 0;
	int rc = 0;
	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (n.kind == FS_FILE) {	/* .progress: made now, never waits */
		text = fs_folder_progress(c, &n);
		len = text ? strlen(text) : 0;
		rc = text ? 0 : -ENOMEM;
		fi->direct_io = 1;
	} else {
		rc = fs_static_file(c, &n, &text, &len);
		/* README.txt's figures move (the snapshots held): its size from
		 * getattr may be stale, so reads ask flowfs, not the size */
		if (n.kind == FS_README)
			fi->direct_io = 1;
	}
	if (rc) {
		free(h);
		fuse_reply_err(req, fs_errno(rc));
		return;
	}
	h->fd = -1;
	h->mem = text;
	h->size = len;
	fi->fh = (uint64_t)(uintptr_t)h;
	if (fuse_reply_open(req, fi) != 0) {
		free(text);
		free(h);
	}
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;

	(void)ino;
	if ((uint64_t)off >= h->size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > h->size - (uint64_t)off)
		size = (size_t)(h->size - (uint64_t)off);
	if (h->mem) {
		/* reply from a copy: once the kernel has the bytes the reader
		 * may close, and another thread free h, while writev returns */
		char *copy = malloc(size ? size : 1);
		if (!copy) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		memcpy(copy, h->mem + off, size);
		fuse_reply_buf(req, copy, size);
		free(copy);
		return;
	}
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);
	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = h->fd;
	bv.buf[0].pos = off;
	fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;

	(void)ino;
	if (h)
		fs_handle_release(fuse_req_userdata(req), h);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = sv.f_frsize = 65536;
	sv.f_namemax = 255;
	sv.f_flag = ST_RDONLY;
	fuse_reply_statfs(req, &sv);
}

/* No operation that writes: the tree is evidence, and flowfs mounts it
 * "ro" (flowfs.c), so the kernel answers every write, create, rename,
 * setattr, setxattr and open for writing with EROFS before it reaches
 * us. */
const struct fuse_lowlevel_ops fs_ops = {
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.readdir = op_readdir,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.statfs = op_statfs,
};
