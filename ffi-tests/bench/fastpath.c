/* fastpath: the smallest malloc/free loop, for instruction counting.
 *
 *   fastpath SIZE ITERATIONS
 *
 * Runs ITERATIONS times { p = malloc(SIZE); sink = p; free(p); } with a
 * volatile sink. scripts/count-instructions runs it under callgrind with two
 * iteration counts and divides the difference in instructions by the
 * difference in iterations, which cancels start-up cost.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void *volatile sink;

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SIZE ITERATIONS\n", argv[0]);
        return 2;
    }
    size_t size = strtoul(argv[1], NULL, 0);
    long n = strtol(argv[2], NULL, 0);
    /* One warm-up pair so the first-call set-up is in both runs alike. */
    void *p = malloc(size);
    sink = p;
    free(p);
    for (long i = 0; i < n; i++) {
        p = malloc(size);
        sink = p;
        free(p);
    }
    printf("RESULT name=fastpath size=%zu iterations=%ld\n", size, n);
    return 0;
}
