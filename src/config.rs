//! Configuration: the `HAKMEM_*` environment variables, read once.
//!
//! They are read by the library constructor or, if malloc is called before it
//! runs, by the first malloc; whichever comes first wins and the values never
//! change afterwards. Reading uses `libc::getenv`/`environ` (no allocation). A
//! malformed value gets one warning line on stderr and the default. May call
//! the report and OS layers only.

use crate::report::Msg;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::*};

/// One tunable: its name, default and accepted range.
pub struct Var {
    pub name: &'static str,
    pub default: usize,
    pub min: usize,
    pub max: usize,
    pub help: &'static str,
    value: AtomicUsize,
}

impl Var {
    const fn new(
        name: &'static str,
        default: usize,
        min: usize,
        max: usize,
        help: &'static str,
    ) -> Var {
        Var {
            name,
            default,
            min,
            max,
            help,
            value: AtomicUsize::new(default),
        }
    }
    #[inline]
    pub fn get(&self) -> usize {
        self.value.load(Relaxed)
    }
}

pub static MAX_CACHED: Var = Var::new(
    "HAKMEM_SUPERSLAB_MAX_CACHED",
    256,
    0,
    1 << 20,
    "empty SuperSlabs kept mapped for reuse",
);
pub static MAX_MEMORY_MB: Var = Var::new(
    "HAKMEM_SUPERSLAB_MAX_MEMORY_MB",
    512,
    0,
    1 << 30,
    "MiB of empty SuperSlabs kept mapped",
);
pub static TTL_SEC: Var = Var::new(
    "HAKMEM_SUPERSLAB_TTL_SEC",
    60,
    0,
    86_400 * 365,
    "seconds an empty SuperSlab stays mapped",
);
pub static PREWARM: Var = Var::new(
    "HAKMEM_PREWARM_SUPERSLABS",
    0,
    0,
    4096,
    "SuperSlabs mapped at start-up",
);
pub static SMALLMID: Var = Var::new(
    "HAKMEM_SMALLMID",
    0,
    0,
    1,
    "1: the Small-Mid front end serves 256 B - 1 KiB",
);
pub static PURGE_DELAY_MS: Var = Var::new(
    "HAKMEM_PURGE_DELAY_MS",
    100,
    0,
    3_600_000,
    "ms before freed memory is returned to the OS (MADV_DONTNEED)",
);
pub static LARGE_CACHE_MB: Var = Var::new(
    "HAKMEM_LARGE_CACHE_MB",
    64,
    0,
    1 << 20,
    "MiB of freed large blocks kept for reuse",
);
pub static HOT_KB: Var = Var::new(
    "HAKMEM_HOT_KB",
    128,
    0,
    1 << 16,
    "KiB of blocks each size class's hot list may hold (2 to 1024 blocks)",
);
pub static STATS: Var = Var::new(
    "HAKMEM_STATS",
    0,
    0,
    1,
    "1: print statistics to stderr at exit",
);

pub static SECURE: Var = Var::new(
    "HAKMEM_SECURE",
    0,
    0,
    1,
    "1: secure mode: encoded free lists, guard pages, randomised allocation order",
);

pub static ALL: [&Var; 10] = [
    &MAX_CACHED,
    &MAX_MEMORY_MB,
    &TTL_SEC,
    &PREWARM,
    &SMALLMID,
    &PURGE_DELAY_MS,
    &LARGE_CACHE_MB,
    &HOT_KB,
    &STATS,
    &SECURE,
];

static STATE: AtomicU32 = AtomicU32::new(0); // 0 unread, 1 reading, 2 read
static SMALLMID_ON: AtomicBool = AtomicBool::new(false);
static SECURE_ON: AtomicBool = AtomicBool::new(false);

/// Read the environment once. Safe to call from the constructor and from the
/// first malloc (the latter can happen first); concurrent callers wait.
pub fn init() {
    if STATE.load(Acquire) == 2 {
        return;
    }
    if STATE.compare_exchange(0, 1, Acquire, Acquire).is_ok() {
        for v in ALL.iter() {
            read_var(v);
        }
        SMALLMID_ON.store(SMALLMID.get() == 1, Relaxed);
        SECURE_ON.store(SECURE.get() == 1, Relaxed);
        STATE.store(2, Release);
    } else {
        while STATE.load(Acquire) != 2 {
            crate::os::yield_now();
        }
    }
}

#[inline]
pub fn smallmid() -> bool {
    SMALLMID_ON.load(Relaxed)
}

/// HAKMEM_SECURE=1: every operation takes the checked slow paths.
#[inline]
pub fn secure() -> bool {
    SECURE_ON.load(Relaxed)
}

fn read_var(v: &Var) {
    let mut name = [0u8; 64];
    name[..v.name.len()].copy_from_slice(v.name.as_bytes());
    // SAFETY: `name` is NUL-terminated; getenv does not allocate, and the
    // returned string (if any) stays valid while we read it here.
    let raw = unsafe { libc::getenv(name.as_ptr().cast()) };
    if raw.is_null() {
        return;
    }
    // SAFETY: getenv returns a NUL-terminated string.
    let bytes = unsafe { core::ffi::CStr::from_ptr(raw) }.to_bytes();
    match parse(bytes, v.min, v.max) {
        Some(n) => v.value.store(n, Relaxed),
        None => {
            let mut m = Msg::new();
            m.s("hakmem: warning: ignoring ").s(v.name).s("=\"");
            m.bytes(&bytes[..bytes.len().min(40)]);
            m.s("\": expected a whole number from ")
                .dec(v.min as u64)
                .s(" to ")
                .dec(v.max as u64);
            m.s("; using the default ").dec(v.default as u64);
            m.emit();
        }
    }
}

/// Parse a decimal integer in `[min, max]`; surrounding blanks are allowed.
pub fn parse(s: &[u8], min: usize, max: usize) -> Option<usize> {
    let s = trim(s);
    if s.is_empty() {
        return None;
    }
    let mut n: usize = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((c - b'0') as usize)?;
    }
    (n >= min && n <= max).then_some(n)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_numbers_in_range() {
        assert_eq!(parse(b"256", 0, 1000), Some(256));
        assert_eq!(parse(b" 7 ", 0, 10), Some(7));
        assert_eq!(parse(b"0", 0, 10), Some(0));
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            &b""[..],
            b"abc",
            b"-5",
            b"1e9",
            b"12x",
            b"99999999999999999999999",
            b"+3",
            b" ",
        ] {
            assert_eq!(
                parse(bad, 0, usize::MAX),
                None,
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
        assert_eq!(parse(b"11", 0, 10), None);
        assert_eq!(parse(b"2", 3, 10), None);
    }
}
