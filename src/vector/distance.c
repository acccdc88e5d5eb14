/*
 * distance.c: portable distance kernels and the run-time choice of the SIMD table.
 *
 * The portable kernels keep four independent accumulators so the compiler can overlap
 * the additions (a single accumulator serialises on the add latency) without needing
 * -ffast-math, which would change results across builds. The SIMD tables live in
 * distance_avx2.c and distance_avx512.c, compiled with per-function target attributes
 * so the binary still runs on CPUs without them; the choice is made once, here.
 */
#include "vector/vector_int.h"

#include <stdlib.h>
#include <string.h>

static float p_l2sq(const float *a, const float *b, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1];
        float d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
}

static float p_dot(const float *a, const float *b, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static float p_u8dot(const float *q, const uint8_t *c, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += q[i] * (float)c[i];
        s1 += q[i + 1] * (float)c[i + 1];
        s2 += q[i + 2] * (float)c[i + 2];
        s3 += q[i + 3] * (float)c[i + 3];
    }
    for (; i < n; i++)
        s0 += q[i] * (float)c[i];
    return (s0 + s1) + (s2 + s3);
}

static float p_u8l2(const float *q, const float *s, const uint8_t *c, size_t n)
{
    float s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        float d0 = q[i] - s[i] * (float)c[i];
        float d1 = q[i + 1] - s[i + 1] * (float)c[i + 1];
        s0 += d0 * d0;
        s1 += d1 * d1;
    }
    for (; i < n; i++) {
        float d = q[i] - s[i] * (float)c[i];
        s0 += d * d;
    }
    return s0 + s1;
}

const vk_table vk_portable = {"portable", p_l2sq, p_dot, p_u8dot, p_u8l2};

bool vk_supported(const vk_table *t)
{
    if (t == &vk_portable)
        return true;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (t == &vk_avx2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (t == &vk_avx512)
        return __builtin_cpu_supports("avx512f");
#endif
    return false;
}

static const vk_table *choose(void)
{
    const vk_table *order[] = {&vk_avx512, &vk_avx2, &vk_portable};
    const char *want = getenv("MAYAK_VECTOR_SIMD");
    size_t start = 0;
    if (want) {
        for (size_t i = 0; i < 3; i++)
            if (strcmp(want, order[i]->name) == 0)
                start = i;
    }
    for (size_t i = start; i < 3; i++)
        if (vk_supported(order[i]))
            return order[i];
    return &vk_portable;
}

static const vk_table *best;
static pthread_once_t best_once = PTHREAD_ONCE_INIT;

static void init_best(void) { best = choose(); }

const vk_table *vk_best(void)
{
    pthread_once(&best_once, init_best);
    return best;
}

const char *mk_vector_simd_name(void) { return vk_best()->name; }
