//! Runs every C test program of `ffi-tests/` against libhakmem.so in two ways:
//! linked with `-lhakmem` (`*_linked`) and as the plain executable under
//! `LD_PRELOAD` (`*_preloaded`). Each program exits 0 only when all its checks
//! pass; with `EXPECT_HAKMEM=1` (set here) it also fails unless malloc & co.
//! really resolve to hakmem, so a run cannot silently test glibc instead.
//!
//! Needs the release build: run `make test`, or `cargo build --release` before
//! `cargo test --release` (`cargo test` does not rebuild libhakmem.so or the C
//! programs in target/release/ffi/). Set `HAKMEM_SO` to test another build.
//!
//! The misuse program has its own harness (tests/misuse.rs), as do the
//! HAKMEM_* configuration variables (tests/config.rs).

mod common;

use common::{command, run, run_ok, Mode, TIMEOUT};

/// One test per mode for program `$prog` run with `$args`.
macro_rules! both_modes {
    ($(#[$attr:meta])* $prog:literal [$($arg:literal),*] => $linked:ident, $preloaded:ident) => {
        $(#[$attr])*
        #[test]
        fn $linked() {
            run_ok($prog, Mode::Linked, &[$($arg),*]);
        }

        $(#[$attr])*
        #[test]
        fn $preloaded() {
            run_ok($prog, Mode::Preloaded, &[$($arg),*]);
        }
    };
}

// Every entry point and its edge cases (single-threaded, < 1 s).
both_modes!("api" [] => api_linked, api_preloaded);

// 4 threads, 2 s: random sizes, patterns checked, cross-thread frees.
both_modes!("threads" ["2", "4"] => threads_linked, threads_preloaded);

// 20,000 short threads, two at a time, handing blocks to the main thread;
// afterwards RSS must be under 16 MiB (about 10 MiB: an exiting thread's
// empty spans of big blocks are purged, the rest is reused by the next one).
both_modes!("churn" ["20000", "16"] => churn_linked, churn_preloaded);

// 3000 rounds: a thread fills 2000 blocks and exits; a new thread adopts its
// pooled heap and allocates from it while another, on the exited thread's
// recycled TCB, frees the blocks into it; every block's pattern is checked.
// With the owner copies left uncleared at thread exit (a bug this catches as
// a crash or a damaged block in about 2 runs of 5 per mode), those frees
// would race with the new owner's allocations. The heap unit tests check the
// clearing itself exactly.
both_modes!("handoff" ["3000"] => handoff_linked, handoff_preloaded);

// 200 forks while 3 threads allocate; children allocate and must exit 0.
both_modes!("forking" ["200"] => forking_linked, forking_preloaded);

// RLIMIT_AS: NULL + ENOMEM at the limit, recovery after freeing.
both_modes!("oom" [] => oom_linked, oom_preloaded);

// 4 threads, 3000 steps each, each with its own large blocks (300 KiB -
// 8 MiB): alloc, calloc, aligned, realloc up, down and moved, free; patterns
// and usable sizes checked. Shared state is the large-block cache and the
// registry; a registry update made after an unmap (a bug this caught: within
// a second, another thread's live block read as "not allocated by hakmem")
// fails it.
both_modes!("large_threads" ["3000", "4"] => large_threads_linked, large_threads_preloaded);

// Randomised differential test, 4 threads for 3 s, random seed (printed).
both_modes!("difftest" ["0", "3", "4"] => difftest_linked, difftest_preloaded);

// Allocates and frees a little of every size class (no HAKMEM_* set).
both_modes!("config" [] => config_linked, config_preloaded);

// After 512 MiB of mixed blocks are freed and the program idles for 1 s, RSS
// must be under 10% of the peak.
both_modes!("rss_return" ["512", "1"] => rss_return_linked, rss_return_preloaded);

// ---- HAKMEM_SECURE=1: the same programs through the checked slow paths ----

/// Run program `name` with one HAKMEM_* variable set; it must pass.
fn run_with(var: &str, value: &str, name: &str, mode: Mode, args: &[&str]) {
    let mut cmd = command(name, mode);
    cmd.args(args).env(var, value);
    let o = run(cmd, TIMEOUT);
    assert!(
        o.success(),
        "{name} ({var}={value}) failed:\n{}",
        o.report()
    );
    print!("{}", o.stdout);
}

fn run_secure(name: &str, mode: Mode, args: &[&str]) {
    run_with("HAKMEM_SECURE", "1", name, mode, args);
}

#[test]
fn secure_api() {
    run_secure("api", Mode::Preloaded, &[]);
}

#[test]
fn secure_threads() {
    run_secure("threads", Mode::Preloaded, &["2", "4"]);
}

#[test]
fn secure_difftest() {
    run_secure("difftest", Mode::Linked, &["0", "2", "4"]);
}

// Guard pages end every large mapping: realloc lifts and moves them.
#[test]
fn secure_large_threads() {
    run_secure("large_threads", Mode::Preloaded, &["2000", "4"]);
}

#[test]
fn secure_forking() {
    run_secure("forking", Mode::Preloaded, &["50"]);
}

// ---- Hot lists: the latest frees come back first; HAKMEM_HOT_KB bounds
// them (0: lists of 2 blocks, checked and flushed on almost every free;
// 65536: 1024 blocks per class) ----

#[test]
fn the_latest_frees_come_back_first() {
    run_ok("reuse", Mode::Preloaded, &["latest"]);
}

#[test]
fn smallest_hot_lists_hold_a_block_or_two() {
    run_with("HAKMEM_HOT_KB", "0", "reuse", Mode::Linked, &["bounded"]);
}

#[test]
fn smallest_hot_lists_threads() {
    run_with(
        "HAKMEM_HOT_KB",
        "0",
        "threads",
        Mode::Preloaded,
        &["2", "4"],
    );
}

#[test]
fn smallest_hot_lists_difftest() {
    run_with(
        "HAKMEM_HOT_KB",
        "0",
        "difftest",
        Mode::Linked,
        &["0", "2", "4"],
    );
}

#[test]
fn largest_hot_lists_difftest() {
    run_with(
        "HAKMEM_HOT_KB",
        "65536",
        "difftest",
        Mode::Preloaded,
        &["0", "2", "4"],
    );
}

#[test]
fn smallest_hot_lists_rss_return() {
    run_with(
        "HAKMEM_HOT_KB",
        "0",
        "rss_return",
        Mode::Preloaded,
        &["256", "1"],
    );
}

/// Secure mode shuffles the blocks of a freshly carved slab; the default
/// hands them out in address order.
#[test]
fn secure_allocation_order_is_random() {
    run_secure("order", Mode::Preloaded, &["random"]);
}

#[test]
fn default_allocation_order_is_sequential() {
    run_ok("order", Mode::Preloaded, &["ordered"]);
}

/// The EXPECT_HAKMEM=1 guard that every test above relies on must reject a
/// run where malloc is not hakmem's (here: the plain executable, no preload).
#[test]
fn guard_rejects_runs_without_hakmem() {
    let mut cmd = command("config", Mode::Preloaded);
    cmd.env_remove("LD_PRELOAD");
    let o = run(cmd, TIMEOUT);
    assert!(
        !o.success() && o.stderr.contains("EXPECT_HAKMEM=1"),
        "without LD_PRELOAD the program should have refused to run:\n{}",
        o.report()
    );
}
