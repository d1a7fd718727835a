//! `template.yaml` declares exactly the tables the code defines in `store::schema` (key schema,
//! GSIs, TTL), so what is deployed is what the local store and the conformance suite assume.

use serde_yaml::Value;
use shared::store::schema::{ALL, TableDef};

fn template() -> Value {
    serde_yaml::from_str(include_str!("../../template.yaml")).expect("template.yaml parses as YAML")
}

fn key_schema(v: &Value) -> Vec<(String, String)> {
    v.as_sequence()
        .expect("KeySchema is a list")
        .iter()
        .map(|k| {
            (
                k["AttributeName"]
                    .as_str()
                    .expect("AttributeName")
                    .to_owned(),
                k["KeyType"].as_str().expect("KeyType").to_owned(),
            )
        })
        .collect()
}

fn check_table(t: &Value, def: &TableDef) {
    let props = &t["Resources"][def.resource]["Properties"];
    assert_eq!(
        t["Resources"][def.resource]["Type"].as_str(),
        Some("AWS::DynamoDB::Table"),
        "{} must be a DynamoDB table",
        def.resource
    );
    assert_eq!(
        key_schema(&props["KeySchema"]),
        vec![
            (def.pk.to_owned(), "HASH".to_owned()),
            (def.sk.to_owned(), "RANGE".to_owned())
        ],
        "{} key schema",
        def.resource
    );
    let gsis = props["GlobalSecondaryIndexes"]
        .as_sequence()
        .cloned()
        .unwrap_or_default();
    let mut declared: Vec<(String, Vec<(String, String)>)> = gsis
        .iter()
        .map(|g| {
            (
                g["IndexName"].as_str().expect("IndexName").to_owned(),
                key_schema(&g["KeySchema"]),
            )
        })
        .collect();
    declared.sort();
    let mut expected: Vec<(String, Vec<(String, String)>)> = def
        .indexes
        .iter()
        .map(|i| {
            (
                i.name.to_owned(),
                vec![
                    (i.pk.to_owned(), "HASH".to_owned()),
                    (i.sk.to_owned(), "RANGE".to_owned()),
                ],
            )
        })
        .collect();
    expected.sort();
    assert_eq!(declared, expected, "{} GSIs", def.resource);
    for g in &gsis {
        assert_eq!(
            g["Projection"]["ProjectionType"].as_str(),
            Some("ALL"),
            "{} GSI projection",
            def.resource
        );
    }
    let ttl = &props["TimeToLiveSpecification"];
    assert_eq!(
        ttl["AttributeName"].as_str(),
        Some(def.ttl),
        "{} TTL attribute",
        def.resource
    );
    assert_eq!(
        ttl["Enabled"].as_bool(),
        Some(true),
        "{} TTL enabled",
        def.resource
    );
    let attrs: Vec<(String, String)> = props["AttributeDefinitions"]
        .as_sequence()
        .expect("AttributeDefinitions")
        .iter()
        .map(|a| {
            (
                a["AttributeName"].as_str().expect("name").to_owned(),
                a["AttributeType"].as_str().expect("type").to_owned(),
            )
        })
        .collect();
    let mut needed = vec![def.pk, def.sk];
    for i in def.indexes {
        needed.push(i.pk);
        needed.push(i.sk);
    }
    for n in needed {
        assert!(
            attrs.contains(&(n.to_owned(), "S".to_owned())),
            "{}: attribute {n} must be declared as S",
            def.resource
        );
    }
    assert_eq!(
        attrs.len(),
        def.indexes.len() * 2 + 2,
        "{}: no undeclared key attributes",
        def.resource
    );
}

#[test]
fn template_tables_match_the_schema_module() {
    let t = template();
    for def in ALL {
        check_table(&t, def);
    }
}

#[test]
fn a_drifted_template_is_detected() {
    // The check itself must be able to fail: rename the TTL attribute and expect a panic.
    let mut t = template();
    t["Resources"]["MainTable"]["Properties"]["TimeToLiveSpecification"]["AttributeName"] =
        Value::from("expires");
    let caught = std::panic::catch_unwind(|| check_table(&t, &shared::store::schema::MAIN));
    assert!(
        caught.is_err(),
        "a template with another TTL attribute must fail the check"
    );
}
