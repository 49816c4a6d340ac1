//! forkbomb's own platform code: the futex that the fork gate's waiters and the leaves
//! sleep on. What other binaries share stays in `common::sys`.
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
