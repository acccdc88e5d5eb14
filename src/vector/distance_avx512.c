/*
 * distance_avx512.c: AVX-512F distance kernels (16 floats per step; the tail is a
 * masked load, so odd lengths need no scalar loop). Per-function target attributes,
 * as in distance_avx2.c, keep the rest of the binary baseline x86-64.
 */
#include "vector/vector_int.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

AVX512 static inline __mmask16 tailmask(size_t left)
{
    return (__mmask16)((1u << left) - 1u);
}

AVX512 static float a5_l2sq(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
    }
    if (i < n) {
        __mmask16 m = tailmask(n - i);
        __m512 d0 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(d0, d0, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

AVX512 static float a5_dot(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = tailmask(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* 16 codes -> 16 floats; the masked variant reads only the bytes it may. */
AVX512 static inline __m512 load16u(const uint8_t *c)
{
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)c);
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b));
}

AVX512 static inline __m512 load16u_tail(const uint8_t *c, size_t left)
{
    uint8_t tmp[16] = {0};
    for (size_t j = 0; j < left; j++)
        tmp[j] = c[j];
    return load16u(tmp);
}

AVX512 static float a5_u8dot(const float *q, const uint8_t *c, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), load16u(c + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), load16u(c + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), load16u(c + i), s0);
    if (i < n) {
        __mmask16 m = tailmask(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), load16u_tail(c + i, n - i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

AVX512 static float a5_u8l2(const float *q, const float *sc, const uint8_t *c, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 d0 = _mm512_fnmadd_ps(_mm512_loadu_ps(sc + i), load16u(c + i), _mm512_loadu_ps(q + i));
        __m512 d1 = _mm512_fnmadd_ps(_mm512_loadu_ps(sc + i + 16), load16u(c + i + 16),
                                     _mm512_loadu_ps(q + i + 16));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 d0 = _mm512_fnmadd_ps(_mm512_loadu_ps(sc + i), load16u(c + i), _mm512_loadu_ps(q + i));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
    }
    if (i < n) {
        __mmask16 m = tailmask(n - i);
        __m512 d0 = _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(m, sc + i), load16u_tail(c + i, n - i),
                                     _mm512_maskz_loadu_ps(m, q + i));
        s1 = _mm512_fmadd_ps(d0, d0, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

const vk_table vk_avx512 = {"avx512", a5_l2sq, a5_dot, a5_u8dot, a5_u8l2};

#else
const vk_table vk_avx512 = {"avx512", 0, 0, 0, 0};
#endif
