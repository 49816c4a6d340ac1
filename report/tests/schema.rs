//! The published schemas (common/schema/) are what the types generate: a change of the
//! types that is not published, or an edit of the files by hand, fails here.

#[test]
fn the_published_schemas_are_the_generated_ones() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(misbehave_report::schema::DIR);
    for (name, text) in misbehave_report::schema::files() {
        let path = dir.join(name);
        let published = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            published == text,
            "{} differs from what the report types generate; regenerate it with \
             `cargo run -p misbehave-report --features schema --example write-schema`",
            path.display()
        );
    }
}
