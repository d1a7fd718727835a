//! MongoDB collections exported with `mongoexport` (one extended-JSON document per line).

use std::path::Path;

use serde_json::Value;

/// Reads `{dir}/{collection}.json`; a missing file is an empty collection. Blank lines are
/// skipped; an unparseable line is an error naming its line number (never silently dropped).
pub fn read_collection(dir: &Path, collection: &str) -> Result<Vec<Value>, String> {
    let path = dir.join(format!("{collection}.json"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut docs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let doc: Value = serde_json::from_str(line)
            .map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))?;
        docs.push(doc);
    }
    Ok(docs)
}
