//! hakmem: a malloc replacement (work in progress skeleton).
#![allow(clippy::missing_safety_doc)]
pub mod api;
#[no_mangle]
pub static hakmem_empty_heap: [u8; 64] = [0; 64];
