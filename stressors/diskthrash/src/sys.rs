//! diskthrash's own platform code: the io_uring engine. What other binaries share stays
//! in `common::sys`.
//!
//! io_uring is Linux's: elsewhere the plan refuses `--engine io_uring` ("needs Linux") and
//! `--engine auto` takes psync, so nothing here needs a stand-in on other systems.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;
