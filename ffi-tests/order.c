/* order.c: in what order a fresh heap hands out blocks of one size.
 *
 * A new thread (so a new heap with fresh slabs) allocates 256 blocks of 64
 * bytes and counts the neighbours that follow in address order (block i+1 ==
 * block i + 64). Carving a fresh slab in order gives nearly all 255; secure
 * mode (HAKMEM_SECURE=1) shuffles each carved batch, which leaves few.
 *
 * usage: order ordered|random   (exit 1 if the order is not the one named)
 */
#include "common.h"

#define N 256

static int sequential;

static void *run(void *arg)
{
    (void)arg;
    static unsigned char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(64);
        CHECK(p[i] != NULL);
        memset(p[i], i, 64);
    }
    for (int i = 0; i + 1 < N; i++)
        sequential += p[i + 1] == p[i] + 64;
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < 64; k++)
            CHECKF(p[i][k] == (unsigned char)i, "block %d byte %d", i, k);
        free(p[i]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    hk_start("order");
    int want_random = argc > 1 && strcmp(argv[1], "random") == 0;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, run, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    printf("order: %d of %d blocks follow their predecessor in address order\n", sequential,
           N - 1);
    if (want_random)
        CHECKF(sequential < N / 4, "expected a shuffled order, %d sequential", sequential);
    else
        CHECKF(sequential > N * 3 / 4, "expected carving order, %d sequential", sequential);
    return hk_finish();
}
