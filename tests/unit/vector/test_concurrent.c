/* Searches run while other threads insert, upsert and delete: no errors, no crash
 * (this test is also run under ASan), a key deleted before a search began is never
 * returned, and the final index has full recall. */
#include <criterion/criterion.h>

#include "vtest.h"

#include <pthread.h>
#include <stdatomic.h>

#define DIM 16
#define N0 3000
#define NADD 6000
#define NSEARCH 2

static float *vecs;
static mk_vector_index *ix;
static _Atomic uint64_t seq;
static _Atomic uint64_t del_seq[N0 + NADD];
static _Atomic int writers_left;
static _Atomic int errors;

static void *inserter(void *arg)
{
    size_t part = (size_t)(uintptr_t)arg;
    for (size_t i = N0 + part; i < N0 + NADD; i += 2) {
        int rc = (i % 5 == 0) ? mk_vector_upsert(ix, i, vecs + i * DIM, DIM, NULL)
                              : mk_vector_insert(ix, i, vecs + i * DIM, DIM, NULL);
        if (rc)
            atomic_fetch_add(&errors, 1);
    }
    atomic_fetch_sub(&writers_left, 1);
    return NULL;
}

static void *deleter(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < N0; i += 4) {
        if (mk_vector_delete(ix, i) != 0)
            atomic_fetch_add(&errors, 1);
        atomic_store(&del_seq[i], atomic_fetch_add(&seq, 1) + 1);
    }
    atomic_fetch_sub(&writers_left, 1);
    return NULL;
}

static void *searcher(void *arg)
{
    size_t s = (size_t)(uintptr_t)arg, rounds = 0;
    mk_vector_hit hits[10];
    while (atomic_load(&writers_left) > 0 || rounds < 50) {
        size_t qi = (s * 7919 + rounds * 104729) % (N0 + NADD);
        uint64_t s0 = atomic_load(&seq);
        size_t got;
        if (mk_vector_search(ix, vecs + qi * DIM, DIM, 10, NULL, hits, &got) != 0)
            atomic_fetch_add(&errors, 1);
        for (size_t j = 0; j < got; j++) {
            uint64_t d = atomic_load(&del_seq[hits[j].key]);
            if (d && d <= s0)
                atomic_fetch_add(&errors, 1000);
        }
        rounds++;
    }
    return NULL;
}

Test(concurrent, search_while_inserting_and_deleting, .timeout = 240)
{
    vecs = vt_clustered(N0 + NADD, DIM, 40, 31);
    mk_vector_params p;
    mk_vector_params_default(&p, DIM, MK_VECTOR_L2);
    p.ef_construction = 64;
    p.capacity = 512; /* several growths while searches run */
    cr_assert_eq(mk_vector_new(&p, &ix), 0);
    uint64_t *keys = malloc(N0 * sizeof *keys);
    for (size_t i = 0; i < N0; i++)
        keys[i] = i;
    cr_assert_eq(mk_vector_insert_batch(ix, N0, keys, vecs, DIM, NULL, 2), 0);
    free(keys);

    atomic_store(&writers_left, 3);
    pthread_t t[3 + NSEARCH];
    pthread_create(&t[0], NULL, inserter, (void *)0);
    pthread_create(&t[1], NULL, inserter, (void *)1);
    pthread_create(&t[2], NULL, deleter, NULL);
    for (size_t s = 0; s < NSEARCH; s++)
        pthread_create(&t[3 + s], NULL, searcher, (void *)(uintptr_t)s);
    /* a compaction and a save in the middle take the exclusive lock between searches */
    cr_assert_eq(mk_vector_compact(ix), 0);
    for (size_t i = 0; i < 3 + NSEARCH; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(atomic_load(&errors), 0, "errors: %d", atomic_load(&errors));

    size_t live = N0 + NADD - N0 / 4;
    cr_assert_eq(mk_vector_count(ix), live);
    cr_assert_eq(mk_vector_compact(ix), 0);
    /* every live vector finds itself */
    size_t self = 0, tried = 0;
    for (size_t i = 1; i < N0 + NADD; i += 13) {
        if (i < N0 && i % 4 == 0)
            continue;
        mk_vector_hit h;
        size_t got;
        cr_assert_eq(mk_vector_search(ix, vecs + i * DIM, DIM, 1, NULL, &h, &got), 0);
        self += got == 1 && h.key == i;
        tried++;
    }
    cr_assert_geq((double)self / tried, 0.99, "self-recall %zu/%zu", self, tried);
    mk_vector_free(ix);
    free(vecs);
}
