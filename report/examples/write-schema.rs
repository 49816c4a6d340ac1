//! Writes the JSON Schemas generated from the report types into common/schema/.

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(misbehave_report::schema::DIR);
    for (name, text) in misbehave_report::schema::files() {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        println!("wrote {}", path.display());
    }
}
