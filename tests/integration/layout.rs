//! The house rule, kept by a test: dependencies between the library's top-level modules
//! point down only. Each module may name (`crate::x`) only modules on a lower floor of
//! [`FLOORS`], the same list the README's "Layout" section draws. Test code is exempt:
//! tests may build whatever they need.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Bottom to top. A module may use the modules of the floors below its own, never its
/// own floor's neighbours, never a floor above.
const FLOORS: &[&[&str]] = &[
    // Ground floor: shared vocabulary, owned by no stage.
    &["clock", "seal", "body", "tls", "telemetry"],
    &["error", "config"],
    &["respond"],
    &["context"],
    // Stage 2 (match_route) and the services stage 3 calls.
    &["routes", "oidc", "directory"],
    // Stage 3 (load_session).
    &["session"],
    // Stage 4 (authorize) and the identity service of stage 5.
    &["policy", "identity"],
    // Sign-in: starts after stage 4, creates sessions.
    &["signin"],
    // Stage 5 (forward).
    &["proxy"],
    &["pipeline"],
    // Stage 1 (accept) drives the pipeline; the demo starts the whole proxy.
    &["server", "demo"],
];

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code without its tests and comments.
fn production_code(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let in_tests_dir = path.components().any(|c| c.as_os_str() == "tests");
    if name.contains("test") || in_tests_dir {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let code = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    Some(
        code.lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// Every `crate::name` the code mentions.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        names.insert(name);
    }
    names
}

#[test]
fn dependencies_point_down_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    let mut unplaced = BTreeSet::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let first = relative.components().next().expect("a component");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(own) = floor_of(&module) else {
            unplaced.insert(module);
            continue;
        };
        let Some(code) = production_code(file) else {
            continue;
        };
        for target in crate_paths(&code) {
            let Some(floor) = floor_of(&target) else {
                continue; // an item of the crate root (`crate::bind`)
            };
            if target != module && floor >= own {
                violations.push(format!("{} uses crate::{target}", relative.display()));
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules on no floor (add them to FLOORS and the README): {unplaced:?}"
    );
    assert!(
        violations.is_empty(),
        "dependencies that do not point down:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_rule_catches_an_upward_import() {
    // The checker itself: a ground-floor file naming a stage is found.
    let code = "use crate::session::Session;\nfn f() { crate::clock::now(); }";
    let names = crate_paths(code);
    assert!(names.contains("session") && names.contains("clock"));
    assert!(floor_of("session") > floor_of("clock"));
}
