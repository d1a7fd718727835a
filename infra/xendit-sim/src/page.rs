//! The hosted checkout page (`invoice_url`), with Pay / Expire buttons posting to the control
//! routes.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Html;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::XErr;
use crate::extract::Path;
use crate::state::Simulator;

/// HTML-escapes text from the invoice (description and reference are the app's input).
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[utoipa::path(
    get,
    path = "/_dev/xendit/web/{id}",
    tag = "dev",
    params(("id" = String, Path, description = "Xendit invoice id (or external id where stated)")),
    responses(
        (status = 200, description = "Hosted checkout page with Pay / Expire buttons", content_type = "text/html", body = String),
        (status = 404, description = "Invoice not found, or not in local mode (Xendit error)", body = Object),
    )
)]
async fn web(
    State(sim): State<Arc<Simulator>>,
    Path(id): Path<String>,
) -> Result<Html<String>, XErr> {
    let inv = sim.invoice(&id).ok_or_else(XErr::invoice_not_found)?;
    let s = |k: &str| esc(inv[k].as_str().unwrap_or(""));
    let id = esc(&id);
    let prefix = crate::PREFIX;
    Ok(Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Xendit simulator: invoice {id}</title></head>\
<body><h1>Local Xendit checkout</h1><dl><dt>Invoice</dt><dd>{id}</dd><dt>Reference</dt><dd>{ext}</dd>\
<dt>Amount</dt><dd>{cur} {amount}</dd><dt>Description</dt><dd>{desc}</dd><dt>Status</dt><dd id=\"status\">{status}</dd>\
<dt>Expires</dt><dd>{exp}</dd></dl>\
<form method=\"post\" action=\"{prefix}/invoices/{id}/pay\"><button type=\"submit\">Pay</button></form>\
<form method=\"post\" action=\"{prefix}/invoices/{id}/expire\"><button type=\"submit\">Expire</button></form>\
</body></html>",
        ext = s("external_id"),
        cur = s("currency"),
        amount = inv["amount"].as_i64().unwrap_or(0),
        desc = s("description"),
        status = s("status"),
        exp = s("expiry_date"),
    )))
}

/// The hosted page route.
pub(crate) fn routes() -> OpenApiRouter<Arc<Simulator>> {
    OpenApiRouter::new().routes(routes!(web))
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn invoice_text_cannot_inject_markup() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
