//! Internal metadata memory: a bump arena for objects that live for the whole
//! process (thread heaps, which are pooled and reused, never freed). Guarded
//! by a spin lock; may call the OS layer only.

use crate::os;
use crate::sync::{Racy, SpinLock};

pub static LOCK: SpinLock = SpinLock::new();
static ARENA: Racy<(usize, usize)> = Racy::new((0, 0)); // (cursor, end), under LOCK

const CHUNK: usize = 256 * 1024;

/// `size` zeroed bytes aligned to `align` (<= a page), or null when the OS
/// has no memory left.
pub fn alloc(size: usize, align: usize) -> *mut u8 {
    let _g = LOCK.guard();
    // SAFETY: ARENA is only accessed under LOCK.
    let a = unsafe { &mut *ARENA.get() };
    let mut start = (a.0 + align - 1) & !(align - 1);
    if a.0 == 0 || start + size > a.1 {
        let len = os::round_up(size, CHUNK).unwrap_or(usize::MAX);
        let p = os::map(len);
        if p.is_null() {
            return p;
        }
        *a = (p as usize, p as usize + len);
        start = a.0;
    }
    a.0 = start + size;
    start as *mut u8
}
