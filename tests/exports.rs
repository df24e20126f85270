//! libhakmem.so must export the whole malloc family with glibc's names, so
//! that it replaces glibc's allocator completely under LD_PRELOAD or -lhakmem,
//! plus its own `hakmem_version`.
//!
//! Needs the release build: run `make test`, or `cargo build --release` first.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

const REQUIRED: &[&str] = &[
    "malloc",
    "free",
    "cfree",
    "calloc",
    "realloc",
    "reallocarray",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "malloc_usable_size",
    "__libc_malloc",
    "__libc_free",
    "__libc_calloc",
    "__libc_realloc",
    "__libc_memalign",
    "mallinfo",
    "mallinfo2",
    "malloc_trim",
    "malloc_stats",
    "mallopt",
    "hakmem_version",
];

/// Names of the defined dynamic symbols of `so`, without version suffixes.
fn defined_dynamic_symbols(so: &std::path::Path) -> BTreeSet<String> {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(so)
        .output()
        .unwrap_or_else(|e| panic!("cannot run nm (binutils) on {}: {e}", so.display()));
    assert!(
        out.status.success(),
        "nm -D --defined-only {} failed:\n{}",
        so.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            // "<address> <type> <name>[@[@]version]"
            let name = l.split_whitespace().nth(2)?;
            Some(name.split('@').next().unwrap().to_string())
        })
        .collect()
}

#[test]
fn exports_the_malloc_family() {
    let so = common::so_path();
    let syms = defined_dynamic_symbols(&so);
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|n| !syms.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "{} does not export: {}",
        so.display(),
        missing.join(", ")
    );
}

/// The exported allocation functions must be functions (nm type T/W/i), not
/// data or absolute symbols.
#[test]
fn exported_entry_points_are_functions() {
    let so = common::so_path();
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&so)
        .output()
        .expect("cannot run nm");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut wrong = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 {
            continue;
        }
        let name = f[2].split('@').next().unwrap();
        if REQUIRED.contains(&name) && !matches!(f[1], "T" | "t" | "W" | "w" | "i") {
            wrong.push(format!("{name} has type {}", f[1]));
        }
    }
    assert!(wrong.is_empty(), "{}: {}", so.display(), wrong.join(", "));
}

/// malloc and free start on a 64-byte boundary (`.cargo/config.toml` builds
/// every function so): their fast paths then sit at the same cache-line
/// offsets in every build, which is what makes two builds' timings
/// comparable (docs/DESIGN.md, "Code placement"). A RUSTFLAGS in the
/// environment replaces the config's flags and loses the alignment.
#[test]
fn malloc_and_free_are_cache_line_aligned() {
    let so = common::so_path();
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&so)
        .output()
        .expect("cannot run nm");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut seen = 0;
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 || !matches!(f[2].split('@').next().unwrap(), "malloc" | "free") {
            continue;
        }
        let addr = u64::from_str_radix(f[0], 16).expect("nm address");
        assert_eq!(addr % 64, 0, "{} at {addr:#x} in {}", f[2], so.display());
        seen += 1;
    }
    assert_eq!(seen, 2, "malloc and free in {}", so.display());
}
