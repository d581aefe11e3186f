//! The house's shape, read from the `use` lines of `src/`: every file imports only from its
//! own layer or the layers below it, and no files import each other in a circle. The order of
//! the layers is written once, in the `layers` block of `docs/ARCHITECTURE.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A file of `src/` as a module path: `src/db/numbers.rs` is `db::numbers`, `src/db/mod.rs`
/// is `db`.
type Module = Vec<String>;

/// One import: the file that imports, and the file it imports from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Import {
    from: String,
    to: String,
}

/// The layers from the ground up, each the top-level modules in it, read from the fenced
/// block marked `layers` (written top floor first, one layer a line).
fn layers_of(architecture: &str) -> Vec<Vec<String>> {
    let block = architecture
        .split("```layers")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/ARCHITECTURE.md has a ```layers block");
    let mut layers: Vec<Vec<String>> = block
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .map(|line| {
            line.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|layer| !layer.is_empty())
        .collect();
    layers.reverse();
    layers
}

fn module_of(path: &str) -> Module {
    let path = path.strip_suffix(".rs").unwrap_or(path);
    let mut parts: Vec<String> = path.split('/').map(str::to_owned).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The text of a file without its comments, its string literals' contents and its test
/// module (`#[cfg(test)] mod tests` runs to the end of the file, by this house's habit): what
/// tests and docs mention is not what the code depends on.
fn code_of(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let end = (0..lines.len())
        .find(|&i| {
            lines[i].trim() == "#[cfg(test)]"
                && lines
                    .get(i + 1)
                    .is_some_and(|next| next.trim_start().starts_with("mod tests"))
        })
        .unwrap_or(lines.len());
    let source = lines[..end].join("\n");
    let chars: Vec<char> = source.chars().collect();
    let mut code = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        match rest {
            // A comment, to the end of its line.
            ['/', '/', ..] => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            // A block comment.
            ['/', '*', ..] => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
            }
            // A quote as a character, not a string.
            ['\'', '"', '\'', ..] => i += 3,
            ['\'', '\\', '"', '\'', ..] => i += 4,
            // A raw string: r"…", r#"…"#.
            ['r', '"', ..] | ['r', '#', ..]
                if i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') =>
            {
                let hashes = rest[1..].iter().take_while(|c| **c == '#').count();
                if rest.get(1 + hashes) != Some(&'"') {
                    code.push('r');
                    i += 1;
                    continue;
                }
                i += 2 + hashes;
                while i < chars.len()
                    && !(chars[i] == '"'
                        && chars[i + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|c| **c == '#')
                            .count()
                            == hashes)
                {
                    i += 1;
                }
                i += 1 + hashes;
                code.push_str("\"\"");
            }
            // A string, over as many lines as it takes.
            ['"', ..] => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                code.push_str("\"\"");
            }
            [c, ..] => {
                code.push(*c);
                i += 1;
            }
            [] => break,
        }
    }
    code
}

/// The paths a `use` tree names (`crate::{a::b, c::{d, e}}` names `crate::a::b`,
/// `crate::c::d` and `crate::c::e`), each as its segments.
fn use_paths(tree: &str) -> Vec<Vec<String>> {
    let alias = regex::Regex::new(r"\s+as\s+\w+").expect("re");
    let tree: String = alias
        .replace_all(tree, "")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut paths = Vec::new();
    expand(&tree, Vec::new(), &mut paths);
    paths
}

fn expand(tree: &str, prefix: Vec<String>, paths: &mut Vec<Vec<String>>) {
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim_end_matches("::");
        let mut prefix = prefix;
        prefix.extend(segments(head));
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        for item in top_level_items(inner) {
            expand(item, prefix.clone(), paths);
        }
    } else {
        let mut path = prefix;
        path.extend(segments(tree));
        paths.push(path);
    }
}

fn segments(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split("::")
        .filter(|s| !s.is_empty() && *s != "*")
        .map(str::to_owned)
}

fn top_level_items(list: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&list[start..]);
    items.into_iter().filter(|i| !i.is_empty()).collect()
}

/// A path as seen from `module`, resolved to the module it starts from (`crate`, `super`,
/// `self`); `None` for a path into another crate or a child module named bare.
fn absolute(module: &Module, path: &[String]) -> Option<Module> {
    let (first, rest) = path.split_first()?;
    let mut base = match first.as_str() {
        "crate" => Vec::new(),
        "self" => module.clone(),
        "super" => module[..module.len().saturating_sub(1)].to_vec(),
        _ => return None,
    };
    let mut rest = rest.iter().peekable();
    while rest.peek().is_some_and(|s| *s == "super") {
        rest.next();
        base.pop();
    }
    base.extend(rest.filter(|s| *s != "self").cloned());
    Some(base)
}

/// The file a module path lands in: the deepest of its prefixes that is a file of the tree.
fn file_for(files: &BTreeMap<Module, String>, path: &Module) -> Option<String> {
    (1..=path.len())
        .rev()
        .find_map(|n| files.get(&path[..n].to_vec()).cloned())
}

/// Every import between two files of the tree, `sources` being each file's path below `src/`
/// and its text.
fn imports(sources: &[(String, String)]) -> BTreeSet<Import> {
    let files: BTreeMap<Module, String> = sources
        .iter()
        .map(|(path, _)| (module_of(path), path.clone()))
        .collect();
    let use_statement = regex::Regex::new(r"\buse\s+((?:crate|super|self)\b[^;]*);").expect("re");
    let inline = regex::Regex::new(r"\b(?:crate|super|self)(?:::\w+)+").expect("re");
    let mut found = BTreeSet::new();
    for (path, text) in sources {
        let module = module_of(path);
        let code = code_of(text);
        let mut named: Vec<Vec<String>> = use_statement
            .captures_iter(&code)
            .flat_map(|c| use_paths(&c[1]))
            .collect();
        let rest = use_statement.replace_all(&code, "");
        named.extend(
            inline
                .find_iter(&rest)
                .map(|m| segments(m.as_str()).collect()),
        );
        for target in named.iter().filter_map(|p| absolute(&module, p)) {
            if let Some(to) = file_for(&files, &target) {
                if &to != path {
                    found.insert(Import {
                        from: path.clone(),
                        to,
                    });
                }
            }
        }
    }
    found
}

/// Each import from a layer to one above it, and each file in no layer, in words.
fn uphill(layers: &[Vec<String>], imports: &BTreeSet<Import>) -> Vec<String> {
    let level = |file: &str| {
        let top = module_of(file).into_iter().next().unwrap_or_default();
        layers.iter().position(|layer| layer.contains(&top))
    };
    let mut problems = BTreeSet::new();
    for import in imports {
        match (level(&import.from), level(&import.to)) {
            (Some(from), Some(to)) if to > from => {
                problems.insert(format!(
                    "src/{} imports src/{}, a layer above it",
                    import.from, import.to
                ));
            }
            (Some(_), Some(_)) => {}
            (from, to) => {
                for (file, level) in [(&import.from, from), (&import.to, to)] {
                    if level.is_none() {
                        problems.insert(format!("src/{file} is in no layer"));
                    }
                }
            }
        }
    }
    problems.into_iter().collect()
}

/// The circles among the files: each set of two or more files that reach each other.
fn circles(imports: &BTreeSet<Import>) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for import in imports {
        next.entry(&import.from).or_default().push(&import.to);
        next.entry(&import.to).or_default();
    }
    let reach = |start: &str| {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![start]);
        while let Some(file) = todo.pop() {
            for &to in next.get(file).into_iter().flatten() {
                if seen.insert(to) {
                    todo.push(to);
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&str, BTreeSet<&str>> = next.keys().map(|&f| (f, reach(f))).collect();
    let mut circles = BTreeSet::new();
    for (&file, from_it) in &reached {
        let circle: Vec<String> = from_it
            .iter()
            .filter(|&&other| reached[other].contains(file))
            .map(|f| format!("src/{f}"))
            .collect();
        if circle.len() > 1 {
            circles.insert(circle);
        }
    }
    circles.into_iter().collect()
}

fn sources_below(root: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).expect("a readable folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let name = path
                    .strip_prefix(root)
                    .expect("below the root")
                    .to_string_lossy()
                    .replace('\\', "/");
                // The crate's root and the binary only declare and start the modules.
                if name != "lib.rs" && name != "main.rs" {
                    let text = std::fs::read_to_string(&path).expect("a readable file");
                    found.push((name, text));
                }
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_file_of_src_imports_only_its_own_layer_and_those_below_with_no_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let architecture =
        std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).expect("the architecture");
    let layers = layers_of(&architecture);
    let sources = sources_below(&root.join("src"));
    let imports = imports(&sources);
    assert!(
        imports.len() > 100,
        "the imports were not read: {}",
        imports.len()
    );
    let uphill = uphill(&layers, &imports);
    let circles = circles(&imports);
    assert!(
        uphill.is_empty() && circles.is_empty(),
        "imports that run back up:\n  {}\ncircles:\n  {}",
        uphill.join("\n  "),
        circles
            .iter()
            .map(|c| c.join(" -> "))
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

fn tree(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
        .collect()
}

const TWO_LAYERS: &str = "```layers\nstore\ndb domain\n```";

#[test]
fn an_import_from_a_lower_layer_to_a_higher_one_is_reported() {
    let sources = tree(&[
        (
            "store/mod.rs",
            "use crate::db::{self as database, numbers::lock};",
        ),
        ("db/mod.rs", ""),
        (
            "db/numbers.rs",
            "pub fn f() { crate::store::note(); }\nuse super::Row;",
        ),
        ("domain/mod.rs", ""),
    ]);
    let imports = imports(&sources);
    assert!(imports.contains(&Import {
        from: "store/mod.rs".into(),
        to: "db/numbers.rs".into()
    }));
    assert_eq!(
        uphill(&layers_of(TWO_LAYERS), &imports),
        vec!["src/db/numbers.rs imports src/store/mod.rs, a layer above it".to_owned()]
    );
}

#[test]
fn a_circle_is_reported_and_comments_strings_and_tests_are_not_imports() {
    let sources = tree(&[
        ("db/a.rs", "use crate::db::b::X;"),
        (
            "db/b.rs",
            "pub fn f() { super::c::g() }\n// crate::store::x\nconst S: &str = \"crate::store::y\";\n\
             const T: &str = \"two\n lines crate::store::z\";\nconst Q: char = '\"';\n\
             const R: &str = r#\"a \"crate::store::w\"\"#;\n/* crate::store::v */",
        ),
        (
            "db/c.rs",
            "use crate::{db::a, domain::{self}};\n#[cfg(test)]\nmod tests {\n use crate::store::Z;\n}",
        ),
        (
            "db/d.rs",
            "const S: &str = \"a\nb\"; fn f() { crate::store::g() }\nconst Q: char = '\"'; fn h() { crate::store::i() }",
        ),
        ("domain/mod.rs", ""),
        ("store/mod.rs", ""),
    ]);
    let imports = imports(&sources);
    assert_eq!(
        circles(&imports),
        vec![vec![
            "src/db/a.rs".to_owned(),
            "src/db/b.rs".to_owned(),
            "src/db/c.rs".to_owned()
        ]]
    );
    // Only the code after a string over two lines, or after a quote as a character, imports.
    let up = uphill(&layers_of(TWO_LAYERS), &imports);
    assert_eq!(
        up,
        vec!["src/db/d.rs imports src/store/mod.rs, a layer above it".to_owned()]
    );
    assert!(imports
        .iter()
        .all(|i| i.to != "store/mod.rs" || i.from == "db/d.rs"));
}

#[test]
fn a_file_in_no_layer_is_reported() {
    let sources = tree(&[("db/mod.rs", "use crate::flows::x;"), ("flows/mod.rs", "")]);
    assert_eq!(
        uphill(&layers_of(TWO_LAYERS), &imports(&sources)),
        vec!["src/flows/mod.rs is in no layer".to_owned()]
    );
}
