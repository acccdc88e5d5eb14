/*
 * vecgen: deterministic clustered synthetic vectors for the ANN benchmark.
 *
 *   vecgen N DIM CLUSTERS SEED base.mkvf queries.mkvf NQ
 *
 * Cluster centres are N(0, 1) per dimension; each point is a centre chosen uniformly
 * plus N(0, SPREAD^2) noise (SPREAD 0.6: neighbouring clusters overlap, which makes the
 * search neither trivial nor hopeless). Queries are fresh points from the same
 * mixture, not copies of base points. The generator is splitmix64 + Box-Muller, so the
 * same arguments give the same bytes on any machine.
 */
#include "vecdata.h"

#include <math.h>

#define SPREAD 0.6

static uint64_t st;

static uint64_t next64(void)
{
    uint64_t z = (st += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double unit(void) { return ((double)(next64() >> 11) + 0.5) / 9007199254740992.0; }

static double gauss(void)
{
    return sqrt(-2.0 * log(unit())) * cos(6.283185307179586 * unit());
}

static void fill(float *out, size_t n, uint32_t dim, const float *centres, uint32_t nc)
{
    for (size_t i = 0; i < n; i++) {
        const float *c = centres + (size_t)(next64() % nc) * dim;
        for (uint32_t d = 0; d < dim; d++)
            out[i * dim + d] = (float)(c[d] + SPREAD * gauss());
    }
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: vecgen N DIM CLUSTERS SEED base.mkvf queries.mkvf NQ\n");
        return 2;
    }
    size_t n = strtoull(argv[1], NULL, 10), nq = strtoull(argv[7], NULL, 10);
    uint32_t dim = (uint32_t)strtoul(argv[2], NULL, 10), nc = (uint32_t)strtoul(argv[3], NULL, 10);
    st = strtoull(argv[4], NULL, 10);
    if (!n || !dim || !nc || !nq) {
        fprintf(stderr, "vecgen: arguments must be positive\n");
        return 2;
    }
    float *centres = malloc((size_t)nc * dim * sizeof(float));
    float *base = malloc(n * dim * sizeof(float));
    float *q = malloc(nq * dim * sizeof(float));
    if (!centres || !base || !q)
        return 1;
    for (size_t i = 0; i < (size_t)nc * dim; i++)
        centres[i] = (float)gauss();
    fill(base, n, dim, centres, nc);
    fill(q, nq, dim, centres, nc);
    if (vd_write(argv[5], "MKVF", (uint32_t)n, dim, base, 4) ||
        vd_write(argv[6], "MKVF", (uint32_t)nq, dim, q, 4)) {
        fprintf(stderr, "vecgen: write failed\n");
        return 1;
    }
    return 0;
}
