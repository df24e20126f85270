//! The C ABI: every allocation entry point glibc has, with glibc's
//! signatures and errno conventions, plus mallinfo/mallinfo2/malloc_trim/
//! malloc_stats/mallopt/malloc_info. These functions only dispatch: by size
//! to the heap (Tiny/Mid/Small-Mid) or to large blocks, by address (registry)
//! on free. Under `cargo test` they are not exported, so the test harness
//! keeps its own allocator while unit tests call the layers directly.
//!
//! May call: heap, large, registry, sizeclass, stats, os, report.

use crate::heap;
use crate::large;
use crate::os::{self, PAGE};
use crate::registry;
use crate::report::misuse;
use crate::sizeclass::{self, MID_MAX};
use crate::stats;
use core::ffi::{c_int, c_void};
use core::ptr::null_mut;

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    // SAFETY: any size is valid input.
    unsafe { heap::malloc(size).cast() }
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: free validates any pointer before using it.
    unsafe { heap::free(p.cast()) }
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn cfree(p: *mut c_void) {
    // SAFETY: as free.
    unsafe { heap::free(p.cast()) }
}

/// C23 free_sized: the size is only a hint here.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn free_sized(p: *mut c_void, _size: usize) {
    // SAFETY: as free.
    unsafe { heap::free(p.cast()) }
}

/// C23 free_aligned_sized.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn free_aligned_sized(p: *mut c_void, _align: usize, _size: usize) {
    // SAFETY: as free.
    unsafe { heap::free(p.cast()) }
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    let Some(total) = n.checked_mul(size) else {
        os::set_errno(libc::ENOMEM);
        return null_mut();
    };
    if total > MID_MAX {
        return large::alloc(total, 0, true).cast();
    }
    // SAFETY: a fresh block of at least `total` bytes.
    unsafe {
        let p = heap::malloc(total);
        if !p.is_null() {
            core::ptr::write_bytes(p, 0, total);
        }
        p.cast()
    }
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: the pointer is validated before use.
    unsafe { realloc_impl(p.cast(), size, "realloc").cast() }
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    let Some(total) = n.checked_mul(size) else {
        os::set_errno(libc::ENOMEM);
        return null_mut();
    };
    // SAFETY: as realloc.
    unsafe { realloc_impl(p.cast(), total, "reallocarray").cast() }
}

unsafe fn realloc_impl(p: *mut u8, size: usize, op: &str) -> *mut u8 {
    let a = p as usize;
    if a == 0 {
        // SAFETY: plain allocation.
        return unsafe { heap::malloc(size) };
    }
    if size == 0 {
        // glibc: realloc(p, 0) frees p and returns NULL.
        // SAFETY: free validates the pointer.
        unsafe { heap::free_slow(p, op) };
        return null_mut();
    }
    let old = match registry::kind(a) {
        registry::SUPERSLAB => {
            // SAFETY: the registry says a SuperSlab is mapped here;
            // check_block validates the block or reports the misuse.
            let old = unsafe { (*heap::check_block(a, op).0).size as usize };
            if size <= old && size >= old / 2 {
                return p;
            }
            old
        }
        registry::LARGE | registry::LARGE_TAIL => {
            if size > MID_MAX {
                // SAFETY: validated inside.
                return unsafe { large::realloc(a, size) };
            }
            // SAFETY: validated inside.
            unsafe { large::usable(a, op) }
        }
        _ => misuse(op, a, "pointer not allocated by hakmem", 0),
    };
    // SAFETY: `q` is fresh, `p` holds at least `old` bytes.
    unsafe {
        // (Above MID_MAX only a SuperSlab block gets here: a large one was
        // resized above. It is growing.)
        let q = if size > MID_MAX {
            large::alloc_growing(size)
        } else {
            heap::malloc(size)
        };
        if q.is_null() {
            return q; // errno is ENOMEM; p stays valid
        }
        core::ptr::copy_nonoverlapping(p, q, old.min(size));
        // (validated above: the ordinary free path)
        heap::free(p);
        q
    }
}

/// An allocation aligned to `align` (a power of two).
unsafe fn aligned(align: usize, size: usize) -> *mut u8 {
    if align <= 16 {
        // SAFETY: plain allocation; every block is 16-aligned.
        return unsafe { heap::malloc(size) };
    }
    match sizeclass::class_for_aligned(size, align) {
        // SAFETY: a class whose blocks are all `align`-aligned.
        Some(c) => unsafe { heap::malloc_class(c) },
        None => large::alloc(size, align, false),
    }
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    if align < core::mem::size_of::<usize>() || !align.is_power_of_two() {
        return libc::EINVAL;
    }
    let saved = errno();
    // SAFETY: valid alignment.
    let p = unsafe { aligned(align, size) };
    if p.is_null() {
        os::set_errno(saved);
        return libc::ENOMEM;
    }
    // SAFETY: the caller passes a writable out-pointer.
    unsafe { *out = p.cast() };
    0
}

fn errno() -> c_int {
    // SAFETY: reading the calling thread's errno.
    unsafe { *libc::__errno_location() }
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        os::set_errno(libc::EINVAL);
        return null_mut();
    }
    // SAFETY: valid alignment.
    unsafe { aligned(align, size).cast() }
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    // glibc rounds a non-power-of-two alignment up to the next power of two.
    let Some(align) = align.checked_next_power_of_two() else {
        os::set_errno(libc::EINVAL);
        return null_mut();
    };
    // SAFETY: valid alignment.
    unsafe { aligned(align, size).cast() }
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    // SAFETY: valid alignment.
    unsafe { aligned(PAGE, size).cast() }
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let Some(size) = os::round_up(size.max(1), PAGE) else {
        os::set_errno(libc::ENOMEM);
        return null_mut();
    };
    // SAFETY: valid alignment.
    unsafe { aligned(PAGE, size).cast() }
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    let a = p as usize;
    match registry::kind(a) {
        _ if a == 0 => 0,
        // SAFETY: registry says SuperSlab; check_block validates.
        registry::SUPERSLAB => unsafe {
            heap::check_block(a, "malloc_usable_size");
            heap::block_size(a)
        },
        // SAFETY: validated inside.
        registry::LARGE | registry::LARGE_TAIL => unsafe { large::usable(a, "malloc_usable_size") },
        _ => misuse(
            "malloc_usable_size",
            a,
            "pointer not allocated by hakmem",
            0,
        ),
    }
}

// glibc's internal names, which some programs and libraries call directly.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_malloc(size: usize) -> *mut c_void {
    // SAFETY: as malloc.
    unsafe { malloc(size) }
}
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_free(p: *mut c_void) {
    // SAFETY: as free.
    unsafe { free(p) }
}
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_calloc(n: usize, size: usize) -> *mut c_void {
    // SAFETY: as calloc.
    unsafe { calloc(n, size) }
}
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: as realloc.
    unsafe { realloc(p, size) }
}
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_memalign(align: usize, size: usize) -> *mut c_void {
    // SAFETY: as memalign.
    unsafe { memalign(align, size) }
}
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_valloc(size: usize) -> *mut c_void {
    // SAFETY: as valloc.
    unsafe { valloc(size) }
}
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_pvalloc(size: usize) -> *mut c_void {
    // SAFETY: as pvalloc.
    unsafe { pvalloc(size) }
}

/// glibc's `struct mallinfo` (int fields).
#[repr(C)]
pub struct Mallinfo {
    pub arena: c_int,
    pub ordblks: c_int,
    pub smblks: c_int,
    pub hblks: c_int,
    pub hblkhd: c_int,
    pub usmblks: c_int,
    pub fsmblks: c_int,
    pub uordblks: c_int,
    pub fordblks: c_int,
    pub keepcost: c_int,
}

/// glibc's `struct mallinfo2` (size_t fields).
#[repr(C)]
pub struct Mallinfo2 {
    pub arena: usize,
    pub ordblks: usize,
    pub smblks: usize,
    pub hblks: usize,
    pub hblkhd: usize,
    pub usmblks: usize,
    pub fsmblks: usize,
    pub uordblks: usize,
    pub fordblks: usize,
    pub keepcost: usize,
}

/// arena: bytes of SuperSlabs; ordblks: SuperSlabs; hblks/hblkhd: large
/// blocks and their mapped bytes; uordblks: bytes of SuperSlab spans in use
/// (as glibc's, large blocks excluded); fordblks: SuperSlab bytes in no span
/// plus cached large blocks.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn mallinfo2() -> Mallinfo2 {
    let s = stats::snapshot();
    Mallinfo2 {
        arena: s.arena,
        ordblks: s.superslabs,
        smblks: 0,
        hblks: s.hblks,
        hblkhd: s.hblkhd,
        usmblks: 0,
        fsmblks: 0,
        uordblks: s.uordblks,
        fordblks: s.fordblks,
        keepcost: 0,
    }
}

#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn mallinfo() -> Mallinfo {
    let m = mallinfo2();
    let c = |v: usize| v.min(c_int::MAX as usize) as c_int;
    Mallinfo {
        arena: c(m.arena),
        ordblks: c(m.ordblks),
        smblks: 0,
        hblks: c(m.hblks),
        hblkhd: c(m.hblkhd),
        usmblks: 0,
        fsmblks: 0,
        uordblks: c(m.uordblks),
        fordblks: c(m.fordblks),
        keepcost: 0,
    }
}

/// Returns 1 if memory was returned to the OS, 0 otherwise (`pad` ignored).
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn malloc_trim(_pad: usize) -> c_int {
    heap::global_init();
    heap::trim() as c_int
}

#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn malloc_stats() {
    stats::print();
}

/// Accepted and ignored (returns 1, glibc's success): hakmem's tunables are
/// the HAKMEM_* environment variables.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn mallopt(_param: c_int, _value: c_int) -> c_int {
    1
}

/// Writes a one-element XML summary (glibc's format is arena-specific).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn malloc_info(options: c_int, fp: *mut libc::FILE) -> c_int {
    if options != 0 || fp.is_null() {
        os::set_errno(libc::EINVAL);
        return -1;
    }
    let s = stats::snapshot();
    let mut m = crate::report::Msg::new();
    m.s("<malloc version=\"hakmem-")
        .s(env!("CARGO_PKG_VERSION"))
        .s("\">");
    m.s("<superslabs count=\"")
        .dec(s.superslabs as u64)
        .s("\" bytes=\"")
        .dec(s.arena as u64)
        .s("\"/>");
    m.s("<spans bytes=\"").dec(s.uordblks as u64).s("\"/>");
    m.s("<large count=\"")
        .dec(s.hblks as u64)
        .s("\" bytes=\"")
        .dec(s.hblkhd as u64)
        .s("\"/>");
    m.s("</malloc>\n");
    let b = m.as_bytes();
    // SAFETY: `fp` is the caller's open stream; the buffer is initialised.
    unsafe { libc::fwrite(b.as_ptr().cast(), 1, b.len(), fp) };
    0
}
