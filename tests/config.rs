//! HAKMEM_* environment variables: a bad value must not break the program
//! (exit 0, allocation works) and must be reported in exactly one stderr line
//! that names hakmem and the variable; good values must be accepted silently.
//! `ffi-tests/config.c` allocates and frees a little of every size class and
//! writes nothing to stderr itself.
//!
//! Needs the release build: run `make test`, or `cargo build --release` first.

mod common;

use common::{command, run, Mode, TIMEOUT};

fn run_config(var: &str, value: &str) -> common::Outcome {
    let mut cmd = command("config", Mode::Preloaded);
    cmd.env(var, value);
    run(cmd, TIMEOUT)
}

fn check_rejected(var: &str, value: &str) {
    let o = run_config(var, value);
    assert!(
        o.success(),
        "{var}={value}: the program must still run normally:\n{}",
        o.report()
    );
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].contains("hakmem") && lines[0].contains(var),
        "{var}={value}: expected exactly one stderr line mentioning \"hakmem\" and \"{var}\", \
         got {} line(s):\n{}",
        lines.len(),
        o.report()
    );
}

fn check_accepted(var: &str, value: &str) {
    let o = run_config(var, value);
    assert!(
        o.success() && o.stderr.is_empty(),
        "{var}={value} is valid: expected exit 0 and an empty stderr:\n{}",
        o.report()
    );
}

macro_rules! rejected {
    ($($name:ident: $var:literal = $value:literal;)*) => {
        $(
            #[test]
            fn $name() {
                check_rejected($var, $value);
            }
        )*
    };
}

rejected! {
    max_cached_not_a_number: "HAKMEM_SUPERSLAB_MAX_CACHED" = "abc";
    max_cached_negative: "HAKMEM_SUPERSLAB_MAX_CACHED" = "-5";
    max_cached_overflows: "HAKMEM_SUPERSLAB_MAX_CACHED" = "99999999999999999999999";
    ttl_trailing_garbage: "HAKMEM_SUPERSLAB_TTL_SEC" = "1e9x";
    purge_delay_negative: "HAKMEM_PURGE_DELAY_MS" = "-1";
    smallmid_not_a_boolean: "HAKMEM_SMALLMID" = "2";
    prewarm_absurd: "HAKMEM_PREWARM_SUPERSLABS" = "100000000";
    secure_word: "HAKMEM_SECURE" = "yes";
    hot_kb_negative: "HAKMEM_HOT_KB" = "-1";
    hot_kb_absurd: "HAKMEM_HOT_KB" = "100000000";
}

#[test]
fn max_cached_valid() {
    check_accepted("HAKMEM_SUPERSLAB_MAX_CACHED", "16");
}

#[test]
fn hot_kb_valid() {
    check_accepted("HAKMEM_HOT_KB", "0");
}

#[test]
fn prewarm_valid() {
    check_accepted("HAKMEM_PREWARM_SUPERSLABS", "2");
}

/// With no HAKMEM_* variable at all, hakmem says nothing either.
#[test]
fn defaults_are_silent() {
    let o = run(command("config", Mode::Preloaded), TIMEOUT);
    assert!(
        o.success() && o.stderr.is_empty(),
        "expected exit 0 and an empty stderr:\n{}",
        o.report()
    );
}
