/* sizes: tight malloc/free loops, one size class at a time.
 *
 *   sizes [mode=pair] [pairs=5000000] [sizes=16,32,64,128,256,512,1024]
 *
 * mode pair:  `pairs` times { p = malloc(s); write 1 byte; free(p); }
 * mode batch: pairs/100 times { malloc 100 blocks of size s; free them in
 *             allocation order }
 * for each size s in the list, in turn, on one thread. ops = malloc/free
 * pairs; ops_per_sec is over all sizes, and `sub_<s>=<pairs/s>` gives each
 * size's own rate (scripts/bench shows them as separate rows).
 */
#include "bench.h"

#define BATCH 100

static double run_pair(size_t s, long pairs)
{
    double t0 = bench_now();
    for (long i = 0; i < pairs; i++) {
        char *p = malloc(s);
        if (!p)
            bench_oom("malloc", s);
        p[0] = (char)i;
        bench_consume(p);
        free(p);
    }
    return bench_now() - t0;
}

static double run_batch(size_t s, long pairs)
{
    char *b[BATCH];
    long rounds = pairs / BATCH;
    double t0 = bench_now();
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < BATCH; i++) {
            b[i] = malloc(s);
            if (!b[i])
                bench_oom("malloc", s);
            b[i][0] = (char)i;
        }
        bench_consume(b[r % BATCH]);
        for (int i = 0; i < BATCH; i++)
            free(b[i]);
    }
    return bench_now() - t0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "pair";
    long pairs = bench_arg_long(argc, argv, 2, 5000000);
    const char *list = argc > 3 ? argv[3] : "16,32,64,128,256,512,1024";
    int batch;
    if (strcmp(mode, "pair") == 0)
        batch = 0;
    else if (strcmp(mode, "batch") == 0)
        batch = 1;
    else {
        fprintf(stderr, "usage: %s [pair|batch] [pairs] [size,size,...]\n", argv[0]);
        return 2;
    }
    if (pairs < BATCH) pairs = BATCH;
    if (batch)
        pairs = pairs / BATCH * BATCH;

    char extra[1024];
    int off = snprintf(extra, sizeof extra, "mode=%s", mode);
    double total_t = 0, total_ops = 0;
    char *copy = strdup(list);
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
        long s = strtol(tok, NULL, 0);
        if (s < 1) {
            fprintf(stderr, "%s: bad size '%s'\n", argv[0], tok);
            return 2;
        }
        /* Warm the size class up before timing it. */
        (batch ? run_batch : run_pair)((size_t)s, BATCH * 10);
        double t = (batch ? run_batch : run_pair)((size_t)s, pairs);
        total_t += t;
        total_ops += (double)pairs;
        if (off < (int)sizeof extra - 40)
            off += snprintf(extra + off, sizeof extra - (size_t)off, " sub_%ld=%.0f", s, t > 0 ? pairs / t : 0);
    }
    free(copy);
    bench_result(batch ? "sizes_batch" : "sizes", extra, total_ops, total_t);
    return 0;
}
