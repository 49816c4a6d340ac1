//! illumos (and any other Unix without transparent huge pages).

/// No transparent huge pages to ask for here (illumos picks large pages by itself, and
/// MADV_HUGEPAGE does not exist): does nothing and says so.
pub fn advise_hugepages(_mem: &mut [u8]) -> Result<(), String> {
    Err("transparent huge pages are Linux-only; nothing was asked for".into())
}

/// No MADV_POPULATE_WRITE here: the plan takes the touch loop.
pub fn populate(_mem: &mut [u8]) -> Result<(), nix::errno::Errno> {
    Err(nix::errno::Errno::ENOTSUP)
}

/// Why the plan cannot populate: it is Linux's.
pub fn populate_refused(_page: usize) -> Option<String> {
    Some("madvise(MADV_POPULATE_WRITE) is Linux-only".into())
}
