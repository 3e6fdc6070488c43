/*
 * test_common.c - the headers every room shares (common/): arr_grow, the
 * one growable array, and the holder checks of struct mtx.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* arr.h's realloc counted: a refused room must not ask for memory (a
 * wrapped byte count would ask for 0 bytes, which frees the array). */
static unsigned reallocs;
static void *counted_realloc(void *p, size_t n)
{
	reallocs++;
	return realloc(p, n);
}
#define realloc counted_realloc
#include "arr.h"
#undef realloc
#include "mtx.h"

/* Appends one at a time: every element kept, room doubled (never grown
 * for each append), and room that is there is not touched. */
static void test_arr_appends(void **state)
{
	(void)state;
	int *v = NULL;
	size_t n = 0, cap = 0, grew = 0;

	for (int i = 0; i < 1000; i++) {
		size_t was = cap;
		assert_int_equal(arr_grow(&v, &cap, n + 1, sizeof(*v)), 0);
		assert_true(cap >= n + 1);
		if (cap != was) {
			grew++;
			assert_true(was == 0 || cap == 2 * was);
		}
		v[n++] = i;
	}
	for (int i = 0; i < 1000; i++)
		assert_int_equal(v[i], i);
	assert_true(grew <= 7);		/* 16, 32, ..., 1024 */
	int *same = v;
	assert_int_equal(arr_grow(&v, &cap, cap, sizeof(*v)), 0);
	assert_ptr_equal(v, same);
	/* a need many times the room is met at once */
	assert_int_equal(arr_grow(&v, &cap, 100000, sizeof(*v)), 0);
	assert_true(cap >= 100000);
	v[99999] = 7;
	free(v);
}

/* A room whose bytes size_t cannot count is refused, the array as it
 * was: the element count times the size overflowing, and the doubling
 * overflowing. */
static void test_arr_overflow(void **state)
{
	(void)state;
	long *v = NULL;
	size_t cap = 0;

	assert_int_equal(arr_grow(&v, &cap, 4, sizeof(*v)), 0);
	v[3] = 42;
	long *was = v;
	size_t capwas = cap;
	unsigned asked = reallocs;
	assert_int_equal(arr_grow(&v, &cap, SIZE_MAX / sizeof(*v) + 1, sizeof(*v)), -ENOMEM);
	assert_ptr_equal(v, was);
	assert_int_equal(cap, capwas);
	assert_int_equal(arr_grow(&v, &cap, SIZE_MAX, 1), -ENOMEM);
	assert_int_equal(arr_grow(&v, &cap, SIZE_MAX / 2 + 2, 1), -ENOMEM);
	assert_int_equal(arr_grow(&v, &cap, cap + 1, 0), -ENOMEM);
	assert_ptr_equal(v, was);
	assert_int_equal(cap, capwas);
	assert_int_equal(reallocs, asked);	/* refused without asking */
	/* still the array it was: it grows, and holds what it held */
	assert_int_equal(arr_grow(&v, &cap, capwas + 1, sizeof(*v)), 0);
	assert_int_equal(v[3], 42);
	free(v);
}

#ifndef NDEBUG
struct other {
	struct mtx *l;
	int held_here;
};

static void *other_thread(void *arg)
{
	struct other *o = arg;
	o->held_here = atomic_load(&o->l->owner) == (int)gettid();
	return NULL;
}
#endif

/* The holder is recorded while the mutex is held, by the thread that
 * holds it, and cleared by unlock and across a condition wait. */
static void test_mtx_owner(void **state)
{
	(void)state;
#ifndef NDEBUG
	struct mtx l;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	struct timespec ts = {0, 0};

	mtx_init(&l);
	mtx_assert_not_held(&l);
	mtx_lock(&l);
	mtx_assert_held(&l);
	struct other o = {&l, -1};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, other_thread, &o), 0);
	pthread_join(th, NULL);
	assert_int_equal(o.held_here, 0);	/* another thread does not hold it */
	/* a timed wait that times out holds the mutex again on return */
	l.owner = 0;
	pthread_cond_timedwait(&cv, &l.m, &ts);
	mtx_owner_set(&l, (int)gettid());
	mtx_assert_held(&l);
	mtx_unlock(&l);
	mtx_assert_not_held(&l);
	assert_int_equal(atomic_load(&l.owner), 0);
	mtx_destroy(&l);
#else
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arr_appends),
		cmocka_unit_test(test_arr_overflow),
		cmocka_unit_test(test_mtx_owner),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
