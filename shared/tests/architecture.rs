//! The dependency rules of `shared/src` (docs/ARCHITECTURE.md, "Layers and dependencies"),
//! checked on the source tree: no import cycle between modules, `App` only in the wiring and the
//! HTTP edge, axum and `ApiError` only at the HTTP edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where the application state may be named: the wiring and the HTTP edge.
const APP_ALLOWED: &[&str] = &["app", "lambda", "http", "lib"];
/// Where the HTTP framework and the HTTP error may be named.
const EDGE: &[&str] = &["http"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src`, with its top-level module (`wallet` for `src/wallet/mod.rs`,
/// `audit` for `src/audit.rs`, `lib` for `src/lib.rs`).
fn files() -> Vec<(String, PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let root = src();
    let mut paths = Vec::new();
    walk(&root, &mut paths);
    paths
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).expect("under src").to_path_buf();
            let first = rel
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .unwrap_or_default()
                .trim_end_matches(".rs")
                .to_owned();
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{e}"));
            (first, rel, text)
        })
        .collect()
}

/// The source without comments and string literals (so doc comments and messages that mention
/// a name do not count as using it).
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
                out.push_str("\"\"");
            }
            _ => out.push(c),
        }
    }
    out
}

/// Whether `code` names `word` as a whole identifier.
fn names(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + word.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

/// The top-level modules a file refers to through `crate::` paths (including grouped `use
/// crate::{a, b::c}` forms).
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn no_import_cycle_between_modules() {
    let files = files();
    let modules: BTreeSet<String> = files.iter().map(|(m, _, _)| m.clone()).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, _, text) in &files {
        if module == "lib" {
            continue;
        }
        for target in crate_refs(&code_of(text)) {
            if &target != module && modules.contains(&target) {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    // Tarjan's strongly connected components: any component with more than one module is a cycle.
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on_stack: BTreeSet<String>,
        next: usize,
        cycles: Vec<Vec<String>>,
    }
    impl Walk<'_> {
        fn visit(&mut self, v: &str) {
            self.index.insert(v.to_owned(), self.next);
            self.low.insert(v.to_owned(), self.next);
            self.next += 1;
            self.stack.push(v.to_owned());
            self.on_stack.insert(v.to_owned());
            let targets: Vec<String> = self
                .edges
                .get(v)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            for w in targets {
                if !self.index.contains_key(&w) {
                    self.visit(&w);
                    let lw = self.low[&w];
                    let lv = self.low[v];
                    self.low.insert(v.to_owned(), lv.min(lw));
                } else if self.on_stack.contains(&w) {
                    let iw = self.index[&w];
                    let lv = self.low[v];
                    self.low.insert(v.to_owned(), lv.min(iw));
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(&w);
                    let done = w == v;
                    component.push(w);
                    if done {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.cycles.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        cycles: Vec::new(),
    };
    for m in &modules {
        if !walk.index.contains_key(m) {
            walk.visit(m);
        }
    }
    let described: Vec<String> = walk
        .cycles
        .iter()
        .map(|c| {
            let inner: Vec<String> = c
                .iter()
                .map(|m| {
                    let to: Vec<&String> = edges
                        .get(m)
                        .map(|s| s.iter().filter(|t| c.contains(t)).collect())
                        .unwrap_or_default();
                    format!("{m} -> {to:?}")
                })
                .collect();
            inner.join("; ")
        })
        .collect();
    assert!(
        described.is_empty(),
        "import cycles between modules of shared/src: {described:#?}"
    );
}

#[test]
fn app_is_named_only_by_the_wiring_and_the_http_edge() {
    let offenders: Vec<String> = files()
        .into_iter()
        .filter(|(m, _, _)| !APP_ALLOWED.contains(&m.as_str()))
        .filter(|(_, _, text)| {
            let code = code_of(text);
            names(&code, "App") || code.contains("app::App")
        })
        .map(|(_, rel, _)| rel.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "`App` named below the edge in: {offenders:?}"
    );
}

#[test]
fn axum_and_api_error_are_named_only_at_the_http_edge() {
    let offenders: Vec<String> = files()
        .into_iter()
        .filter(|(m, _, _)| !EDGE.contains(&m.as_str()))
        .filter(|(_, _, text)| {
            let code = code_of(text);
            names(&code, "axum") || names(&code, "ApiError") || names(&code, "StatusCode")
        })
        .map(|(_, rel, _)| rel.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "axum / ApiError / StatusCode named outside http/ in: {offenders:?}"
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    // The scanner itself: a use of a name in code counts, in a comment or a string it does not.
    let sample = "use crate::{wallet, points::Points};\n// App here\nlet s = \"ApiError\";\nfn f(a: &App) {}";
    let code = code_of(sample);
    assert!(names(&code, "App"));
    assert!(!names(&code, "ApiError"));
    assert_eq!(
        crate_refs(&code),
        BTreeSet::from(["points".to_owned(), "wallet".to_owned()])
    );
    assert!(!names("Apps", "App"));
}

/// The `[dependencies]` table of a manifest (up to the next table header).
fn dependencies_of(manifest: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t == "[dependencies]";
            continue;
        }
        if inside && !t.starts_with('#') {
            out.push_str(t);
            out.push('\n');
        }
    }
    out
}

#[test]
fn dev_tools_are_not_dependencies_of_the_lambda_library_or_any_function() {
    const DEV_TOOLS: &[&str] = &["xendit-sim", "userstate-import", "infra"];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut manifests = vec![root.join("shared/Cargo.toml")];
    let functions = std::fs::read_dir(root.join("functions")).expect("functions/");
    manifests.extend(
        functions
            .filter_map(Result::ok)
            .map(|e| e.path().join("Cargo.toml")),
    );
    assert!(
        manifests.len() > 5,
        "the functions were found: {manifests:?}"
    );
    let mut offenders = Vec::new();
    for path in &manifests {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let deps = dependencies_of(&text);
        for tool in DEV_TOOLS {
            if deps
                .lines()
                .any(|l| l.split(['=', '.', ' ']).next() == Some(tool))
            {
                offenders.push(format!("{} depends on {tool}", path.display()));
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
    // The scanner sees a dependency where there is one, and not in another table.
    let sample = "[dependencies]\nxendit-sim.workspace = true\n[dev-dependencies]\ninfra = { path = \"x\" }\n";
    let deps = dependencies_of(sample);
    assert!(deps.contains("xendit-sim") && !deps.contains("infra"));
}
