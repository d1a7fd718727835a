//! The README's configuration table lists exactly the variables the code reads: the
//! configuration (recorded through `Config::from_lookup`, in both backends), the telemetry
//! switches, `USERSTATE_SECRETS`, and the environment fallbacks of the CLI's flags.

use std::cell::RefCell;
use std::collections::BTreeSet;

use shared::config::Config;

const README: &str = include_str!("../../README.md");

/// The names in the first column of the README's configuration table.
fn documented() -> BTreeSet<String> {
    let start = README
        .find("## Configuration")
        .expect("README has a Configuration section");
    let section = &README[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    section[..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| {
            let cell = l.split('|').nth(1).unwrap_or_default();
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every name `Config::from_lookup` asks for, in local and in aws mode.
fn read_by_config() -> BTreeSet<String> {
    let seen = RefCell::new(BTreeSet::new());
    for backend in ["local", "aws"] {
        let _ = Config::from_lookup(|k| {
            seen.borrow_mut().insert(k.to_owned());
            (k == "USERSTATE_BACKEND").then(|| backend.to_owned())
        });
    }
    seen.into_inner()
}

/// String literals passed as `{call}"NAME"` in `source`.
fn literals(source: &str, call: &str) -> BTreeSet<String> {
    source
        .split(call)
        .skip(1)
        .filter_map(|rest| rest.strip_prefix('"')?.split('"').next())
        .filter(|n| {
            n.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_configuration_table_lists_exactly_the_variables_the_code_reads() {
    let mut read = read_by_config();
    read.extend(literals(
        include_str!("../src/telemetry.rs"),
        "std::env::var(",
    ));
    read.insert(shared::secrets::SECRETS_VAR.to_owned());
    for cli in [
        include_str!("../../infra/src/serve.rs"),
        include_str!("../../infra/src/import.rs"),
        include_str!("../../infra/src/main.rs"),
    ] {
        read.extend(literals(cli, "env = "));
    }
    assert!(
        read.contains("MAIN_TABLE") && read.contains("USERSTATE_HOST"),
        "{read:?}"
    );
    let documented = documented();
    let undocumented: Vec<_> = read.difference(&documented).collect();
    let unread: Vec<_> = documented.difference(&read).collect();
    assert!(
        undocumented.is_empty() && unread.is_empty(),
        "read but not in the README table: {undocumented:?}; in the table but never read: {unread:?}"
    );
}
