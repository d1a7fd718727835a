//! Route parity: every HTTP API route in `template.yaml` is served by the function it points at,
//! every route a function serves is in the template, every non-local route of the local server
//! belongs to some function, and the event-driven functions have their triggers.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;
use shared::http::functions::{ALL, openapi_router};
use shared::http::openapi::{documented_operations, without_tag};

type Routes = BTreeSet<(String, String)>;

fn template() -> Value {
    serde_yaml::from_str(include_str!("../../template.yaml")).expect("template.yaml parses")
}

fn functions(t: &Value) -> BTreeMap<String, Value> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|r| {
            (
                r["Metadata"]["BuildProperties"]["Binary"]
                    .as_str()
                    .expect("Binary")
                    .to_owned(),
                r.clone(),
            )
        })
        .collect()
}

/// `(METHOD, path)` of a function's HttpApi events.
fn template_routes(f: &Value) -> Routes {
    f["Properties"]["Events"]
        .as_mapping()
        .map(|events| {
            events
                .values()
                .filter(|e| e["Type"].as_str() == Some("HttpApi"))
                .map(|e| {
                    (
                        e["Properties"]["Method"]
                            .as_str()
                            .expect("Method")
                            .to_uppercase(),
                        e["Properties"]["Path"].as_str().expect("Path").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `(METHOD, path)` a function's router serves, from its documented router. The root path is
/// the function URL's and is checked separately.
fn served_routes(function: &str) -> Routes {
    let doc = openapi_router(function)
        .expect("HTTP function")
        .split_for_parts()
        .1;
    documented_operations(&doc)
        .into_iter()
        .map(|(m, p)| (m.to_string(), p))
        .filter(|(_, p)| p != "/")
        .collect()
}

/// Differences between the template and the routers, as readable lines.
fn route_problems(t: &Value, served: &BTreeMap<String, Routes>) -> Vec<String> {
    let fns = functions(t);
    let mut out = Vec::new();
    for (name, f) in &fns {
        let declared = template_routes(f);
        let Some(serves) = served.get(name) else {
            if !declared.is_empty() {
                out.push(format!("{name}: has HttpApi events but is not an HTTP function in shared::http::functions"));
            }
            continue;
        };
        for r in declared.difference(serves) {
            out.push(format!(
                "{name}: template routes {} {} to it, but its router does not serve it",
                r.0, r.1
            ));
        }
        for r in serves.difference(&declared) {
            out.push(format!(
                "{name}: serves {} {}, but template.yaml has no HttpApi event for it",
                r.0, r.1
            ));
        }
    }
    for name in served.keys() {
        if !fns.contains_key(name) {
            out.push(format!(
                "{name}: an HTTP function missing from template.yaml"
            ));
        }
    }
    out
}

fn served_by_all() -> BTreeMap<String, Routes> {
    ALL.iter()
        .map(|f| (f.name.to_string(), served_routes(f.name)))
        .collect()
}

#[test]
fn template_http_routes_and_function_routers_match() {
    let p = route_problems(&template(), &served_by_all());
    assert!(p.is_empty(), "template.yaml vs routers:\n{}", p.join("\n"));
}

#[test]
fn a_route_removed_from_the_template_or_added_to_a_router_is_detected() {
    // Remove one HttpApi event from the auth function.
    let mut t = template();
    let res = t["Resources"].as_mapping_mut().expect("Resources");
    let auth = res
        .values_mut()
        .find(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some("auth"))
        .expect("auth function");
    let events = auth["Properties"]["Events"]
        .as_mapping_mut()
        .expect("events");
    let first = events.keys().next().cloned().expect("an event");
    events.remove(&first);
    let p = route_problems(&t, &served_by_all());
    assert!(
        p.iter()
            .any(|m| m.contains("but template.yaml has no HttpApi event")),
        "{p:?}"
    );

    // A router serving a route the template does not know.
    let mut served = served_by_all();
    served
        .get_mut("points")
        .expect("points")
        .insert(("GET".into(), "/points/secret".into()));
    let p = route_problems(&template(), &served);
    assert!(
        p.iter().any(|m| m.contains("serves GET /points/secret")),
        "{p:?}"
    );
}

#[test]
fn every_deployed_route_of_the_local_server_belongs_to_a_function() {
    // The local server serves every group plus local-only stand-ins (dev tools, /ws, /docs,
    // /resources): everything else must be deployed by some function.
    let local: Routes =
        documented_operations(&without_tag(shared::http::openapi::openapi(), "dev"))
            .into_iter()
            .map(|(m, p)| (m.to_string(), p))
            .collect();
    let deployed: Routes = served_by_all().into_values().flatten().collect();
    let local_only = ["/ws", "/docs"];
    let missing: Vec<_> = local
        .iter()
        .filter(|(_, p)| !local_only.contains(&p.as_str()))
        .filter(|r| !deployed.contains(*r))
        .collect();
    assert!(
        missing.is_empty(),
        "served locally but by no function: {missing:?}"
    );
}

#[test]
fn event_driven_functions_have_their_triggers() {
    let t = template();
    let fns = functions(&t);
    let events = |name: &str| {
        fns[name]["Properties"]["Events"]
            .as_mapping()
            .cloned()
            .unwrap_or_default()
    };
    let sync: Vec<_> = events("xendit-sync")
        .values()
        .filter(|e| e["Type"].as_str() == Some("Schedule"))
        .cloned()
        .collect();
    assert!(
        sync.iter()
            .any(|e| e["Properties"]["Schedule"].as_str() == Some("rate(2 hours)")),
        "xendit-sync runs rate(2 hours)"
    );
    let sqs: Vec<_> = events("notifier")
        .values()
        .filter(|e| e["Type"].as_str() == Some("SQS"))
        .cloned()
        .collect();
    assert!(
        sqs.iter().any(|e| e["Properties"]["FunctionResponseTypes"]
            .as_sequence()
            .is_some_and(|s| s
                .iter()
                .any(|v| v.as_str() == Some("ReportBatchItemFailures")))),
        "notifier reports partial batch failures"
    );
    assert!(
        fns["xendit-callback"]["Properties"]
            .get("FunctionUrlConfig")
            .is_some(),
        "xendit-callback has a function URL"
    );
    let route_keys: BTreeSet<String> = t["Resources"]
        .as_mapping()
        .expect("Resources")
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::ApiGatewayV2::Route"))
        .filter_map(|r| r["Properties"]["RouteKey"].as_str().map(String::from))
        .collect();
    for k in ["$connect", "$disconnect", "$default"] {
        assert!(
            route_keys.contains(k),
            "WebSocket route {k} in {route_keys:?}"
        );
    }
}
