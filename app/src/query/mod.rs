//! The filter/rule grammar (PocketBase's "fexpr") and what is built from it.

pub mod collections;
pub mod compile;
pub mod fexpr;
