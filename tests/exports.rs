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

/// The defined dynamic symbols of `so` (`nm -D --defined-only`): address,
/// nm type letter and name without its version suffix.
fn nm_defined(so: &std::path::Path) -> Vec<(u64, String, String)> {
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
            let f: Vec<&str> = l.split_whitespace().collect();
            let name = f.get(2)?.split('@').next().unwrap().to_string();
            let addr = u64::from_str_radix(f[0], 16).ok()?;
            Some((addr, f[1].to_string(), name))
        })
        .collect()
}

/// Names of the defined dynamic symbols of `so`.
fn defined_dynamic_symbols(so: &std::path::Path) -> BTreeSet<String> {
    nm_defined(so).into_iter().map(|(_, _, n)| n).collect()
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
    let wrong: Vec<String> = nm_defined(&so)
        .into_iter()
        .filter(|(_, ty, name)| {
            REQUIRED.contains(&name.as_str()) && !matches!(ty.as_str(), "T" | "t" | "W" | "w" | "i")
        })
        .map(|(_, ty, name)| format!("{name} has type {ty}"))
        .collect();
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
    let entries: Vec<(u64, String)> = nm_defined(&so)
        .into_iter()
        .filter(|(_, _, name)| name == "malloc" || name == "free")
        .map(|(addr, _, name)| (addr, name))
        .collect();
    assert_eq!(entries.len(), 2, "malloc and free in {}", so.display());
    for (addr, name) in entries {
        assert_eq!(addr % 64, 0, "{name} at {addr:#x} in {}", so.display());
    }
}
