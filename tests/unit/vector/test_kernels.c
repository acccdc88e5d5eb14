/* Distance kernels: every SIMD table this CPU runs agrees with a double-precision
 * reference (and so with the portable table) on random data of many lengths, odd ones
 * included; and the checksum is stable and sensitive. */
#include <criterion/criterion.h>

#include "vector/vector_int.h"
#include "vtest.h"

static const vk_table *tables[] = {&vk_portable, &vk_avx2, &vk_avx512};

static void check_close(double got, double want, double scale, const char *what, const char *tab,
                        size_t n)
{
    /* float accumulation in a different order: relative to the sum of |terms| */
    double tol = 1e-5 * scale + 1e-6;
    cr_assert(fabs(got - want) <= tol, "%s/%s n=%zu: got %.9g want %.9g (tol %.3g)", tab, what, n, got,
              want, tol);
}

Test(kernels, agree_on_random_data)
{
    vt_rng r = {12345};
    size_t lens[80];
    size_t nl = 0;
    for (size_t n = 1; n <= 67; n++)
        lens[nl++] = n;
    size_t extra[] = {96, 100, 127, 128, 129, 255, 384, 512, 768, 1000, 1023, 1536};
    for (size_t i = 0; i < sizeof extra / sizeof *extra; i++)
        lens[nl++] = extra[i];
    int ran = 0;
    for (size_t t = 0; t < 3; t++) {
        const vk_table *k = tables[t];
        if (!vk_supported(k))
            continue;
        ran++;
        for (size_t li = 0; li < nl; li++) {
            size_t n = lens[li];
            /* offset by one float so loads are unaligned, as they may be for callers */
            float *a = malloc((n + 1) * sizeof(float)), *b = malloc((n + 1) * sizeof(float));
            float *s = malloc(n * sizeof(float));
            uint8_t *c = malloc(n + 1);
            for (size_t i = 0; i < n; i++) {
                a[i + 1] = (float)(vt_unit(&r) * 2 - 1);
                b[i + 1] = (float)(vt_unit(&r) * 2 - 1);
                s[i] = (float)vt_unit(&r) * 0.01f;
                c[i + 1] = (uint8_t)(vt_next(&r) & 0xff);
            }
            double l2 = 0, dot = 0, sl2 = 0, sdot = 0, u8d = 0, u8l = 0, su8d = 0, su8l = 0;
            for (size_t i = 0; i < n; i++) {
                double d = (double)a[i + 1] - b[i + 1];
                l2 += d * d;
                sl2 += d * d;
                dot += (double)a[i + 1] * b[i + 1];
                sdot += fabs((double)a[i + 1] * b[i + 1]);
                u8d += (double)a[i + 1] * c[i + 1];
                su8d += fabs((double)a[i + 1] * c[i + 1]);
                double e = (double)a[i + 1] - (double)s[i] * c[i + 1];
                u8l += e * e;
                su8l += e * e;
            }
            check_close(k->l2sq(a + 1, b + 1, n), l2, sl2, "l2sq", k->name, n);
            check_close(k->dot(a + 1, b + 1, n), dot, sdot, "dot", k->name, n);
            check_close(k->u8dot(a + 1, c + 1, n), u8d, su8d, "u8dot", k->name, n);
            check_close(k->u8l2(a + 1, s, c + 1, n), u8l, su8l, "u8l2", k->name, n);
            free(a);
            free(b);
            free(s);
            free(c);
        }
    }
    cr_assert_geq(ran, 1);
}

Test(kernels, chosen_table_is_supported)
{
    const vk_table *t = vk_best();
    cr_assert(vk_supported(t));
    cr_assert_str_eq(mk_vector_simd_name(), t->name);
}

Test(kernels, hash_is_stable_and_sensitive)
{
    uint8_t buf[257];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    uint64_t h = mk_vector_hash64(buf, sizeof buf, 0);
    cr_assert_eq(h, mk_vector_hash64(buf, sizeof buf, 0));
    cr_assert_neq(h, mk_vector_hash64(buf, sizeof buf - 1, 0));
    cr_assert_neq(h, mk_vector_hash64(buf, sizeof buf, 1));
    /* every single-bit flip changes the hash */
    for (size_t i = 0; i < sizeof buf; i++)
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            cr_assert_neq(mk_vector_hash64(buf, sizeof buf, 0), h, "flip %zu/%d", i, bit);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    cr_assert_neq(mk_vector_hash64("", 0, 0), mk_vector_hash64("\0", 1, 0));
}
