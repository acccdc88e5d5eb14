/*
 * vtest.h: helpers for the vector index tests (header-only, included by each test).
 * Deterministic data (a private splitmix64 generator, fixed seeds) and an exact
 * ground truth computed in double precision, independent of the index's kernels.
 */
#ifndef MK_VTEST_H
#define MK_VTEST_H

#include "vector/mk_vector.h"
#include "core/mk_error.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct vt_rng {
    uint64_t s;
} vt_rng;

static inline uint64_t vt_next(vt_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline double vt_unit(vt_rng *r) { return ((double)(vt_next(r) >> 11) + 0.5) / 9007199254740992.0; }

static inline double vt_gauss(vt_rng *r)
{
    return sqrt(-2.0 * log(vt_unit(r))) * cos(6.283185307179586 * vt_unit(r));
}

/* n points of dim around nc Gaussian centres (spread 0.5); caller frees. */
static inline float *vt_clustered(size_t n, uint32_t dim, uint32_t nc, uint64_t seed)
{
    vt_rng r = {seed};
    float *c = malloc((size_t)nc * dim * sizeof(float));
    float *v = malloc(n * dim * sizeof(float));
    for (size_t i = 0; i < (size_t)nc * dim; i++)
        c[i] = (float)vt_gauss(&r);
    for (size_t i = 0; i < n; i++) {
        const float *cc = c + (vt_next(&r) % nc) * dim;
        for (uint32_t d = 0; d < dim; d++)
            v[i * dim + d] = (float)(cc[d] + 0.5 * vt_gauss(&r));
    }
    free(c);
    return v;
}

/* Distance as the index defines it, in double. */
static inline double vt_dist(enum mk_vector_metric m, const float *a, const float *b, uint32_t dim)
{
    double s = 0, na = 0, nb = 0;
    for (uint32_t d = 0; d < dim; d++) {
        if (m == MK_VECTOR_L2) {
            double t = (double)a[d] - b[d];
            s += t * t;
        } else {
            s += (double)a[d] * b[d];
            na += (double)a[d] * a[d];
            nb += (double)b[d] * b[d];
        }
    }
    if (m == MK_VECTOR_L2)
        return s;
    if (m == MK_VECTOR_DOT)
        return 1.0 - s;
    return 1.0 - s / (sqrt(na) * sqrt(nb));
}

/* Exact k nearest rows of base to q among rows where keep (NULL = all) is nonzero. */
static inline size_t vt_truth(enum mk_vector_metric m, const float *base, size_t n, uint32_t dim,
                              const float *q, size_t k, const unsigned char *keep, uint64_t *out)
{
    double *bd = malloc(k * sizeof *bd);
    size_t got = 0;
    for (size_t i = 0; i < n; i++) {
        if (keep && !keep[i])
            continue;
        double d = vt_dist(m, base + i * dim, q, dim);
        if (got < k || d < bd[got - 1]) {
            size_t j = got < k ? got++ : k - 1;
            while (j > 0 && bd[j - 1] > d) {
                bd[j] = bd[j - 1];
                out[j] = out[j - 1];
                j--;
            }
            bd[j] = d;
            out[j] = i;
        }
    }
    free(bd);
    return got;
}

/* Fraction of truth found in hits. */
static inline double vt_overlap(const mk_vector_hit *hits, size_t got, const uint64_t *truth, size_t nt)
{
    if (nt == 0)
        return 1.0;
    size_t f = 0;
    for (size_t i = 0; i < got; i++)
        for (size_t j = 0; j < nt; j++)
            if (hits[i].key == truth[j]) {
                f++;
                break;
            }
    return (double)f / nt;
}

#endif
