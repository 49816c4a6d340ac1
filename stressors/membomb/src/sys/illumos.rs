//! illumos (and any other Unix without transparent huge pages).

/// No transparent huge pages to ask for here (illumos picks large pages by itself, and
/// MADV_HUGEPAGE does not exist): does nothing and says so.
pub fn advise_hugepages(_mem: &mut [u8]) -> Result<(), String> {
    Err("transparent huge pages are Linux-only; nothing was asked for".into())
}
