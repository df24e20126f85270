/* churn.c: thread churn.
 *
 * Starts THREADS short-lived threads, two at a time. Each allocates a few
 * hundred blocks of mixed sizes, frees some of them, and hands a few to the
 * main thread, which verifies and frees them while the next pair runs; it
 * frees the rest itself before exiting. At the end prints VmRSS and VmHWM.
 *
 * usage: churn [threads (default 20000)] [rss-limit-MiB (default: none)]
 * With an RSS limit, exits 1 if VmRSS after the churn exceeds it (the
 * allocator must give back what exited threads cached).
 */
#include "common.h"

#define PER_THREAD 300
#define HANDOFF 8

struct job {
    pthread_t tid;
    int index;
    int nout;
    struct { unsigned char *p; size_t n; } out[HANDOFF];
};

/* Blocks are patterned at both ends only (at most 2 x 128 bytes): this test
 * is about thread start/exit, and full fills would dominate its run time. */
static void fill_ends(unsigned char *p, size_t n)
{
    uint64_t key = (uint64_t)(uintptr_t)p ^ n;
    if (n <= 256) {
        hk_fill(p, n, key);
    } else {
        hk_fill(p, 128, key);
        hk_fill(p + n - 128, 128, ~key);
    }
}

static long verify_ends(const unsigned char *p, size_t n)
{
    uint64_t key = (uint64_t)(uintptr_t)p ^ n;
    if (n <= 256)
        return hk_verify(p, n, key);
    long off = hk_verify(p, 128, key);
    if (off >= 0)
        return off;
    off = hk_verify(p + n - 128, 128, ~key);
    return off >= 0 ? (long)(n - 128) + off : -1;
}

static size_t churn_size(uint64_t *rs)
{
    uint64_t r = hk_rand(rs) % 100;
    if (r < 70)
        return hk_range(rs, 1, 256);
    if (r < 95)
        return hk_range(rs, 257, 8192);
    if (r < 99)
        return hk_range(rs, 8193, 128 * 1024);
    return hk_range(rs, 128 * 1024 + 1, 600 * 1024);
}

static void *churn_thread(void *arg)
{
    struct job *j = arg;
    uint64_t rs = hk_mix64((uint64_t)j->index * 7919 + 1) | 1;
    unsigned char *p[PER_THREAD];
    size_t n[PER_THREAD];
    int count = (int)hk_range(&rs, PER_THREAD / 2, PER_THREAD);
    for (int i = 0; i < count; i++) {
        n[i] = churn_size(&rs);
        p[i] = malloc(n[i]);
        CHECKF(p[i] != NULL, "malloc(%zu) in thread %d", n[i], j->index);
        if (p[i])
            fill_ends(p[i], n[i]);
        /* free some early, so the thread's caches see reuse */
        if (i % 4 == 3 && p[i - 2]) {
            CHECK(verify_ends(p[i - 2], n[i - 2]) < 0);
            free(p[i - 2]);
            p[i - 2] = NULL;
        }
    }
    j->nout = 0;
    for (int i = 0; i < count; i++) {
        if (!p[i])
            continue;
        long off = verify_ends(p[i], n[i]);
        CHECKF(off < 0, "thread %d: block %p (%zu bytes) corrupted at %ld", j->index,
               (void *)p[i], n[i], off);
        if (j->nout < HANDOFF && i % 11 == 0) {
            j->out[j->nout].p = p[i];
            j->out[j->nout].n = n[i];
            j->nout++;
        } else {
            free(p[i]);
        }
    }
    return NULL;
}

static void free_handoffs(struct job *j)
{
    for (int k = 0; k < j->nout; k++) {
        unsigned char *p = j->out[k].p;
        size_t n = j->out[k].n;
        long off = verify_ends(p, n);
        CHECKF(off < 0, "handed-off block %p (%zu bytes) from thread %d corrupted at %ld",
               (void *)p, n, j->index, off);
        free(p);
    }
    j->nout = 0;
}

int main(int argc, char **argv)
{
    hk_start("churn");
    long threads = argc > 1 ? atol(argv[1]) : 20000;
    long limit_mib = argc > 2 ? atol(argv[2]) : 0;
    static struct job jobs[2][2]; /* [generation parity][pair member] */
    double t0 = hk_now();
    long started = 0, failed_create = 0;
    int gen = 0;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (long i = 0; i < threads; i += 2, gen ^= 1) {
        struct job *pair = jobs[gen];
        int made[2] = {0, 0};
        for (int k = 0; k < 2 && i + k < threads; k++) {
            pair[k].index = (int)(i + k);
            pair[k].nout = 0;
            int rc = pthread_create(&pair[k].tid, &attr, churn_thread, &pair[k]);
            if (rc == 0) {
                made[k] = 1;
                started++;
            } else if (failed_create++ < 5) {
                fprintf(stderr, "FAIL pthread_create: %s\n", strerror(rc));
            }
        }
        /* while this pair runs, free what the previous pair handed over */
        free_handoffs(&jobs[gen ^ 1][0]);
        free_handoffs(&jobs[gen ^ 1][1]);
        for (int k = 0; k < 2; k++)
            if (made[k])
                pthread_join(pair[k].tid, NULL);
    }
    free_handoffs(&jobs[gen ^ 1][0]);
    free_handoffs(&jobs[gen ^ 1][1]);
    pthread_attr_destroy(&attr);
    CHECKF(failed_create == 0, "%ld pthread_create calls failed", failed_create);

    long rss = hk_status_kib("VmRSS"), hwm = hk_status_kib("VmHWM");
    printf("churn: %ld threads in %.2f s; VmRSS %ld KiB, VmHWM %ld KiB\n", started,
           hk_now() - t0, rss, hwm);
    CHECK(rss > 0 && hwm >= rss);
    if (limit_mib > 0)
        CHECKF(rss <= limit_mib * 1024, "VmRSS %ld KiB after %ld threads exceeds %ld MiB", rss,
               started, limit_mib);
    return hk_finish();
}
