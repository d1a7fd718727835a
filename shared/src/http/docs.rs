//! `GET /docs`: the OpenAPI document as a browsable HTML page, rendered on the server (the
//! content security policy forbids inline scripts and no CDN is reachable, so no Swagger UI).

use std::fmt::Write;

use serde_json::Value;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn pretty(v: &Value) -> String {
    escape(&serde_json::to_string_pretty(v).unwrap_or_default())
}

const METHODS: [&str; 8] = [
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}\
code,pre{font-family:ui-monospace,monospace}pre{background:#f6f8fa;padding:.6rem;overflow:auto;font-size:.85rem}\
.op{border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.5rem 1rem}\
.m{display:inline-block;min-width:4.5rem;font-weight:bold;text-transform:uppercase}\
.get{color:#0a6}.post{color:#06c}.put{color:#b70}.delete{color:#c22}.patch{color:#850}\
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}\
nav a{margin-right:1rem}";

/// The page for a serialised OpenAPI document.
pub fn render(doc: &Value) -> String {
    let info = doc.get("info").cloned().unwrap_or(Value::Null);
    let title = escape(text(&info, "title"));
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>{STYLE}</style></head><body><h1>{title} <small>{}</small></h1><p>{}</p>\
         <nav><a href=\"/openapi.json\">openapi.json</a><a href=\"#schemas\">Schemas</a>\
         <a href=\"#security\">Security schemes</a></nav>",
        escape(text(&info, "version")),
        escape(text(&info, "description")),
    );
    let empty = serde_json::Map::new();
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    h.push_str("<h2>Operations</h2>");
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            render_operation(&mut h, method, path, op);
        }
    }
    let components = doc.get("components").cloned().unwrap_or(Value::Null);
    h.push_str("<h2 id=\"security\">Security schemes</h2>");
    if let Some(schemes) = components.get("securitySchemes").and_then(Value::as_object) {
        for (name, scheme) in schemes {
            let _ = write!(
                h,
                "<h3 id=\"security-{0}\">{0}</h3><pre>{1}</pre>",
                escape(name),
                pretty(scheme)
            );
        }
    }
    h.push_str("<h2 id=\"schemas\">Schemas</h2>");
    if let Some(schemas) = components.get("schemas").and_then(Value::as_object) {
        for (name, schema) in schemas {
            let _ = write!(
                h,
                "<h3 id=\"schema-{0}\">{0}</h3><pre>{1}</pre>",
                escape(name),
                pretty(schema)
            );
        }
    }
    h.push_str("</body></html>");
    h
}

fn render_operation(h: &mut String, method: &str, path: &str, op: &Value) {
    let _ = write!(
        h,
        "<section class=\"op\"><h3><span class=\"m {method}\">{method}</span> <code>{}</code></h3>",
        escape(path)
    );
    let summary = text(op, "summary");
    if !summary.is_empty() {
        let _ = write!(h, "<p><strong>{}</strong></p>", escape(summary));
    }
    let description = text(op, "description");
    if !description.is_empty() && description != summary {
        let _ = write!(h, "<p>{}</p>", escape(description));
    }
    if let Some(security) = op.get("security").and_then(Value::as_array) {
        let names: Vec<String> = security
            .iter()
            .map(|req| match req.as_object() {
                Some(o) if o.is_empty() => "none".to_owned(),
                Some(o) => o.keys().cloned().collect::<Vec<_>>().join(" + "),
                None => String::new(),
            })
            .collect();
        let _ = write!(h, "<p>Security: {}</p>", escape(&names.join(" or ")));
    }
    if let Some(params) = op.get("parameters").and_then(Value::as_array) {
        h.push_str("<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>required</th><th>description</th><th>schema</th></tr>");
        for p in params {
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
                escape(text(p, "name")),
                escape(text(p, "in")),
                p.get("required").and_then(Value::as_bool).unwrap_or(false),
                escape(text(p, "description")),
                pretty(p.get("schema").unwrap_or(&Value::Null)),
            );
        }
        h.push_str("</table>");
    }
    if let Some(body) = op.get("requestBody") {
        h.push_str("<h4>Request body</h4>");
        render_content(h, body);
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        h.push_str("<h4>Responses</h4>");
        for (status, res) in responses {
            let _ = write!(
                h,
                "<p><strong>{}</strong> {}</p>",
                escape(status),
                escape(text(res, "description"))
            );
            render_content(h, res);
        }
    }
    h.push_str("</section>");
}

fn render_content(h: &mut String, holder: &Value) {
    let Some(content) = holder.get("content").and_then(Value::as_object) else {
        return;
    };
    for (media, c) in content {
        let _ = write!(
            h,
            "<p><code>{}</code></p><pre>{}</pre>",
            escape(media),
            pretty(c.get("schema").unwrap_or(&Value::Null))
        );
    }
}
