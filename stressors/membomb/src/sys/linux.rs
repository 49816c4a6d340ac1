//! Linux: madvise(MADV_HUGEPAGE), madvise(MADV_POPULATE_WRITE).

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

/// Has the kernel back every page of `mem` for writing, as a write to each would
/// (madvise MADV_POPULATE_WRITE, Linux 5.14+), in one call instead of a fault per page.
/// `mem` must start on a page boundary. EINVAL: the kernel does not know the advice.
pub fn populate(mem: &mut [u8]) -> Result<(), nix::errno::Errno> {
    if mem.is_empty() {
        return Ok(());
    }
    // SAFETY: the range is memory this slice owns; populating writes no byte of it.
    let r = unsafe {
        libc::madvise(
            mem.as_mut_ptr().cast(),
            mem.len(),
            libc::MADV_POPULATE_WRITE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(nix::errno::Errno::last())
    }
}

/// Populates one page of a small fresh mapping and checks with mincore(2) that it is
/// resident: None if populating works here, else why not. An emulator (qemu-user) may
/// answer the advice with success and back nothing.
pub fn populate_refused(page: usize) -> Option<String> {
    use nix::errno::Errno;
    let mut m = match memmap2::MmapMut::map_anon(page) {
        Ok(m) => m,
        Err(e) => return Some(format!("mmap: {e}")),
    };
    if let Err(e) = populate(&mut m) {
        return Some(match e {
            Errno::EINVAL => {
                "madvise(MADV_POPULATE_WRITE): EINVAL: the kernel is older than 5.14".into()
            }
            e => format!(
                "madvise(MADV_POPULATE_WRITE): {}",
                common::error::errno_text(e)
            ),
        });
    }
    let mut vec = [0u8; 1];
    // SAFETY: one page of our own mapping, one status byte out.
    let r = unsafe { libc::mincore(m.as_mut_ptr().cast(), page, vec.as_mut_ptr()) };
    if r == 0 && vec[0] & 1 == 0 {
        return Some(
            "madvise(MADV_POPULATE_WRITE) succeeded but backed nothing (an emulator?)".into(),
        );
    }
    None
}
