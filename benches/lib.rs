//! Criterion benchmarks for the workspace live in `benches/`; this library
//! is empty and exists only so that the crate is a workspace member.
#![no_std]
