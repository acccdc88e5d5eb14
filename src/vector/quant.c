/*
 * quant.c: optional int8 scalar quantization.
 *
 * Each dimension d gets its own range [qmin[d], qmin[d] + 255 * qscale[d]] taken from
 * the data (per-dimension ranges keep precision where dimensions have very different
 * spreads, which embeddings do). A vector is stored as 8-bit codes, x[d] ~= qmin[d] +
 * qscale[d] * code[d]. The graph walk computes an asymmetric distance: the query stays
 * float and is pre-transformed once so that each code costs one multiply-add:
 *   L2:   sum_d ((q[d] - qmin[d]) - qscale[d] * c[d])^2
 *   dot:  <q, qmin> + sum_d (q[d] * qscale[d]) * c[d]
 * The ranges are fitted first on the first batch (or, for single inserts, a wide
 * provisional range around the first vector), re-fitted each time the index doubles
 * until it has seen QUANT_STABLE vectors, and again at compaction; values outside the
 * range are clamped, which only costs precision, since results are re-ranked on floats.
 */
#include "vector/vector_int.h"
#include "core/mk_error.h"

#include <math.h>
#include <stdlib.h>

int quant_alloc(mk_vector_index *ix)
{
    ix->qmin = calloc(ix->p.dim, sizeof(float));
    ix->qscale = calloc(ix->p.dim, sizeof(float));
    if (!ix->qmin || !ix->qscale)
        return MK_ENOMEM;
    return 0;
}

void quant_fit(mk_vector_index *ix, const float *vecs, size_t n, size_t stride)
{
    uint32_t dim = ix->p.dim;
    if (n == 0)
        return;
    for (uint32_t d = 0; d < dim; d++) {
        float lo = vecs[d], hi = vecs[d];
        for (size_t i = 1; i < n; i++) {
            float v = vecs[i * stride + d];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        if (n == 1) {
            /* One vector says nothing about spread: take a wide symmetric range so
             * later vectors are not all clamped before the first re-fit. */
            float a = 0;
            for (uint32_t e = 0; e < dim; e++)
                a = fabsf(vecs[e]) > a ? fabsf(vecs[e]) : a;
            lo = -2 * a;
            hi = 2 * a;
        }
        ix->qmin[d] = lo;
        ix->qscale[d] = hi > lo ? (hi - lo) / 255.0f : 0.0f;
    }
    ix->qfitted = true;
}

void quant_encode(const mk_vector_index *ix, const float *v, uint8_t *codes)
{
    for (uint32_t d = 0; d < ix->p.dim; d++) {
        float s = ix->qscale[d];
        float c = s > 0 ? (v[d] - ix->qmin[d]) / s : 0.0f;
        c = c < 0 ? 0 : (c > 255 ? 255 : c);
        codes[d] = (uint8_t)lrintf(c);
    }
}

float quant_prepare_query(const mk_vector_index *ix, const float *q, float *qout)
{
    uint32_t dim = ix->p.dim;
    if (ix->p.metric == MK_VECTOR_L2) {
        for (uint32_t d = 0; d < dim; d++)
            qout[d] = q[d] - ix->qmin[d];
        return 0.0f;
    }
    for (uint32_t d = 0; d < dim; d++)
        qout[d] = q[d] * ix->qscale[d];
    return ix->vk->dot(q, ix->qmin, dim);
}
