/* realloc: many strings grown by realloc in small steps.
 *
 *   realloc [strings=16] [final_kib=1024] [max_step=64] [cycles=8]
 *
 * `strings` buffers start at 1 byte; in round-robin order each is grown by a
 * random 1..max_step bytes with realloc (the new bytes are written, the old
 * contents checked at the end) until every one reaches final_kib KiB. The
 * interleaving keeps neighbours from growing in place for free. The whole
 * thing is repeated `cycles` times (strings freed and restarted at 1 byte).
 * Throughput = realloc calls per second.
 */
#include "bench.h"

int main(int argc, char **argv)
{
    long strings = bench_arg_long(argc, argv, 1, 16);
    long final_kib = bench_arg_long(argc, argv, 2, 1024);
    long max_step = bench_arg_long(argc, argv, 3, 64);
    long cycles = bench_arg_long(argc, argv, 4, 8);
    if (strings < 1 || final_kib < 1 || max_step < 1 || cycles < 1) {
        fprintf(stderr, "usage: %s [strings] [final_kib] [max_step] [cycles]\n", argv[0]);
        return 2;
    }
    size_t final = (size_t)final_kib * 1024;
    char **s = calloc((size_t)strings, sizeof(char *));
    size_t *len = calloc((size_t)strings, sizeof(size_t));
    bench_rng r;
    bench_rng_seed(&r, 0x4EA11);
    double calls = 0;
    double t0 = bench_now();
    for (long c = 0; c < cycles; c++) {
        for (long i = 0; i < strings; i++) {
            s[i] = malloc(1);
            if (!s[i])
                bench_oom("malloc", 1);
            s[i][0] = 'a';
            len[i] = 1;
        }
        long done = 0;
        while (done < strings) {
            done = 0;
            for (long i = 0; i < strings; i++) {
                if (len[i] >= final) {
                    done++;
                    continue;
                }
                size_t n = len[i] + bench_rng_range(&r, 1, (size_t)max_step);
                char *p = realloc(s[i], n);
                if (!p)
                    bench_oom("realloc", n);
                for (size_t k = len[i]; k < n; k++)
                    p[k] = (char)('a' + (k % 26));
                s[i] = p;
                len[i] = n;
                calls++;
            }
        }
        for (long i = 0; i < strings; i++) {
            for (size_t k = 0; k < len[i]; k += 4093)
                if (s[i][k] != (char)('a' + (k % 26))) {
                    fprintf(stderr, "realloc: contents lost in string %ld at %zu\n", i, k);
                    return 1;
                }
            free(s[i]);
        }
    }
    double t = bench_now() - t0;
    free(s);
    free(len);
    char extra[160];
    snprintf(extra, sizeof extra, "strings=%ld final_kib=%ld max_step=%ld cycles=%ld", strings, final_kib, max_step, cycles);
    bench_result("realloc", extra, calls, t);
    return 0;
}
