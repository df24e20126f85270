//! The OS layer: the only module that maps, unmaps, purges and remaps memory,
//! reads the clock and the kernel's random bytes, and sets `errno`.
//!
//! It may call libc only. Every function here is a thin, non-allocating
//! wrapper; callers decide when a syscall is worth it (never on a fast path).

use core::ptr::null_mut;

/// The page size this build assumes (x86-64 and most aarch64 kernels).
pub const PAGE: usize = 4096;

/// Round `n` up to a multiple of `align` (a power of two); `None` on overflow.
#[inline]
pub const fn round_up(n: usize, align: usize) -> Option<usize> {
    match n.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// An anonymous private mapping of `len` bytes with protection `prot`,
/// uncommitted (MAP_NORESERVE). Null on failure.
fn map_anon(len: usize, prot: libc::c_int) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint touches no
    // existing memory; failure is reported as MAP_FAILED and handled.
    let p = unsafe {
        libc::mmap(
            null_mut(),
            len,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        null_mut()
    } else {
        p.cast()
    }
}

/// Map `len` bytes of fresh, zeroed, read-write memory. Null on failure.
pub fn map(len: usize) -> *mut u8 {
    map_anon(len, libc::PROT_READ | libc::PROT_WRITE)
}

/// `len` bytes aligned to `align` (a power of two, at least a page) with
/// protection `prot`, by over-mapping and trimming both ends.
fn map_anon_aligned(len: usize, align: usize, prot: libc::c_int) -> *mut u8 {
    let Some(total) = len.checked_add(align) else {
        return null_mut();
    };
    let raw = map_anon(total, prot);
    if raw.is_null() {
        return null_mut();
    }
    let start = raw as usize;
    let aligned = (start + align - 1) & !(align - 1);
    let head = aligned - start;
    let tail = total - head - len;
    if head > 0 {
        unmap(raw, head);
    }
    if tail > 0 {
        unmap((aligned + len) as *mut u8, tail);
    }
    aligned as *mut u8
}

/// Map `len` bytes aligned to `align` (a power of two, at least a page).
/// Null on failure.
pub fn map_aligned(len: usize, align: usize) -> *mut u8 {
    map_anon_aligned(len, align, libc::PROT_READ | libc::PROT_WRITE)
}

/// Reserve `len` bytes of address space aligned to `align`, inaccessible
/// and uncommitted (`commit` makes parts of it usable). Null on failure.
pub fn reserve_aligned(len: usize, align: usize) -> *mut u8 {
    map_anon_aligned(len, align, libc::PROT_NONE)
}

/// Make `[p, p+len)` of a reservation readable and writable (zero pages,
/// faulted in when touched). False if the kernel refused.
pub fn commit(p: *mut u8, len: usize) -> bool {
    // SAFETY: the range is part of a reservation hakmem made.
    unsafe { libc::mprotect(p.cast(), len, libc::PROT_READ | libc::PROT_WRITE) == 0 }
}

/// Drop the pages of `[p, p+len)` and make it inaccessible again, keeping
/// the address range reserved.
pub fn decommit(p: *mut u8, len: usize) {
    // SAFETY: the range is part of a reservation hakmem made and holds
    // nothing live; MAP_FIXED replaces exactly that range.
    unsafe {
        libc::mmap(
            p.cast(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
            -1,
            0,
        )
    };
}

/// Whether RLIMIT_AS is finite now.
pub fn address_space_limited() -> bool {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass.
    unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut rl) == 0 && rl.rlim_cur != libc::RLIM_INFINITY }
}

/// Unmap a range this layer mapped.
pub fn unmap(p: *mut u8, len: usize) {
    // SAFETY: callers pass ranges that hakmem mapped and no longer uses.
    unsafe { libc::munmap(p.cast(), len) };
}

/// Give the physical pages of `[p, p+len)` back to the kernel at once: they
/// leave the RSS now (unlike MADV_FREE) and read as zero when touched again.
pub fn purge(p: *mut u8, len: usize) {
    if len == 0 {
        return;
    }
    // SAFETY: the range is mapped by hakmem and holds no live block.
    unsafe { libc::madvise(p.cast(), len, libc::MADV_DONTNEED) };
}

/// Make the page at `p` inaccessible (a guard page, HAKMEM_SECURE) or
/// accessible again. Returns false if the kernel refused.
pub fn guard(p: *mut u8, on: bool) -> bool {
    let prot = if on {
        libc::PROT_NONE
    } else {
        libc::PROT_READ | libc::PROT_WRITE
    };
    // SAFETY: `p` is a page of a mapping hakmem owns that holds no live
    // block (or, when turning the guard off, is that guard page).
    unsafe { libc::mprotect(p.cast(), PAGE, prot) == 0 }
}

/// Move/resize a mapping; with `fixed` it lands exactly at `new_addr`
/// (replacing whatever was mapped there). Null on failure.
pub fn remap(old: *mut u8, old_len: usize, new_len: usize, new_addr: Option<*mut u8>) -> *mut u8 {
    // SAFETY: `old` is a mapping hakmem owns; with MREMAP_FIXED the target is a
    // reservation hakmem just mapped for this purpose.
    let r = unsafe {
        match new_addr {
            None => libc::mremap(old.cast(), old_len, new_len, 0),
            Some(a) => libc::mremap(
                old.cast(),
                old_len,
                new_len,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                a as *mut libc::c_void,
            ),
        }
    };
    if r == libc::MAP_FAILED {
        null_mut()
    } else {
        r.cast()
    }
}

/// Milliseconds on a coarse monotonic clock (a vDSO read, no syscall).
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// 64 random bits from the kernel's AT_RANDOM bytes, mixed with the clock and
/// an address (ASLR), so a fork child or a re-exec differs too.
pub fn random_u64() -> u64 {
    // SAFETY: getauxval has no preconditions; AT_RANDOM points at 16 bytes
    // the kernel placed on the initial stack, readable for the process' life.
    let mut r = unsafe {
        let p = libc::getauxval(libc::AT_RANDOM) as *const u64;
        if p.is_null() {
            0x9e37_79b9_7f4a_7c15
        } else {
            p.read_unaligned() ^ p.add(1).read_unaligned().rotate_left(17)
        }
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    r ^= (ts.tv_nsec as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    r ^= (&ts as *const _ as u64).rotate_left(32);
    splitmix(r)
}

/// The splitmix64 finaliser: a cheap, well-mixed 64-bit hash.
pub const fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Set the calling thread's `errno`.
#[inline]
pub fn set_errno(e: i32) {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// Yield the CPU (used by spin locks under contention).
pub fn yield_now() {
    // SAFETY: no preconditions.
    unsafe { libc::sched_yield() };
}
