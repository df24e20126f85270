//! Build script for hakmem.
//!
//! 1. Compiles `src/tls.c`, the C shim that defines the allocator's one
//!    initial-exec thread-local slot (Rust cannot choose a TLS model).
//! 2. Writes `include/hakmem.h` with cbindgen (the hakmem-specific API; the
//!    standard malloc family is declared by <stdlib.h> and <malloc.h>).
//! 3. Compiles the C programs in `ffi-tests/` (tests) and `ffi-tests/bench/`
//!    (benchmarks) with the `cc` crate's compiler into
//!    `target/<profile>/ffi/`: an object and a plain executable each (the
//!    executable is run under LD_PRELOAD; tests link the object against
//!    libhakmem.so for the `-lhakmem` variant). The compiler path is written to
//!    `target/<profile>/ffi/CC` for that link step.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/tls.c");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src/api.rs");

    cc::Build::new()
        .file("src/tls.c")
        .opt_level(2)
        .flag("-fPIC")
        .compile("hakmem_tls");

    write_header();
    build_c_programs();
}

fn write_header() {
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let config = cbindgen::Config::from_file(Path::new(&crate_dir).join("cbindgen.toml"))
        .expect("cbindgen.toml");
    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            bindings.write_to_file(Path::new(&crate_dir).join("include/hakmem.h"));
        }
        // A parse error here is a compile error that rustc reports better.
        Err(e) => println!("cargo:warning=cbindgen: {e}"),
    }
}

fn profile_dir() -> PathBuf {
    // OUT_DIR = target/<profile>/build/hakmem-<hash>/out
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    out.ancestors().nth(3).unwrap().to_path_buf()
}

fn build_c_programs() {
    let ffi = profile_dir().join("ffi");
    let compiler = cc::Build::new().opt_level(2).get_compiler();
    std::fs::create_dir_all(ffi.join("bench")).unwrap();
    std::fs::write(ffi.join("CC"), compiler.path().to_string_lossy().as_bytes()).unwrap();
    println!("cargo:rerun-if-changed=ffi-tests");
    println!("cargo:rerun-if-changed=ffi-tests/bench");
    for (dir, out) in [
        ("ffi-tests", ffi.clone()),
        ("ffi-tests/bench", ffi.join("bench")),
    ] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let src = e.path();
            if src.extension().and_then(|x| x.to_str()) != Some("c") {
                continue;
            }
            println!("cargo:rerun-if-changed={}", src.display());
            let stem = src.file_stem().unwrap().to_string_lossy().to_string();
            let obj = out.join(format!("{stem}.o"));
            let exe = out.join(&stem);
            let run = |args: &[&std::ffi::OsStr]| {
                let st = Command::new(compiler.path()).args(args).status();
                match st {
                    Ok(s) if s.success() => {}
                    _ => panic!("compiling {} failed", src.display()),
                }
            };
            run(&[
                "-O2".as_ref(),
                "-g".as_ref(),
                "-Wall".as_ref(),
                "-pthread".as_ref(),
                "-fno-builtin-malloc".as_ref(),
                "-Iinclude".as_ref(),
                "-Iffi-tests".as_ref(),
                "-c".as_ref(),
                src.as_os_str(),
                "-o".as_ref(),
                obj.as_os_str(),
            ]);
            run(&[
                obj.as_os_str(),
                "-o".as_ref(),
                exe.as_os_str(),
                "-pthread".as_ref(),
                "-lm".as_ref(),
            ]);
        }
    }
}
