//! Imports point one way. The top-level modules of `src/` sit in the
//! layers below, lowest first, and a module may import only from a lower
//! layer; the files of the `pool` crate import one another without a
//! cycle. A new module goes into [`LAYERS`]; an import that points up is a
//! design question (move the shared piece down), not an entry here.
//!
//! Unit tests (`#[cfg(test)]` modules and `tests.rs` files) are left out:
//! a test may build its fixtures with anything, the demo site's pages say.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

/// The layers of `src/`, lowest first (docs/ARCHITECTURE.md draws them).
const LAYERS: &[&[&str]] = &[
    &["store", "logging", "legacy", "memory"],
    &["protocol"],
    &["budget"],
    &["site"],
    &["config"],
    &["topology", "demo_site", "import"],
    &["scrape"],
    &["watcher"],
    &["worker"],
    &["reload"],
    &["cluster"],
    &["app_events"],
    &["api"],
    &["supervise"],
    &["bench"],
    &["commands"],
];

/// Not modules of the library: the binaries' entry points.
const ENTRY_POINTS: &[&str] = &["lib", "main", "bin"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

/// The source without comments and without `#[cfg(test)]` modules.
fn product_code(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut lines = source.lines();
    while let Some(line) = lines.next() {
        let code = line.split("//").next().unwrap_or("");
        if code.trim() == "#[cfg(test)]" {
            // Skip the item it guards: a `mod x;` line or a braced block.
            let mut depth = 0i64;
            let mut opened = false;
            for next in lines.by_ref() {
                let next = next.split("//").next().unwrap_or("");
                depth += next.matches('{').count() as i64 - next.matches('}').count() as i64;
                opened |= next.contains('{');
                if (opened && depth <= 0) || (!opened && next.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// `from → {to → files}` between the top-level modules under `root`.
fn imports(root: &Path) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let single = Regex::new(r"crate::(\w+)").expect("regex");
    let group = Regex::new(r"crate::\{([^}]*)\}").expect("regex");
    let first = Regex::new(r"(?:^|,)\s*(\w+)").expect("regex");
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in files {
        let rel = file
            .strip_prefix(root)
            .expect("under root")
            .display()
            .to_string();
        let top = rel
            .split('/')
            .next()
            .unwrap_or("")
            .trim_end_matches(".rs")
            .to_string();
        if ENTRY_POINTS.contains(&top.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read source");
        let code = product_code(&text);
        let mut used: BTreeSet<String> = single
            .captures_iter(&code)
            .map(|c| c[1].to_string())
            .collect();
        for g in group.captures_iter(&code) {
            used.extend(first.captures_iter(&g[1]).map(|c| c[1].to_string()));
        }
        for to in used {
            if to != top {
                graph
                    .entry(top.clone())
                    .or_default()
                    .entry(to)
                    .or_default()
                    .insert(rel.clone());
            }
        }
    }
    graph
}

/// Every cycle's members (strongly connected components of two or more).
fn cycles(graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>) -> Vec<Vec<String>> {
    // Kosaraju: order by finish time, then walk the reversed graph.
    fn visit<'a>(
        n: &'a str,
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        seen: &mut BTreeSet<&'a str>,
        out: &mut Vec<&'a str>,
    ) {
        if !seen.insert(n) {
            return;
        }
        for m in edges.get(n).into_iter().flatten() {
            visit(m, edges, seen, out);
        }
        out.push(n);
    }
    let mut forward: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut backward: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, tos) in graph {
        for b in tos.keys() {
            forward.entry(a.clone()).or_default().insert(b.clone());
            backward.entry(b.clone()).or_default().insert(a.clone());
        }
    }
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for n in forward.keys() {
        visit(n, &forward, &mut seen, &mut order);
    }
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for n in order.into_iter().rev() {
        let mut comp = Vec::new();
        visit(n, &backward, &mut assigned, &mut comp);
        if comp.len() > 1 {
            let mut comp: Vec<String> = comp.into_iter().map(str::to_string).collect();
            comp.sort();
            out.push(comp);
        }
    }
    out
}

fn describe(
    graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    comp: &[String],
) -> String {
    let mut s = format!("cycle between {}:\n", comp.join(", "));
    for a in comp {
        for (b, files) in &graph[a] {
            if comp.contains(b) {
                let files: Vec<&str> = files.iter().map(String::as_str).collect();
                s.push_str(&format!("  {a} -> {b} ({})\n", files.join(", ")));
            }
        }
    }
    s
}

#[test]
fn src_modules_import_only_from_lower_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = imports(&root);
    let layer = |m: &str| LAYERS.iter().position(|l| l.contains(&m));
    let mut problems = Vec::new();
    for comp in cycles(&graph) {
        problems.push(describe(&graph, &comp));
    }
    for (from, tos) in &graph {
        let Some(lf) = layer(from) else {
            problems.push(format!(
                "module `{from}` is in no layer: add it to LAYERS in tests/layering.rs"
            ));
            continue;
        };
        for (to, files) in tos {
            match layer(to) {
                None => problems.push(format!("module `{to}` is in no layer: add it to LAYERS")),
                Some(lt) if lt >= lf => {
                    let files: Vec<&str> = files.iter().map(String::as_str).collect();
                    problems.push(format!(
                        "`{from}` (layer {lf}) imports `{to}` (layer {lt}), which is not below it: {}",
                        files.join(", ")
                    ));
                }
                Some(_) => {}
            }
        }
    }
    assert!(
        problems.is_empty(),
        "imports that point up:\n{}",
        problems.join("\n")
    );
    // The check sees the imports it is about: the scan is not vacuous.
    assert!(graph["supervise"].contains_key("api"), "{graph:?}");
    assert!(graph["config"].contains_key("site"), "{graph:?}");
}

#[test]
fn pool_files_import_one_another_without_a_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("pool/src");
    let graph = imports(&root);
    let found = cycles(&graph);
    let text: Vec<String> = found.iter().map(|c| describe(&graph, c)).collect();
    assert!(found.is_empty(), "{}", text.join("\n"));
    assert!(graph["handle"].contains_key("actor"), "{graph:?}");
}

#[test]
fn the_scan_finds_a_cycle_when_there_is_one_and_skips_unit_tests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write("a.rs", "use crate::b::X;\n// crate::c in a comment\n");
    write("b.rs", "pub fn f() { crate::a::g() }\n");
    write(
        "c.rs",
        "pub fn h() {}\n#[cfg(test)]\nmod tests {\n    use crate::a::g;\n    fn t() { if true { g() } }\n}\n",
    );
    write("d.rs", "use crate::{c::h, a};\n");
    let graph = imports(dir.path());
    assert_eq!(cycles(&graph), vec![vec!["a".to_string(), "b".to_string()]]);
    assert!(
        !graph.get("a").is_some_and(|t| t.contains_key("c")),
        "comments are skipped"
    );
    assert!(
        !graph.contains_key("c"),
        "unit tests are skipped: {graph:?}"
    );
    assert_eq!(graph["d"].keys().collect::<Vec<_>>(), ["a", "c"]);
}

/// `from → {to → files}` between the modules of `site` (its files and
/// folders), and inside each of its folders between their files. A file
/// names a module with `crate::site::x`, `super::x` or `super::super::x`;
/// names that are not modules (items re-exported by `site/mod.rs`) are not
/// followed, and the `mod.rs` files (declarations and re-exports) are not
/// sources.
fn site_imports(root: &Path) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let refs =
        Regex::new(r"(crate::site|super::super|super)::(?:(\w+)|\{([^}]*)\})").expect("regex");
    let first = Regex::new(r"(?:^|,)\s*(\w+)").expect("regex");
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let module = |p: &Path| -> Vec<String> {
        let rel = p.strip_prefix(root).expect("under root");
        let mut parts: Vec<String> = rel
            .iter()
            .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        if parts.last().is_some_and(|l| l == "mod") {
            parts.pop();
        }
        parts
    };
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module(f)).collect();
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in &files {
        if file.file_name().is_some_and(|n| n == "mod.rs") {
            continue;
        }
        let from = module(file);
        let code = product_code(&std::fs::read_to_string(file).expect("read source"));
        for c in refs.captures_iter(&code) {
            // The module the path starts from.
            let base: Vec<String> = match &c[1] {
                "crate::site" => Vec::new(),
                "super::super" => from[..from.len().saturating_sub(2)].to_vec(),
                _ => from[..from.len().saturating_sub(1)].to_vec(),
            };
            let names: Vec<String> = match (c.get(2), c.get(3)) {
                (Some(n), _) => vec![n.as_str().to_string()],
                (_, Some(g)) => first
                    .captures_iter(g.as_str())
                    .map(|m| m[1].to_string())
                    .collect(),
                _ => Vec::new(),
            };
            for name in names {
                let mut to = base.clone();
                to.push(name);
                if !modules.contains(&to) {
                    continue;
                }
                // Between the top-level modules of `site`, and between
                // siblings of a folder.
                let (a, b) = if from[0] != to[0] {
                    (from[0].clone(), to[0].clone())
                } else if from.len() > 1 && to.len() > 1 && from[1] != to[1] {
                    (from[..2].join("/"), to[..2].join("/"))
                } else {
                    continue;
                };
                graph.entry(a).or_default().entry(b).or_default().insert(
                    file.strip_prefix(root)
                        .expect("under root")
                        .display()
                        .to_string(),
                );
            }
        }
    }
    graph
}

#[test]
fn site_files_import_one_another_without_a_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/site");
    let graph = site_imports(&root);
    let found = cycles(&graph);
    let text: Vec<String> = found.iter().map(|c| describe(&graph, c)).collect();
    assert!(found.is_empty(), "{}", text.join("\n"));
    // The scan sees the imports it is about.
    assert!(graph["parse"].contains_key("selectors"), "{graph:?}");
    assert!(graph["selectors"].contains_key("text"), "{graph:?}");
    assert!(
        graph["explain/status"].contains_key("explain/report"),
        "{graph:?}"
    );
}
