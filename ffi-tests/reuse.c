/* reuse.c: which blocks a thread gets back after freeing many of one size.
 *
 * A new thread allocates 300 blocks of 1 KiB, frees them in allocation
 * order, then allocates 10 more and counts how many are the blocks it freed
 * last, most recent first (block 299, 298, ...). hakmem's hot lists hand
 * the latest frees out again first, so by default all 10 are; with
 * HAKMEM_HOT_KB=0 a list holds a block or two before the rest goes back to
 * the spans, so few are.
 *
 * usage: reuse latest|bounded   (exit 1 if the count is not the one named)
 */
#include "common.h"

#define N 300
#define AGAIN 10

static int latest;

static void *run(void *arg)
{
    (void)arg;
    static unsigned char *p[N];
    unsigned char *q[AGAIN];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(1024);
        CHECK(p[i] != NULL);
        memset(p[i], i, 1024);
    }
    for (int i = 0; i < N; i++)
        free(p[i]);
    for (int k = 0; k < AGAIN; k++) {
        q[k] = malloc(1024);
        CHECK(q[k] != NULL);
        memset(q[k], k, 1024);
        latest += q[k] == p[N - 1 - k];
    }
    for (int k = 0; k < AGAIN; k++) {
        for (int b = 0; b < 1024; b++)
            CHECKF(q[k][b] == (unsigned char)k, "block %d byte %d", k, b);
        free(q[k]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    hk_start("reuse");
    int want_bounded = argc > 1 && strcmp(argv[1], "bounded") == 0;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, run, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    printf("reuse: %d of %d new blocks are the latest frees, most recent first\n", latest,
           AGAIN);
    if (want_bounded)
        CHECKF(latest < AGAIN / 2, "expected short hot lists, %d of the latest frees", latest);
    else
        CHECKF(latest == AGAIN, "expected the latest frees first, %d of %d", latest, AGAIN);
    return hk_finish();
}
