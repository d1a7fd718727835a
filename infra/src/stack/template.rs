//! `template.yaml` as `userstate stack` deploys it: the SAM template read with its intrinsic
//! functions (`!Ref`, `!GetAtt`, `!Sub`, `!FindInMap`, `!If`, `!Split`, conditions) resolved
//! against the local stack's parameters and physical names, and the parts the stack serves
//! (functions with their environment, grants and events; queues; the WebSocket routes; CORS).

use std::collections::BTreeMap;

use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value as Json};
use serde_yaml::Value as Yaml;

/// Account, region and partition the stack pretends to run in (moto's default account).
#[derive(Clone, Debug)]
pub struct Env {
    pub account: String,
    pub region: String,
    pub stack_name: String,
}

impl Env {
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:aws:{service}:{}:{}:{resource}",
            self.region, self.account
        )
    }
}

/// The template as parsed, with the values intrinsics resolve to.
pub struct Template {
    raw: Yaml,
    pub env: Env,
    pub params: BTreeMap<String, String>,
    /// `Ref` of a resource (a table's name, a queue's URL, ...) by logical id.
    pub refs: BTreeMap<String, String>,
    /// `GetAtt` values, `Logical.Attr`.
    pub attrs: BTreeMap<String, String>,
}

impl Template {
    pub fn parse(text: &str, env: Env) -> anyhow::Result<Template> {
        let raw: Yaml = serde_yaml::from_str(text).context("template.yaml is not YAML")?;
        Ok(Template {
            raw,
            env,
            params: BTreeMap::new(),
            refs: BTreeMap::new(),
            attrs: BTreeMap::new(),
        })
    }

    /// Logical ids and `Type`s of every resource, in template order.
    pub fn resources(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(map) = self.raw.get("Resources").and_then(Yaml::as_mapping) {
            for (k, v) in map {
                if let (Some(id), Some(ty)) = (k.as_str(), v.get("Type").and_then(Yaml::as_str)) {
                    out.push((id.to_owned(), ty.to_owned()));
                }
            }
        }
        out
    }

    /// Parameter defaults, overridden by `given`; a parameter with neither is an error (as
    /// CloudFormation's "must have values").
    pub fn set_params(&mut self, given: &BTreeMap<String, String>) -> anyhow::Result<()> {
        let Some(map) = self.raw.get("Parameters").and_then(Yaml::as_mapping) else {
            return Ok(());
        };
        for (k, v) in map {
            let Some(name) = k.as_str() else { continue };
            let value = match given.get(name) {
                Some(v) => v.clone(),
                None => match v.get("Default") {
                    Some(d) => scalar(d).with_context(|| format!("parameter {name}"))?,
                    None => bail!("template parameter {name} has no default and no value"),
                },
            };
            self.params.insert(name.to_owned(), value);
        }
        Ok(())
    }

    /// A resource's `Properties` (or another top-level key) with every intrinsic resolved.
    pub fn resolved(&self, logical: &str, key: &str) -> anyhow::Result<Json> {
        let node = self
            .raw
            .get("Resources")
            .and_then(|r| r.get(logical))
            .and_then(|r| r.get(key));
        match node {
            Some(n) => self
                .resolve(n)
                .with_context(|| format!("{logical}.{key}"))
                .map(|v| v.unwrap_or(Json::Null)),
            None => Ok(Json::Null),
        }
    }

    /// `Globals.Function` resolved.
    pub fn globals_function(&self) -> anyhow::Result<Json> {
        match self.raw.get("Globals").and_then(|g| g.get("Function")) {
            Some(n) => Ok(self.resolve(n)?.unwrap_or(Json::Null)),
            None => Ok(Json::Null),
        }
    }

    /// Resolves intrinsics; `None` is `AWS::NoValue` (the key is dropped).
    fn resolve(&self, node: &Yaml) -> anyhow::Result<Option<Json>> {
        Ok(Some(match node {
            Yaml::Null => Json::Null,
            Yaml::Bool(b) => Json::Bool(*b),
            Yaml::Number(n) => Json::String(n.to_string()),
            Yaml::String(s) => Json::String(s.clone()),
            Yaml::Sequence(items) => {
                let mut out = Vec::new();
                for i in items {
                    if let Some(v) = self.resolve(i)? {
                        out.push(v);
                    }
                }
                Json::Array(out)
            }
            Yaml::Mapping(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    let Some(k) = k.as_str() else { continue };
                    if let Some(v) = self.resolve(v)? {
                        out.insert(k.to_owned(), v);
                    }
                }
                Json::Object(out)
            }
            Yaml::Tagged(t) => {
                let tag = t.tag.to_string();
                return self.intrinsic(tag.trim_start_matches('!'), &t.value);
            }
        }))
    }

    fn intrinsic(&self, tag: &str, arg: &Yaml) -> anyhow::Result<Option<Json>> {
        let s = |v: String| Ok(Some(Json::String(v)));
        match tag {
            "Ref" => {
                let name = arg
                    .as_str()
                    .ok_or_else(|| anyhow!("!Ref of a non-string"))?;
                if name == "AWS::NoValue" {
                    return Ok(None);
                }
                s(self.reference(name)?)
            }
            "GetAtt" => {
                let name = match arg {
                    Yaml::Sequence(p) => p
                        .iter()
                        .filter_map(Yaml::as_str)
                        .collect::<Vec<_>>()
                        .join("."),
                    other => other.as_str().unwrap_or_default().to_owned(),
                };
                s(self.attribute(&name)?)
            }
            "Sub" => {
                let (text, vars) = match arg {
                    Yaml::String(t) => (t.as_str(), None),
                    Yaml::Sequence(p) => (
                        p.first().and_then(Yaml::as_str).unwrap_or_default(),
                        p.get(1),
                    ),
                    _ => bail!("!Sub of an unexpected shape"),
                };
                s(self.sub(text, vars)?)
            }
            "FindInMap" => {
                let parts = self.strings(arg)?;
                let [map, k1, k2] = parts.as_slice() else {
                    bail!("!FindInMap takes three arguments");
                };
                let v = self
                    .raw
                    .get("Mappings")
                    .and_then(|m| m.get(map.as_str()))
                    .and_then(|m| m.get(k1.as_str()))
                    .and_then(|m| m.get(k2.as_str()))
                    .ok_or_else(|| anyhow!("!FindInMap [{map}, {k1}, {k2}] has no value"))?;
                s(scalar(v)?)
            }
            "Split" => {
                let parts = self.strings(arg)?;
                let [sep, text] = parts.as_slice() else {
                    bail!("!Split takes two arguments");
                };
                Ok(Some(Json::Array(
                    text.split(sep.as_str())
                        .map(|p| Json::String(p.to_owned()))
                        .collect(),
                )))
            }
            "Join" => {
                let Yaml::Sequence(p) = arg else {
                    bail!("!Join takes a list")
                };
                let sep = p.first().and_then(Yaml::as_str).unwrap_or_default();
                let items = match p.get(1) {
                    Some(v) => self.resolve(v)?.unwrap_or(Json::Null),
                    None => Json::Null,
                };
                let items: Vec<String> = items
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                s(items.join(sep))
            }
            "If" => {
                let Yaml::Sequence(p) = arg else {
                    bail!("!If takes a list")
                };
                let cond = p.first().and_then(Yaml::as_str).unwrap_or_default();
                let branch = if self.condition(cond)? {
                    p.get(1)
                } else {
                    p.get(2)
                };
                match branch {
                    Some(b) => self.resolve(b),
                    None => Ok(None),
                }
            }
            "Equals" | "Not" | "And" | "Or" | "Condition" => {
                Ok(Some(Json::Bool(self.boolean(tag, arg)?)))
            }
            other => bail!("intrinsic !{other} is not supported by `userstate stack`"),
        }
    }

    fn strings(&self, arg: &Yaml) -> anyhow::Result<Vec<String>> {
        let Yaml::Sequence(p) = arg else {
            bail!("expected a list")
        };
        p.iter()
            .map(|v| match self.resolve(v)? {
                Some(Json::String(s)) => Ok(s),
                other => Err(anyhow!("expected a string, got {other:?}")),
            })
            .collect()
    }

    fn condition(&self, name: &str) -> anyhow::Result<bool> {
        let node = self
            .raw
            .get("Conditions")
            .and_then(|c| c.get(name))
            .ok_or_else(|| anyhow!("condition {name} is not defined"))?;
        match self.resolve(node)? {
            Some(Json::Bool(b)) => Ok(b),
            other => bail!("condition {name} is not a boolean: {other:?}"),
        }
    }

    fn boolean(&self, tag: &str, arg: &Yaml) -> anyhow::Result<bool> {
        let items = |arg: &Yaml| -> anyhow::Result<Vec<Json>> {
            let Yaml::Sequence(p) = arg else {
                bail!("!{tag} takes a list")
            };
            p.iter()
                .map(|v| Ok(self.resolve(v)?.unwrap_or(Json::Null)))
                .collect()
        };
        let truth = |v: &Json| matches!(v, Json::Bool(true));
        Ok(match tag {
            "Equals" => {
                let v = items(arg)?;
                v.len() == 2 && v[0] == v[1]
            }
            "Not" => !items(arg)?.first().is_some_and(truth),
            "And" => items(arg)?.iter().all(truth),
            "Or" => items(arg)?.iter().any(truth),
            _ => self.condition(arg.as_str().unwrap_or_default())?,
        })
    }

    fn reference(&self, name: &str) -> anyhow::Result<String> {
        let env = &self.env;
        Ok(match name {
            "AWS::Region" => env.region.clone(),
            "AWS::AccountId" => env.account.clone(),
            "AWS::Partition" => "aws".into(),
            "AWS::URLSuffix" => "amazonaws.com".into(),
            "AWS::StackName" => env.stack_name.clone(),
            _ => match self.params.get(name).or_else(|| self.refs.get(name)) {
                Some(v) => v.clone(),
                None => bail!("!Ref {name}: no parameter or resource of that name"),
            },
        })
    }

    fn attribute(&self, name: &str) -> anyhow::Result<String> {
        self.attrs
            .get(name)
            .cloned()
            .ok_or_else(|| anyhow!("!GetAtt {name} is not known to `userstate stack`"))
    }

    /// `${Name}`, `${Logical.Attr}` and `${!Literal}` in `text`.
    fn sub(&self, text: &str, vars: Option<&Yaml>) -> anyhow::Result<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| anyhow!("unterminated ${{ in !Sub {text:?}"))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.and_then(|m| m.get(name)) {
                match self.resolve(v)? {
                    Some(Json::String(s)) => out.push_str(&s),
                    other => bail!("!Sub variable {name} is {other:?}"),
                }
            } else if name.contains('.') && !name.starts_with("AWS::") {
                out.push_str(&self.attribute(name)?);
            } else {
                out.push_str(&self.reference(name)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn scalar(v: &Yaml) -> anyhow::Result<String> {
    match v {
        Yaml::String(s) => Ok(s.clone()),
        Yaml::Number(n) => Ok(n.to_string()),
        Yaml::Bool(b) => Ok(b.to_string()),
        other => bail!("expected a scalar, got {other:?}"),
    }
}

/// The text of a resolved value that should be a string (numbers come through as strings).
pub fn text(v: &Json) -> Option<&str> {
    v.as_str()
}

/// A resolved list of strings (a single string counts as a list of one).
pub fn strings(v: &Json) -> Vec<String> {
    match v {
        Json::String(s) => vec![s.clone()],
        Json::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(text: &str) -> Template {
        let mut t = Template::parse(
            text,
            Env {
                account: "123456789012".into(),
                region: "us-east-1".into(),
                stack_name: "s".into(),
            },
        )
        .unwrap();
        t.set_params(&BTreeMap::new()).unwrap();
        t
    }

    #[test]
    fn resolves_refs_subs_maps_conditions_and_novalue() {
        let mut t = template(
            r#"
Parameters:
  Stage: {Type: String, Default: dev}
  Reserve: {Type: Number, Default: 0}
Conditions:
  Reserved: !Not [!Equals [!Ref Reserve, 0]]
Mappings:
  S: {dev: {Days: 14}}
Resources:
  Q:
    Type: AWS::SQS::Queue
  F:
    Type: AWS::Serverless::Function
    Properties:
      A: !Sub "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${Q.QueueName}/${Stage}/${!Literal}"
      B: !FindInMap [S, !Ref Stage, Days]
      C: !If [Reserved, !Ref Reserve, !Ref AWS::NoValue]
      D: !Split [",", "a,b"]
      E: !Ref Q
"#,
        );
        t.refs.insert("Q".into(), "http://q/url".into());
        t.attrs.insert("Q.QueueName".into(), "qname".into());
        let p = t.resolved("F", "Properties").unwrap();
        assert_eq!(
            p["A"],
            "arn:aws:sqs:us-east-1:123456789012:qname/dev/${Literal}"
        );
        assert_eq!(p["B"], "14");
        assert!(p.get("C").is_none(), "{p}");
        assert_eq!(p["D"], serde_json::json!(["a", "b"]));
        assert_eq!(p["E"], "http://q/url");
    }

    #[test]
    fn a_parameter_without_default_or_value_is_refused() {
        let mut t = Template::parse(
            "Parameters:\n  Secret: {Type: String}\n",
            Env {
                account: "1".into(),
                region: "r".into(),
                stack_name: "s".into(),
            },
        )
        .unwrap();
        let err = t.set_params(&BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("Secret"), "{err}");
    }
}
