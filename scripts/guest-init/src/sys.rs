//! Small helpers over the C library that every module uses: errno, error strings, C
//! strings, files and sleeping.

use std::ffi::CString;
use std::time::Duration;

pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

pub(crate) fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

pub(crate) fn cstring(s: &str) -> CString {
    CString::new(s).expect("no NUL in internal strings")
}

pub(crate) fn write_file(path: &str, data: &str) -> Result<(), String> {
    std::fs::write(path, data).map_err(|e| format!("write {path}: {e}"))
}

pub(crate) fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}
