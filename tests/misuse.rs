//! Heap misuse must be caught: `ffi-tests/misuse.c CASE` commits one misuse
//! (after printing, with `%p`, the pointer it will pass) and hakmem must abort
//! with SIGABRT (not crash with SIGSEGV, not carry on) after writing one line
//! to stderr that names hakmem, the operation, that pointer and the reason,
//! e.g. `hakmem: free(0x7f...): double free of a 64-byte block`.
//!
//! Needs the release build: run `make test`, or `cargo build --release` first.

mod common;

use common::{command, run, signal_name, Mode, TIMEOUT};

const SIGABRT: i32 = 6;

fn check_misuse(case: &str, mode: Mode, op: &str, reason: &str) {
    check_misuse_env(case, mode, &[], op, reason);
}

/// Run misuse CASE with the extra environment `env`; return the outcome and
/// the pointer the program announced.
fn run_case(case: &str, mode: Mode, env: &[(&str, &str)]) -> (common::Outcome, String) {
    let mut cmd = command("misuse", mode);
    cmd.arg(case);
    cmd.envs(env.iter().copied());
    let o = run(cmd, TIMEOUT);
    // The pointer the program announced: the last line of its stdout.
    let ptr = o
        .stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("0x"))
        .unwrap_or_else(|| {
            panic!(
                "misuse {case}: no pointer printed (setup failed?):\n{}",
                o.report()
            )
        })
        .trim()
        .to_string();
    (o, ptr)
}

fn check_misuse_env(case: &str, mode: Mode, env: &[(&str, &str)], op: &str, reason: &str) {
    let (o, ptr) = run_case(case, mode, env);
    assert!(
        !o.stdout.contains("misuse not detected"),
        "misuse {case} was not detected (program carried on):\n{}",
        o.report()
    );
    let sig = o.signal();
    assert!(
        sig == Some(SIGABRT),
        "misuse {case}: expected death by SIGABRT, got {}:\n{}",
        match sig {
            Some(s) => format!("signal {s} ({})", signal_name(s)),
            None => "no signal".to_string(),
        },
        o.report()
    );
    let matching: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| {
            l.contains("hakmem") && l.contains(op) && l.contains(&ptr) && l.contains(reason)
        })
        .collect();
    assert!(
        matching.len() == 1,
        "misuse {case}: expected exactly one stderr line containing \"hakmem\", \"{op}\", \
         \"{ptr}\" and \"{reason}\", found {}:\n{}",
        matching.len(),
        o.report()
    );
}

macro_rules! misuse_tests {
    ($($case:literal, $op:literal, $reason:literal => $preloaded:ident, $linked:ident;)*) => {
        $(
            #[test]
            fn $preloaded() {
                check_misuse($case, Mode::Preloaded, $op, $reason);
            }

            #[test]
            fn $linked() {
                check_misuse($case, Mode::Linked, $op, $reason);
            }
        )*
    };
}

misuse_tests! {
    "double-free-small", "free", "double free" => double_free_small, double_free_small_linked;
    "double-free-mid", "free", "double free" => double_free_mid, double_free_mid_linked;
    "double-free-large", "free", "double free" => double_free_large, double_free_large_linked;
    "double-free-flushed", "free", "double free"
        => double_free_flushed, double_free_flushed_linked;
    "double-free-remote", "free", "double free" => double_free_remote, double_free_remote_linked;
    "double-free-adopted", "free", "double free"
        => double_free_adopted, double_free_adopted_linked;
    "interior-free", "free", "middle of a block" => interior_free, interior_free_linked;
    "interior-free-large", "free", "middle of a block"
        => interior_free_large, interior_free_large_linked;
    "interior-free-odd", "free", "middle of a block" => interior_free_odd, interior_free_odd_linked;
    "interior-free-mid", "free", "middle of a block" => interior_free_mid, interior_free_mid_linked;
    "stack-free", "free", "not allocated by hakmem" => stack_free, stack_free_linked;
    "wild-free", "free", "not allocated by hakmem" => wild_free, wild_free_linked;
    "realloc-after-free", "realloc", "already freed"
        => realloc_after_free, realloc_after_free_linked;
    "realloc-interior", "realloc", "middle of a block" => realloc_interior, realloc_interior_linked;
}

// ---- HAKMEM_SECURE=1 ----

const SECURE: &[(&str, &str)] = &[("HAKMEM_SECURE", "1")];

/// Secure mode takes other paths (no fast paths, encoded free lists): every
/// default-mode case must still be caught the same way.
#[test]
fn secure_mode_catches_every_default_case() {
    for (case, op, reason) in [
        ("double-free-small", "free", "double free"),
        ("double-free-mid", "free", "double free"),
        ("double-free-large", "free", "double free"),
        ("double-free-flushed", "free", "double free"),
        ("double-free-remote", "free", "double free"),
        ("double-free-adopted", "free", "double free"),
        ("interior-free", "free", "middle of a block"),
        ("interior-free-large", "free", "middle of a block"),
        ("interior-free-odd", "free", "middle of a block"),
        ("interior-free-mid", "free", "middle of a block"),
        ("stack-free", "free", "not allocated by hakmem"),
        ("wild-free", "free", "not allocated by hakmem"),
        ("realloc-after-free", "realloc", "already freed"),
        ("realloc-interior", "realloc", "middle of a block"),
    ] {
        check_misuse_env(case, Mode::Preloaded, SECURE, op, reason);
    }
}

/// With hot lists so long that the mid classes' would be uncounted, their
/// frees still take the counted path (the fast path's block-start test only
/// fits the Tiny classes' spans): misuse of mid blocks is caught as ever.
#[test]
fn long_hot_lists_still_catch_mid_misuse() {
    let env = &[("HAKMEM_HOT_KB", "65536")];
    for (case, reason) in [
        ("double-free-mid", "double free"),
        ("interior-free-mid", "middle of a block"),
        ("interior-free-odd", "middle of a block"),
        ("double-free-small", "double free"),
    ] {
        check_misuse_env(case, Mode::Preloaded, env, "free", reason);
    }
}

/// A write into a freed block's free-list link is reported by the malloc
/// that meets the block, naming that block.
#[test]
fn secure_mode_reports_a_write_after_free() {
    for mode in [Mode::Preloaded, Mode::Linked] {
        check_misuse_env("write-after-free", mode, SECURE, "malloc", "overwritten");
    }
}

const SIGSEGV: i32 = 11;

/// The guard pages of secure mode: one byte past a large block's usable size
/// and the last page of a SuperSlab fault at once (SIGSEGV at the announced
/// address; in the default mode those bytes may be ordinary memory).
#[test]
fn secure_mode_guard_pages_fault() {
    for case in ["overflow-large", "overflow-superslab"] {
        let (o, _ptr) = run_case(case, Mode::Preloaded, SECURE);
        assert_eq!(
            o.signal(),
            Some(SIGSEGV),
            "secure {case}: expected SIGSEGV from the guard page:\n{}",
            o.report()
        );
    }
}

/// The list above covers every case the program knows.
#[test]
fn every_case_is_tested() {
    let o = run(
        {
            let mut c = std::process::Command::new(common::plain_exe("misuse"));
            c.arg("--list");
            c
        },
        TIMEOUT,
    );
    assert!(o.success(), "{}", o.report());
    let src = include_str!("misuse.rs");
    for case in o.stdout.lines() {
        assert!(
            src.contains(&format!("\"{case}\"")),
            "misuse case {case} has no test in tests/misuse.rs"
        );
    }
}
