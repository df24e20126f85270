/* config.c: a tiny program that allocates and frees a little of every size
 * class. tests/config.rs runs it under LD_PRELOAD with good and bad HAKMEM_*
 * environment variables: the allocator must keep working either way, and say
 * (once, on stderr) which variable it ignored. This program itself writes
 * nothing to stderr unless a check fails.
 */
#include "common.h"

static void *thread_alloc(void *arg)
{
    size_t n = (size_t)(uintptr_t)arg;
    unsigned char *p = malloc(n);
    if (p)
        memset(p, 1, n);
    return p;
}

int main(void)
{
    hk_start("config");
    size_t sizes[] = {1, 16, 100, 1000, 5000, 40000, 300000, 3 << 20};
    enum { N = sizeof sizes / sizeof sizes[0] };
    for (int round = 0; round < 3; round++) {
        unsigned char *p[N];
        for (int i = 0; i < N; i++) {
            p[i] = malloc(sizes[i]);
            CHECKF(p[i] != NULL, "malloc(%zu)", sizes[i]);
            if (p[i])
                hk_fill(p[i], sizes[i], (uint64_t)i);
        }
        for (int i = 0; i < N; i++) {
            if (!p[i])
                continue;
            CHECK(hk_verify(p[i], sizes[i], (uint64_t)i) < 0);
            free(p[i]);
        }
    }
    /* a second thread, so per-thread state is set up under the config too */
    pthread_t t;
    void *res = NULL;
    CHECK(pthread_create(&t, NULL, thread_alloc, (void *)(uintptr_t)777) == 0);
    pthread_join(t, &res);
    CHECK(res != NULL);
    free(res);
    /* hk_finish() writes to stdout on success: stderr is reserved for the
     * allocator's messages */
    return hk_finish();
}
