//! probe's own platform code: how long this thread waited for a CPU. What other binaries
//! share stays in `common::sys`.
//!
//! Both modules export the same names; the illumos clippy run keeps them in step.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(not(target_os = "linux"))]
mod illumos;
#[cfg(not(target_os = "linux"))]
pub use illumos::*;
