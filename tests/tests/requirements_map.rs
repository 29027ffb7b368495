//! Keeps `docs/requirements-map.md` honest against the shared FAPI checklist
//! (`docs/fapi-requirements.md`, the project's own copy of the checklist).
//!
//! Fails when:
//! * a requirement whose level contains `MUST` has no row in the map;
//! * a row names an ID that is not in the checklist (or names one twice);
//! * a row has a status other than `tested`, `planned`, `n/a`;
//! * a `tested` row names no test;
//! * a named test (`path/from/repo/root.rs::test_fn`) does not exist: the file is missing or has no
//!   `fn test_fn`.
//!
//! The checklist path can be overridden with `STRONGROOM_REQUIREMENTS_FILE`. If the checklist is
//! absent the test is skipped, except when `CI=true`, where it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One requirement line of the checklist: `- **ID** · LEVEL · [applies-to] — text`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    id: String,
    level: String,
    line: usize,
}

impl Requirement {
    /// Any level that contains the keyword `MUST` (`MUST`, `MUST NOT`, `MUST (derived)`,
    /// `MUST/SHOULD`, `SHOULD (F2: MUST derived)`, ...) needs a row in the map.
    fn is_mandatory(&self) -> bool {
        self.level.split(|c: char| !c.is_ascii_alphabetic()).any(|word| word == "MUST")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Tested,
    Planned,
    NotApplicable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    id: String,
    status: Status,
    detail: String,
    line: usize,
}

/// A test named in a row as `path/to/file.rs::test_name` (or `file.rs::module::test_name`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct TestRef {
    path: String,
    name: String,
}

/// Parses every requirement line of the checklist. Lines that merely start with a bold bullet but
/// have no ` · LEVEL · ` part are ignored.
fn parse_requirements(text: &str) -> Vec<Requirement> {
    let mut out = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        let Some(rest) = line.strip_prefix("- **").or_else(|| line.strip_prefix("* **")) else {
            continue;
        };
        let Some(end) = rest.find("**") else {
            continue;
        };
        let id = rest[..end].trim();
        let after = rest[end + 2..].trim_start();
        let Some(after) = after.strip_prefix('·') else {
            continue;
        };
        let level = after.split('·').next().unwrap_or("").trim();
        if id.is_empty() || level.is_empty() {
            continue;
        }
        out.push(Requirement { id: id.to_string(), level: level.to_string(), line: idx + 1 });
    }
    out
}

fn split_cells(line: &str) -> Vec<String> {
    let inner = line.trim();
    let inner = inner.strip_prefix('|').unwrap_or(inner);
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    inner.split('|').map(|c| c.trim().to_string()).collect()
}

fn strip_markup(cell: &str) -> &str {
    cell.trim().trim_matches(|c| c == '`' || c == '*').trim()
}

fn is_separator(cells: &[String]) -> bool {
    cells.iter().all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')))
}

/// Parses the map table: the Markdown table whose header starts `| ID | Level | Status |`.
/// Other tables in the document are ignored. Returns the rows and any format errors.
fn parse_map(text: &str) -> (Vec<Row>, Vec<String>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut in_map = false;
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = raw.trim();
        if !line.starts_with('|') {
            in_map = false;
            continue;
        }
        let cells = split_cells(line);
        let is_header = cells.len() >= 3
            && strip_markup(&cells[0]).eq_ignore_ascii_case("id")
            && strip_markup(&cells[2]).eq_ignore_ascii_case("status");
        if is_header {
            in_map = true;
            continue;
        }
        if !in_map || is_separator(&cells) {
            continue;
        }
        if cells.len() < 4 {
            errors.push(format!(
                "requirements-map.md:{line_no}: expected 4 cells (ID | Level | Status | Test(s) / reason), found {}",
                cells.len()
            ));
            continue;
        }
        let id = strip_markup(&cells[0]).to_string();
        if id.is_empty() {
            errors.push(format!("requirements-map.md:{line_no}: empty ID cell"));
            continue;
        }
        let status = match strip_markup(&cells[2]).to_ascii_lowercase().as_str() {
            "tested" => Status::Tested,
            "planned" => Status::Planned,
            "n/a" => Status::NotApplicable,
            other => {
                errors.push(format!(
                    "requirements-map.md:{line_no}: `{id}` has status `{other}`; use tested, planned or n/a"
                ));
                continue;
            }
        };
        rows.push(Row { id, status, detail: cells[3..].join("|"), line: line_no });
    }
    (rows, errors)
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Finds every `path/to/file.rs::name` in a cell.
fn extract_test_refs(detail: &str) -> Vec<TestRef> {
    let token_char = |c: char| is_ident_char(c) || matches!(c, '.' | '/' | '-' | ':');
    let mut out = Vec::new();
    for token in detail.split(|c: char| !token_char(c)) {
        let Some(pos) = token.find(".rs::") else {
            continue;
        };
        let path = token[..pos + 3].trim_start_matches("./");
        let tail = &token[pos + 5..];
        let name: String = tail
            .rsplit("::")
            .find(|seg| !seg.is_empty())
            .unwrap_or("")
            .chars()
            .take_while(|&c| is_ident_char(c))
            .collect();
        if path.len() > 3 && !name.is_empty() {
            out.push(TestRef { path: path.to_string(), name });
        }
    }
    out
}

/// True if `source` contains `fn name` as a whole word.
fn defines_fn(source: &str, name: &str) -> bool {
    let needle = format!("fn {name}");
    source.match_indices(&needle).any(|(pos, _)| {
        let before_ok = source[..pos].chars().next_back().is_none_or(|c| !is_ident_char(c));
        let after_ok = source[pos + needle.len()..].chars().next().is_none_or(|c| !is_ident_char(c));
        before_ok && after_ok
    })
}

/// Cross-checks the map against the checklist. `read_source` returns the contents of a file
/// given its path relative to the repository root, or `None` if it does not exist.
fn check(requirements: &[Requirement], rows: &[Row], read_source: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let mut errors = Vec::new();

    let mut known: BTreeMap<&str, Vec<&Requirement>> = BTreeMap::new();
    for r in requirements {
        known.entry(r.id.as_str()).or_default().push(r);
    }

    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for row in rows {
        if let Some(first) = seen.insert(row.id.as_str(), row.line) {
            errors.push(format!("requirements-map.md:{}: `{}` already has a row at line {first}", row.line, row.id));
        }
        if !known.contains_key(row.id.as_str()) {
            errors.push(format!(
                "requirements-map.md:{}: `{}` is not a requirement ID in fapi-requirements.md",
                row.line, row.id
            ));
        }
    }

    for (id, reqs) in &known {
        if reqs.iter().any(|r| r.is_mandatory()) && !seen.contains_key(id) {
            let r = reqs.iter().find(|r| r.is_mandatory()).unwrap();
            errors.push(format!(
                "`{id}` ({}, fapi-requirements.md:{}) has no row in requirements-map.md",
                r.level, r.line
            ));
        }
    }

    let mut cache: BTreeMap<String, Option<String>> = BTreeMap::new();
    for row in rows {
        let refs = extract_test_refs(&row.detail);
        if row.status == Status::Tested && refs.is_empty() {
            errors.push(format!(
                "requirements-map.md:{}: `{}` is `tested` but names no test (write `path/to/file.rs::test_name`)",
                row.line, row.id
            ));
        }
        for r in refs {
            if Path::new(&r.path).is_absolute() || r.path.split('/').any(|seg| seg == "..") {
                errors.push(format!(
                    "requirements-map.md:{}: `{}` names `{}`; test paths must be relative to the repository root",
                    row.line, row.id, r.path
                ));
                continue;
            }
            let source = cache.entry(r.path.clone()).or_insert_with(|| read_source(&r.path));
            match source {
                None => errors.push(format!(
                    "requirements-map.md:{}: `{}` names `{}::{}` but `{}` does not exist",
                    row.line, row.id, r.path, r.name, r.path
                )),
                Some(src) if !defines_fn(src, &r.name) => errors.push(format!(
                    "requirements-map.md:{}: `{}` names `{}::{}` but `{}` has no `fn {}`",
                    row.line, row.id, r.path, r.name, r.path, r.name
                )),
                Some(_) => {}
            }
        }
    }
    errors
}

#[test]
fn requirements_map_covers_every_requirement() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo_root = manifest_dir.parent().expect("tests crate lives inside the workspace").to_path_buf();
    let checklist = std::env::var_os("STRONGROOM_REQUIREMENTS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root.join("docs/fapi-requirements.md"));

    let req_text =
        std::fs::read_to_string(&checklist).unwrap_or_else(|e| panic!("cannot read {}: {e}", checklist.display()));
    let map_path = repo_root.join("docs/requirements-map.md");
    let map_text =
        std::fs::read_to_string(&map_path).unwrap_or_else(|e| panic!("cannot read {}: {e}", map_path.display()));

    let requirements = parse_requirements(&req_text);
    assert!(
        !requirements.is_empty(),
        "no `- **ID** · LEVEL · [...]` lines found in {}; has its format changed?",
        checklist.display()
    );
    let (rows, mut errors) = parse_map(&map_text);
    if rows.is_empty() {
        errors.push("requirements-map.md has no table rows under `| ID | Level | Status | ... |`".into());
    }
    let read_source = |rel: &str| std::fs::read_to_string(repo_root.join(rel)).ok();
    errors.extend(check(&requirements, &rows, &read_source));

    let ids: BTreeSet<&str> = requirements.iter().map(|r| r.id.as_str()).collect();
    assert!(
        errors.is_empty(),
        "docs/requirements-map.md is out of step with {} ({} requirement IDs, {} rows):\n  - {}",
        checklist.display(),
        ids.len(),
        rows.len(),
        errors.join("\n  - ")
    );
}

mod parser {
    use super::*;

    const CHECKLIST: &str = "\
# Title

`- **ID** · LEVEL · [applies-to] — requirement.`

## 1. General

- **F2SP-5.2.1-1** · MUST · [F2] — TLS only. **Test:** x.
- **F2SP-5.2.1-4** · SHOULD · [both] — DNSSEC.
- **F1A-8.6-1/2/3** · MUST / SHOULD NOT / MUST NOT · [F1A] — algs.
- **F2SP-5.3.2.1-13(JAR)** · MUST · [F2, F2MS] ⚠️ — skew.
- **F2SP-5.4.3 / F1A-8.11** · MUST · [both] — kid.
- **R9126-5** · SHOULD (F2: MUST derived) · [F2] — PAR metadata.
- **F2SP-drafts-aud** · (history) · [F2] ⚠️ — old drafts.
- **R8705-5** · MAY · [both] — aliases.
- **R8705-5** · MUST (derived) · [both] — aliases must do mTLS.
- **Not a requirement**: just bold text.
1. **Numbered** · MUST · [x] — not a bullet.
";

    fn ids(reqs: &[Requirement]) -> Vec<&str> {
        reqs.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn parses_requirement_lines_with_odd_ids() {
        let reqs = parse_requirements(CHECKLIST);
        assert_eq!(
            ids(&reqs),
            [
                "F2SP-5.2.1-1",
                "F2SP-5.2.1-4",
                "F1A-8.6-1/2/3",
                "F2SP-5.3.2.1-13(JAR)",
                "F2SP-5.4.3 / F1A-8.11",
                "R9126-5",
                "F2SP-drafts-aud",
                "R8705-5",
                "R8705-5",
            ]
        );
        assert_eq!(reqs[2].level, "MUST / SHOULD NOT / MUST NOT");
        assert_eq!(reqs[5].level, "SHOULD (F2: MUST derived)");
        assert_eq!(reqs[0].line, 7);
    }

    #[test]
    fn mandatory_levels() {
        let level = |l: &str| Requirement { id: "X".into(), level: l.into(), line: 1 };
        for l in [
            "MUST",
            "MUST NOT",
            "MUST (derived)",
            "MUST (if nonces used)",
            "MUST/SHOULD",
            "SHOULD/MUST",
            "MUST / MUST NOT",
        ] {
            assert!(level(l).is_mandatory(), "{l}");
        }
        for l in ["SHOULD", "SHOULD NOT", "MAY", "(history)", "(note)", "MUSTARD"] {
            assert!(!level(l).is_mandatory(), "{l}");
        }
    }

    #[test]
    fn parses_map_rows_and_ignores_other_tables() {
        let map = "\
| Other | Table |
|---|---|
| `F2SP-5.2.1-1` | not a row |

| ID | Level | Status | Test(s) / reason |
|---|---|---|---|
| `F2SP-5.2.1-1` | MUST | tested | `tests/tests/tls.rs::rejects_tls11`, tests/tests/tls.rs::m::rejects_tls10 |
| F2SP-5.4.3 / F1A-8.11 | MUST | `planned` | planned: Foundation |
| `F1A-8.6-1/2/3` | MUST | N/A | n/a: reason |
| `R9126-5` | SHOULD | done | ? |
| `R8705-5` | MUST |
";
        let (rows, errors) = parse_map(map);
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(rows[0].id, "F2SP-5.2.1-1");
        assert_eq!(rows[0].status, Status::Tested);
        assert_eq!(rows[1].id, "F2SP-5.4.3 / F1A-8.11");
        assert_eq!(rows[1].status, Status::Planned);
        assert_eq!(rows[2].status, Status::NotApplicable);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("status `done`"), "{errors:?}");
        assert!(errors[1].contains("expected 4 cells"), "{errors:?}");
        assert_eq!(
            extract_test_refs(&rows[0].detail),
            [
                TestRef { path: "tests/tests/tls.rs".into(), name: "rejects_tls11".into() },
                TestRef { path: "tests/tests/tls.rs".into(), name: "rejects_tls10".into() },
            ]
        );
    }

    #[test]
    fn extracts_no_refs_from_plain_reasons() {
        assert!(extract_test_refs("planned: FAPI 2.0 flow").is_empty());
        assert!(extract_test_refs("n/a: see F2SP-5.3.2.1-4/5 and lib.rs").is_empty());
        assert_eq!(
            extract_test_refs("(./crates/server/src/lib.rs::tests::works)"),
            [TestRef { path: "crates/server/src/lib.rs".into(), name: "works".into() }]
        );
    }

    #[test]
    fn fn_lookup_is_whole_word() {
        let src = "#[test]\nfn alpha_beta() {}\nasync fn gamma<T>() {}\n";
        assert!(defines_fn(src, "alpha_beta"));
        assert!(defines_fn(src, "gamma"));
        assert!(!defines_fn(src, "alpha"));
        assert!(!defines_fn(src, "beta"));
    }

    fn run(map: &str) -> Vec<String> {
        let reqs = parse_requirements(CHECKLIST);
        let (rows, mut errors) = parse_map(map);
        let files = |p: &str| match p {
            "tests/tests/tls.rs" => Some("#[test]\nfn rejects_tls11() {}\n".to_string()),
            _ => None,
        };
        errors.extend(check(&reqs, &rows, &files));
        errors
    }

    const HEADER: &str = "| ID | Level | Status | Test(s) / reason |\n|---|---|---|---|\n";
    const COMPLETE: &str = "\
| `F2SP-5.2.1-1` | MUST | tested | tests/tests/tls.rs::rejects_tls11 |
| `F1A-8.6-1/2/3` | MUST | planned | planned: Foundation |
| `F2SP-5.3.2.1-13(JAR)` | MUST | planned | planned: Message signing |
| `F2SP-5.4.3 / F1A-8.11` | MUST | planned | planned: Foundation |
| `R9126-5` | SHOULD | planned | planned: Foundation |
| `R8705-5` | MAY; MUST (derived) | n/a | n/a: reason |
";

    #[test]
    fn complete_map_passes() {
        assert_eq!(run(&format!("{HEADER}{COMPLETE}")), Vec::<String>::new());
    }

    #[test]
    fn missing_mandatory_row_fails_but_optional_may_be_absent() {
        let map = format!(
            "{HEADER}{}",
            COMPLETE.replace("| `F2SP-5.4.3 / F1A-8.11` | MUST | planned | planned: Foundation |\n", "")
        );
        let errors = run(&map);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("`F2SP-5.4.3 / F1A-8.11`"), "{errors:?}");
        // F2SP-5.2.1-4 (SHOULD) and F2SP-drafts-aud (history) have no row and that is fine.
    }

    #[test]
    fn unknown_and_duplicate_ids_fail() {
        let map = format!(
            "{HEADER}{COMPLETE}| `F2SP-9.9.9` | MUST | planned | planned: Foundation |\n| `R9126-5` | SHOULD | planned | planned: Foundation |\n"
        );
        let errors = run(&map);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("`F2SP-9.9.9` is not a requirement ID")));
        assert!(errors.iter().any(|e| e.contains("`R9126-5` already has a row")));
    }

    #[test]
    fn tested_without_test_fails() {
        let map = format!(
            "{HEADER}{}",
            COMPLETE.replace("tested | tests/tests/tls.rs::rejects_tls11", "tested | see TLS suite")
        );
        let errors = run(&map);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("names no test"), "{errors:?}");
    }

    #[test]
    fn missing_file_or_fn_fails() {
        let map = format!(
            "{HEADER}{}",
            COMPLETE.replace(
                "tests/tests/tls.rs::rejects_tls11",
                "tests/tests/tls.rs::rejects_tls10, tests/tests/nope.rs::x, ../etc/passwd.rs::y"
            )
        );
        let errors = run(&map);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("has no `fn rejects_tls10`"), "{errors:?}");
        assert!(errors[1].contains("`tests/tests/nope.rs` does not exist"), "{errors:?}");
        assert!(errors[2].contains("relative to the repository root"), "{errors:?}");
    }
}
