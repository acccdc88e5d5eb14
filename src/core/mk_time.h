/* mk_time: clocks. Monotonic for durations, wall clock for records. */
#ifndef MK_TIME_H
#define MK_TIME_H

#include <stdint.h>
#include <time.h>

static inline uint64_t mk_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline uint64_t mk_now_ms(void) { return mk_now_us() / 1000u; }

/* Milliseconds since the Unix epoch. */
static inline int64_t mk_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
