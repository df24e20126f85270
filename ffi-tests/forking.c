/* forking.c: fork() while other threads allocate.
 *
 * BG background threads malloc/free in a loop while the main thread forks
 * FORKS times. Each child allocates and frees a few hundred blocks of mixed
 * sizes (including a large one), some children also from a new thread, and
 * _exit(0)s. The parent waits for each child with a timeout (a child that
 * deadlocks in the allocator is killed and reported, not waited for forever)
 * and requires exit status 0.
 *
 * usage: forking [forks (default 200)]
 */
#include "common.h"

#include <signal.h>
#include <sys/wait.h>

#define BG 3
#define CHILD_TIMEOUT 10 /* seconds */

static atomic_int stop_bg;
static atomic_long bg_ops;

static void *background(void *arg)
{
    uint64_t rs = hk_mix64((uint64_t)(intptr_t)arg + 99) | 1;
    unsigned char *slot[64] = {0};
    size_t len[64] = {0};
    while (!atomic_load_explicit(&stop_bg, memory_order_relaxed)) {
        int i = (int)(hk_rand(&rs) % 64);
        if (slot[i]) {
            long off = hk_verify(slot[i], len[i], (uint64_t)(uintptr_t)slot[i]);
            CHECKF(off < 0, "background block %p corrupted at %ld", (void *)slot[i], off);
            free(slot[i]);
            slot[i] = NULL;
        } else {
            uint64_t r = hk_rand(&rs) % 100;
            len[i] = r < 80 ? hk_range(&rs, 1, 512) : r < 98 ? hk_range(&rs, 513, 65536)
                                                              : hk_range(&rs, 65537, 2 << 20);
            slot[i] = malloc(len[i]);
            CHECK(slot[i] != NULL);
            if (slot[i]) {
                /* keep big fills cheap: only pattern the first 4 KiB */
                if (len[i] > 4096)
                    len[i] = 4096;
                hk_fill(slot[i], len[i], (uint64_t)(uintptr_t)slot[i]);
            }
        }
        atomic_fetch_add_explicit(&bg_ops, 1, memory_order_relaxed);
    }
    for (int i = 0; i < 64; i++)
        free(slot[i]);
    return NULL;
}

/* Runs in the child: exit code 0 when everything worked. */
static int child_work(uint64_t seed)
{
    uint64_t rs = hk_mix64(seed) | 1;
    enum { N = 300 };
    unsigned char *p[N];
    size_t n[N];
    for (int i = 0; i < N; i++) {
        uint64_t r = hk_rand(&rs) % 100;
        n[i] = i == 0 ? (size_t)6 << 20 /* a large one */
               : r < 75 ? hk_range(&rs, 1, 512)
               : r < 97 ? hk_range(&rs, 513, 32768)
                        : hk_range(&rs, 32769, 1 << 20);
        p[i] = malloc(n[i]);
        if (!p[i])
            return 3;
        hk_fill(p[i], n[i] > 8192 ? 8192 : n[i], (uint64_t)i ^ seed);
    }
    for (int i = 0; i < N; i++) {
        if (hk_verify(p[i], n[i] > 8192 ? 8192 : n[i], (uint64_t)i ^ seed) >= 0)
            return 4;
        free(p[i]);
    }
    void *c = calloc(1000, 10);
    if (!c || hk_first_nonzero(c, 10000) >= 0)
        return 5;
    void *r = realloc(c, 300000);
    if (!r)
        return 6;
    free(r);
    return 0;
}

static void *child_thread(void *arg)
{
    return (void *)(intptr_t)child_work((uint64_t)(uintptr_t)arg);
}

static volatile sig_atomic_t alarmed;
static void on_alarm(int sig)
{
    (void)sig;
    alarmed = 1;
}

int main(int argc, char **argv)
{
    hk_start("forking");
    int forks = argc > 1 ? atoi(argv[1]) : 200;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: waitpid returns EINTR */
    sigaction(SIGALRM, &sa, NULL);

    /* background threads block SIGALRM so that it interrupts the main
     * thread's waitpid() */
    sigset_t alrm, old;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alrm, &old);
    pthread_t bg[BG];
    for (int i = 0; i < BG; i++)
        CHECK(pthread_create(&bg[i], NULL, background, (void *)(intptr_t)i) == 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    int ok = 0, bad = 0, hung = 0;
    double t0 = hk_now();
    for (int f = 0; f < forks; f++) {
        /* let the background threads get going between forks */
        void *tmp = malloc(100 + (size_t)f);
        free(tmp);
        pid_t pid = fork();
        if (pid < 0) {
            CHECKF(pid >= 0, "fork #%d failed: %s", f, strerror(errno));
            break;
        }
        if (pid == 0) {
            alarm(CHILD_TIMEOUT); /* default action kills a hung child */
            int rc = child_work((uint64_t)f * 1000003);
            if (rc == 0 && f % 10 == 0) {
                /* a new thread in the child must be able to allocate too */
                pthread_t t;
                void *res = (void *)1;
                if (pthread_create(&t, NULL, child_thread, (void *)(uintptr_t)f) != 0)
                    _exit(7);
                pthread_join(t, &res);
                rc = (int)(intptr_t)res;
            }
            _exit(rc);
        }
        alarmed = 0;
        alarm(CHILD_TIMEOUT + 2);
        int status = 0;
        pid_t w;
        while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR && !alarmed)
            ;
        alarm(0);
        if (w != pid) {
            hung++;
            CHECKF(0, "child %d (fork #%d) did not finish within %d s: deadlocked after fork?",
                   (int)pid, f, CHILD_TIMEOUT + 2);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            continue;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            ok++;
        } else {
            bad++;
            if (WIFSIGNALED(status))
                CHECKF(0, "child of fork #%d killed by signal %d%s", f, WTERMSIG(status),
                       WTERMSIG(status) == SIGALRM ? " (timeout: deadlock after fork?)" : "");
            else
                CHECKF(0, "child of fork #%d exited with %d", f, WEXITSTATUS(status));
        }
    }
    atomic_store(&stop_bg, 1);
    for (int i = 0; i < BG; i++)
        pthread_join(bg[i], NULL);
    printf("forking: %d children ok, %d failed, %d hung; %ld background ops; %.2f s\n", ok, bad,
           hung, atomic_load(&bg_ops), hk_now() - t0);
    CHECK(ok == forks);
    return hk_finish();
}
