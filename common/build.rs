// Records the target triple for the report's `target` field.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=MISBEHAVE_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
