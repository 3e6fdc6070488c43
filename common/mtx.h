/*
 * mtx.h - a mutex that knows its holder in debug builds, so that a
 * function documented "called with X held" (or "never with X held") can
 * say so in code, as SQLite's assert(unixMutexHeld()) does.
 *
 * mtx_lock, mtx_unlock and mtx_cond_wait are pthread's, plus, when NDEBUG
 * is not defined, a record of the holder's thread id (gettid); the record
 * is an atomic written only by the holder, so reading it from any thread
 * is no data race, and a thread sees its own id there exactly while it
 * holds the mutex.  With NDEBUG the record and the checks compile to
 * nothing.  Header only: every room uses it (fs/, fetch/).
 */
#ifndef FLOWFS_MTX_H
#define FLOWFS_MTX_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

struct mtx {
	pthread_mutex_t m;
	atomic_int owner;	/* debug builds: the holder's thread id, 0 when free */
};

/* A new mutex, free.  Never fails (a default mutex needs no resources). */
static inline void mtx_init(struct mtx *l)
{
	pthread_mutex_init(&l->m, NULL);
	atomic_init(&l->owner, 0);
}

static inline void mtx_destroy(struct mtx *l)
{
	pthread_mutex_destroy(&l->m);
}

#ifndef NDEBUG
static inline void mtx_owner_set(struct mtx *l, int tid)
{
	atomic_store_explicit(&l->owner, tid, memory_order_relaxed);
}
#else
static inline void mtx_owner_set(struct mtx *l, int tid)
{
	(void)l, (void)tid;
}
#endif

static inline void mtx_lock(struct mtx *l)
{
	pthread_mutex_lock(&l->m);
#ifndef NDEBUG
	mtx_owner_set(l, (int)gettid());
#endif
}

static inline void mtx_unlock(struct mtx *l)
{
	mtx_owner_set(l, 0);
	pthread_mutex_unlock(&l->m);
}

/* pthread_cond_wait on l, which the caller holds; held again on return. */
static inline void mtx_cond_wait(pthread_cond_t *cv, struct mtx *l)
{
	mtx_owner_set(l, 0);
	pthread_cond_wait(cv, &l->m);
#ifndef NDEBUG
	mtx_owner_set(l, (int)gettid());
#endif
}

/* Debug builds: abort unless the calling thread holds l (mtx_assert_held)
 * or does not (mtx_assert_not_held).  Nothing with NDEBUG. */
#ifndef NDEBUG
#define mtx_assert_held(l) \
	assert(atomic_load_explicit(&(l)->owner, memory_order_relaxed) == (int)gettid())
#define mtx_assert_not_held(l) \
	assert(atomic_load_explicit(&(l)->owner, memory_order_relaxed) != (int)gettid())
#else
#define mtx_assert_held(l) ((void)(l))
#define mtx_assert_not_held(l) ((void)(l))
#endif

#endif
