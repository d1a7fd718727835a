//! Every function and every dead-letter queue in `template.yaml` has its alarms, each alarm
//! notifies the alarm topic and is explained in `docs/OPERATIONS.md`.

use std::collections::BTreeMap;

use serde_yaml::Value;

fn template() -> Value {
    serde_yaml::from_str(include_str!("../../template.yaml")).expect("template.yaml parses")
}

const OPERATIONS: &str = include_str!("../../docs/OPERATIONS.md");

fn resources(t: &Value, kind: &str) -> BTreeMap<String, Value> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(k, r)| (k.as_str().unwrap_or_default().to_owned(), r.clone()))
        .collect()
}

/// The resource a `!Ref X` / `!GetAtt X.Attr` names.
fn referenced(v: &Value) -> String {
    match v {
        Value::Tagged(t) => referenced(&t.value),
        Value::String(s) => s.split('.').next().unwrap_or_default().to_owned(),
        _ => String::new(),
    }
}

/// Alarms by (metric, watched resource).
fn alarms(t: &Value) -> BTreeMap<(String, String), Value> {
    resources(t, "AWS::CloudWatch::Alarm")
        .into_values()
        .map(|a| {
            let p = &a["Properties"];
            let watched = p["Dimensions"]
                .as_sequence()
                .and_then(|d| d.first())
                .map(|d| referenced(&d["Value"]))
                .unwrap_or_default();
            let metric = p["MetricName"].as_str().unwrap_or_default().to_owned();
            ((metric, watched), a)
        })
        .collect()
}

#[test]
fn every_function_has_error_throttle_and_duration_alarms() {
    let t = template();
    let timeout_default = t["Globals"]["Function"]["Timeout"]
        .as_u64()
        .expect("Timeout");
    let alarms = alarms(&t);
    for (name, f) in resources(&t, "AWS::Serverless::Function") {
        for metric in ["Errors", "Throttles", "Duration"] {
            assert!(
                alarms.contains_key(&(metric.to_owned(), name.clone())),
                "{name} has no {metric} alarm"
            );
        }
        let timeout = f["Properties"]["Timeout"]
            .as_u64()
            .unwrap_or(timeout_default);
        let duration = &alarms[&("Duration".to_owned(), name.clone())]["Properties"];
        assert_eq!(
            duration["Threshold"].as_u64(),
            Some(timeout * 800),
            "{name}: p99 alarm at 80 % of its {timeout} s timeout"
        );
    }
}

#[test]
fn every_dead_letter_queue_and_the_api_are_watched() {
    let t = template();
    let alarms = alarms(&t);
    for (name, q) in resources(&t, "AWS::SQS::Queue") {
        if q["Properties"].get("RedrivePolicy").is_some() {
            continue; // a source queue; its dead-letter queue is watched
        }
        assert!(
            alarms.contains_key(&(
                "ApproximateNumberOfMessagesVisible".to_owned(),
                name.clone()
            )),
            "dead-letter queue {name} has no alarm"
        );
    }
    assert!(alarms.contains_key(&("5xx".to_owned(), "HttpApi".to_owned())));
    for metric in [
        "AmountMismatch",
        "UnknownInvoiceCallback",
        "CallbackTokenRejected",
        "SyncStepErrors",
    ] {
        assert!(alarms.keys().any(|(m, _)| m == metric), "no {metric} alarm");
    }
}

#[test]
fn every_alarm_notifies_the_topic_and_is_documented() {
    let t = template();
    for (name, a) in resources(&t, "AWS::CloudWatch::Alarm") {
        let p = &a["Properties"];
        let actions: Vec<String> = p["AlarmActions"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{name} has no AlarmActions"))
            .iter()
            .map(referenced)
            .collect();
        assert_eq!(actions, vec!["AlarmTopic"], "{name}");
        let description = p["AlarmDescription"].as_str().unwrap_or_default();
        let anchor = description
            .split("docs/OPERATIONS.md#")
            .nth(1)
            .and_then(|a| a.split(')').next())
            .unwrap_or_else(|| panic!("{name}: description names no OPERATIONS.md section"));
        let heading = format!("### {}", anchor.replace('-', " "));
        assert!(
            OPERATIONS.to_lowercase().contains(&heading),
            "docs/OPERATIONS.md has no section {heading:?} for {name}"
        );
    }
}
