//! The layer table in `src/lib.rs`'s documentation is a rule, not a wish: no module of
//! `common` refers to a module of a higher layer, so the import circle between the report,
//! the run loop and the terminal cannot come back unnoticed.

use std::collections::HashMap;
use std::path::Path;

fn src() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
}

/// module -> layer, from the table rows `//! | N | `a`, `b` | ... |`.
fn layers() -> HashMap<String, u32> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut map = HashMap::new();
    for line in lib.lines() {
        let Some(row) = line.strip_prefix("//! | ") else {
            continue;
        };
        let cells: Vec<&str> = row.split(" | ").collect();
        let Ok(layer) = cells[0].trim().parse::<u32>() else {
            continue;
        };
        for m in cells[1].split(',') {
            map.insert(m.trim().trim_matches('`').to_string(), layer);
        }
    }
    map
}

/// The modules a source file refers to through `crate::name`, outside comments.
fn uses(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + 7..];
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a, b::c}`: every name at the top of the group.
                let inner = group.split('}').next().unwrap_or("");
                for part in inner.split(',') {
                    let name: String = part
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        found.push(name);
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.push(name);
            }
        }
    }
    found
}

#[test]
fn no_module_refers_to_a_higher_layer() {
    let layers = layers();
    assert!(layers.len() >= 15, "layer table not found: {layers:?}");
    let mut files = Vec::new();
    for e in std::fs::read_dir(src()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rs") && p.file_name().unwrap() != "lib.rs" {
            let m = p.file_stem().unwrap().to_string_lossy().into_owned();
            files.push((m, p));
        }
    }
    for e in std::fs::read_dir(src().join("sys")).unwrap() {
        files.push(("sys".to_string(), e.unwrap().path()));
    }
    let mut problems = Vec::new();
    for (module, path) in &files {
        let Some(&mine) = layers.get(module) else {
            problems.push(format!("{module} is in no layer of lib.rs's table"));
            continue;
        };
        for dep in uses(&std::fs::read_to_string(path).unwrap()) {
            match layers.get(&dep) {
                Some(&theirs) if theirs > mine => problems.push(format!(
                    "{} (layer {mine}) refers to crate::{dep} (layer {theirs})",
                    path.display()
                )),
                Some(_) => {}
                None => problems.push(format!(
                    "{} refers to crate::{dep}, which names no module: use the module path, \
                     not a re-export",
                    path.display()
                )),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_sees_every_form_of_use() {
    let text = "use crate::data::{A, B};\nuse crate::{error::X, sys};\n// crate::output in a comment\nlet x = crate::hist::index(3);";
    assert_eq!(uses(text), ["data", "error", "sys", "hist"]);
}
