//! Shared helpers for the integration tests that run the C programs of
//! `ffi-tests/` against `libhakmem.so`.
//!
//! These tests use the **release** build: `target/release/libhakmem.so` and
//! the programs that `build.rs` compiles into `target/release/ffi/`. `cargo
//! test` does not (re)build that cdylib, so run `make test`, or
//! `cargo build --release` before `cargo test --release`.
//!
//! Environment:
//! - `HAKMEM_SO`: use this libhakmem.so instead of `target/release/libhakmem.so`.
//! - `CARGO_TARGET_DIR`: honoured when locating `target/`.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bound for any single program run; a run that takes longer is killed
/// and reported as hung (deadlock) rather than stalling the suite.
pub const TIMEOUT: Duration = Duration::from_secs(90);

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn release_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => {
            let t = PathBuf::from(t);
            if t.is_absolute() {
                t
            } else {
                root().join(t)
            }
        }
        None => root().join("target"),
    };
    target.join("release")
}

/// The libhakmem.so under test; panics with instructions if it is missing.
pub fn so_path() -> PathBuf {
    let p = match std::env::var_os("HAKMEM_SO") {
        Some(p) => PathBuf::from(p),
        None => release_dir().join("libhakmem.so"),
    };
    if !p.is_file() {
        panic!(
            "{} not found. These tests use the release library, which `cargo test` does not \
             build: run `make test`, or `cargo build --release` before `cargo test --release` \
             (or point HAKMEM_SO at a libhakmem.so).",
            p.display()
        );
    }
    p.canonicalize().unwrap_or(p)
}

pub fn ffi_dir() -> PathBuf {
    release_dir().join("ffi")
}

fn require_file(p: &Path, what: &str) {
    if !p.is_file() {
        panic!(
            "{what} {} not found: build.rs compiles ffi-tests/*.c into target/release/ffi/ \
             during `cargo build --release`; run `make test` or `cargo build --release` first.",
            p.display()
        );
    }
}

/// The plain executable of `ffi-tests/<name>.c` (run under LD_PRELOAD).
pub fn plain_exe(name: &str) -> PathBuf {
    let p = ffi_dir().join(name);
    require_file(&p, "test program");
    p
}

static LINK_LOCK: Mutex<()> = Mutex::new(());

/// Links `target/release/ffi/<name>.o` against libhakmem.so into
/// `target/release/ffi/linked/<name>-linked` and returns its path.
pub fn linked_exe(name: &str) -> PathBuf {
    let so = so_path();
    let ffi = ffi_dir();
    let obj = ffi.join(format!("{name}.o"));
    require_file(&obj, "object file");
    let cc_file = ffi.join("CC");
    require_file(&cc_file, "compiler path file");
    let cc = std::fs::read_to_string(&cc_file).unwrap();
    let cc = cc.trim();
    let out_dir = ffi.join("linked");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(format!("{name}-linked"));
    let tmp = out_dir.join(format!("{name}-linked.tmp{}", std::process::id()));
    let so_dir = so.parent().unwrap().to_path_buf();

    let _guard = LINK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut cmd = Command::new(cc);
    cmd.arg(&obj).arg("-o").arg(&tmp);
    if so.file_name().and_then(|f| f.to_str()) == Some("libhakmem.so") {
        cmd.arg(format!("-L{}", so_dir.display())).arg("-lhakmem");
    } else {
        cmd.arg(&so); // HAKMEM_SO with another file name: link the file itself
    }
    cmd.arg(format!("-Wl,-rpath,{}", so_dir.display()))
        .arg("-pthread")
        .arg("-lm");
    let o = cmd.output().unwrap_or_else(|e| panic!("running {cc}: {e}"));
    if !o.status.success() {
        panic!(
            "linking {name} against {} failed ({:?}):\n{}{}",
            so.display(),
            cmd,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    std::fs::rename(&tmp, &out).unwrap();
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `-lhakmem`, with an rpath to the library.
    Linked,
    /// The plain executable under `LD_PRELOAD=libhakmem.so`.
    Preloaded,
}

/// A command for program `name` in the given mode, with `EXPECT_HAKMEM=1`
/// (the program then fails unless malloc & co. really are hakmem's) and
/// without any inherited `HAKMEM_*` settings.
pub fn command(name: &str, mode: Mode) -> Command {
    let mut cmd = match mode {
        Mode::Linked => {
            let mut c = Command::new(linked_exe(name));
            c.env_remove("LD_PRELOAD");
            c
        }
        Mode::Preloaded => {
            let mut c = Command::new(plain_exe(name));
            c.env("LD_PRELOAD", so_path());
            c
        }
    };
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("HAKMEM_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("EXPECT_HAKMEM", "1");
    cmd
}

pub struct Outcome {
    pub desc: String,
    /// None when the program was killed for exceeding the timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    pub fn signal(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.status.and_then(|s| s.signal())
    }

    /// Everything worth showing when a test fails.
    pub fn report(&self) -> String {
        let status = match self.status {
            None => format!(
                "TIMED OUT after {:?} (killed; hung or deadlocked?)",
                self.elapsed
            ),
            Some(s) => match self.signal() {
                Some(sig) => format!("killed by signal {sig} ({})", signal_name(sig)),
                None => format!("exit status {}", s.code().unwrap_or(-1)),
            },
        };
        format!(
            "{}\n  -> {} in {:.2?}\n--- stdout ---\n{}--- stderr ---\n{}--------------",
            self.desc, status, self.elapsed, self.stdout, self.stderr
        )
    }
}

pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        14 => "SIGALRM",
        _ => "?",
    }
}

/// Runs `cmd` to completion (or until `timeout`), capturing its output.
pub fn run(mut cmd: Command, timeout: Duration) -> Outcome {
    let desc = describe(&cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {desc}: {e}"));
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let status = loop {
        match child.try_wait().expect("waiting for child") {
            Some(s) => break Some(s),
            None if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap()).into_owned();
    Outcome {
        desc,
        status,
        stdout,
        stderr,
        elapsed,
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            s += &format!("{}={} ", k.to_string_lossy(), v.to_string_lossy());
        }
    }
    s += &cmd.get_program().to_string_lossy();
    for a in cmd.get_args() {
        s += " ";
        s += &a.to_string_lossy();
    }
    s
}

/// Runs program `name` with `args` in `mode` and asserts exit status 0.
pub fn run_ok(name: &str, mode: Mode, args: &[&str]) -> Outcome {
    let mut cmd = command(name, mode);
    cmd.args(args);
    let o = run(cmd, TIMEOUT);
    assert!(o.success(), "{} failed:\n{}", name, o.report());
    // Echo the program's own summary (visible with --nocapture).
    print!("{}", o.stdout);
    o
}
