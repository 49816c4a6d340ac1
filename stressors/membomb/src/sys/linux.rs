//! Linux: madvise(MADV_HUGEPAGE).

/// Asks for transparent huge pages on `mem` (madvise MADV_HUGEPAGE), before it is touched.
/// `mem` must start on a page boundary (a fresh mapping does). Err says why not, in words.
pub fn advise_hugepages(mem: &mut [u8]) -> Result<(), String> {
    if mem.is_empty() {
        return Ok(());
    }
    // SAFETY: advice only; the range is memory this slice owns.
    let r = unsafe { libc::madvise(mem.as_mut_ptr().cast(), mem.len(), libc::MADV_HUGEPAGE) };
    if r == 0 {
        Ok(())
    } else {
        Err(format!(
            "madvise(MADV_HUGEPAGE): {}",
            std::io::Error::last_os_error()
        ))
    }
}
