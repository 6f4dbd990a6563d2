//! Client-side admission of custom resources: the structural OpenAPI v3 schema of a CRD
//! version, its defaults, and its CEL rules (`x-kubernetes-validations`).
//!
//! It follows what the API server does on create: apply defaults, then validate, with one
//! difference. Unknown fields are reported as errors, as `kubectl apply --validate=strict`
//! does, instead of being pruned.
//!
//! NOTE: `format` is checked only for int32 and int64. Regular expressions run on the
//! `regex` crate, whose syntax matches the RE2 syntax of the API server for the patterns
//! used here but not for every pattern. Transition rules (those that use `oldSelf`) are
//! skipped, as the API server skips them on create.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

/// The OpenAPI v3 schema of one version of a CustomResourceDefinition.
pub fn crd_version_schema(crd: &Value, version: &str) -> Value {
    let versions = crd["spec"]["versions"]
        .as_array()
        .expect("a CustomResourceDefinition has spec.versions");
    let entry = versions
        .iter()
        .find(|entry| entry["name"] == version)
        .unwrap_or_else(|| panic!("the CRD has no version {version:?}"));
    entry["schema"]["openAPIV3Schema"].clone()
}

/// Applies the schema's defaults to `object` and returns every violation of the schema and
/// its CEL rules, each as `<path>: <message>`.
pub fn admit(schema: &Value, object: &mut Value) -> Vec<String> {
    apply_defaults(schema, object);

    let mut violations = Vec::new();
    validate(schema, object, "", &mut violations);
    violations
}

/// Sets every missing property that has a `default` in the schema, recursively.
fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema["properties"].as_object() {
                for (name, property_schema) in properties {
                    if !map.contains_key(name)
                        && let Some(default) = property_schema.get("default")
                    {
                        map.insert(name.clone(), default.clone());
                    }
                    if let Some(child) = map.get_mut(name) {
                        apply_defaults(property_schema, child);
                    }
                }
            } else if schema["additionalProperties"].is_object() {
                for child in map.values_mut() {
                    apply_defaults(&schema["additionalProperties"], child);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                apply_defaults(&schema["items"], item);
            }
        }
        _ => {}
    }
}

fn validate(schema: &Value, value: &Value, path: &str, violations: &mut Vec<String>) {
    let shown_path = if path.is_empty() { "<root>" } else { path };
    let before = violations.len();

    if value.is_null() {
        if schema["nullable"] != true {
            violations.push(format!("{shown_path}: must not be null"));
        }
        return;
    }

    let preserves_unknown = schema["x-kubernetes-preserve-unknown-fields"] == true;
    if schema["x-kubernetes-int-or-string"] == true {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            violations.push(format!(
                "{shown_path}: must be an integer or a string, got {value}"
            ));
        }
    } else if let Some(expected) = schema["type"].as_str() {
        if !has_type(value, expected) {
            violations.push(format!(
                "{shown_path}: must be of type {expected}, got {value}"
            ));
            return;
        }
    } else if !preserves_unknown && schema.get("anyOf").is_none() && schema.get("allOf").is_none() {
        violations.push(format!("{shown_path}: the schema has no type"));
    }

    validate_value_constraints(schema, value, shown_path, violations);

    match value {
        Value::Object(map) => validate_object(schema, map, path, preserves_unknown, violations),
        Value::Array(items) => validate_array(schema, items, path, violations),
        _ => {}
    }

    for (keyword, combine) in [
        ("allOf", Combine::All),
        ("anyOf", Combine::Any),
        ("oneOf", Combine::One),
    ] {
        if let Some(branches) = schema[keyword].as_array() {
            validate_combination(branches, combine, keyword, value, path, violations);
        }
    }
    if let Some(negated) = schema.get("not") {
        let mut inner = Vec::new();
        validate(negated, value, path, &mut inner);
        if inner.is_empty() {
            violations.push(format!(
                "{shown_path}: must not match the schema under `not`"
            ));
        }
    }

    // The API server evaluates CEL rules only on values that passed the schema.
    if violations.len() == before
        && let Some(rules) = schema["x-kubernetes-validations"].as_array()
    {
        for rule in rules {
            check_rule(rule, schema, value, shown_path, violations);
        }
    }
}

fn has_type(value: &Value, expected: &str) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        _ => false,
    }
}

fn validate_value_constraints(
    schema: &Value,
    value: &Value,
    path: &str,
    violations: &mut Vec<String>,
) {
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        violations.push(format!(
            "{path}: {value} is not one of {}",
            Value::Array(allowed.clone())
        ));
    }

    if let Some(text) = value.as_str() {
        let length = text.chars().count() as u64;
        if let Some(min) = schema["minLength"].as_u64()
            && length < min
        {
            violations.push(format!("{path}: {value} is shorter than {min} characters"));
        }
        if let Some(max) = schema["maxLength"].as_u64()
            && length > max
        {
            violations.push(format!("{path}: {value} is longer than {max} characters"));
        }
        if let Some(pattern) = schema["pattern"].as_str() {
            let regex = regex::Regex::new(pattern).unwrap_or_else(|error| {
                panic!("{path}: invalid pattern {pattern:?} in the schema: {error}")
            });
            if !regex.is_match(text) {
                violations.push(format!(
                    "{path}: {value} does not match the pattern {pattern:?}"
                ));
            }
        }
    }

    if let Some(number) = value.as_f64() {
        let exclusive_min = schema["exclusiveMinimum"] == true;
        let exclusive_max = schema["exclusiveMaximum"] == true;
        if let Some(min) = schema["minimum"].as_f64()
            && (number < min || (exclusive_min && number == min))
        {
            violations.push(format!("{path}: {value} is below the minimum {min}"));
        }
        if let Some(max) = schema["maximum"].as_f64()
            && (number > max || (exclusive_max && number == max))
        {
            violations.push(format!("{path}: {value} is above the maximum {max}"));
        }
        let range = match schema["format"].as_str() {
            Some("int32") => Some((f64::from(i32::MIN), f64::from(i32::MAX))),
            Some("int64") => Some((i64::MIN as f64, i64::MAX as f64)),
            _ => None,
        };
        if let Some((low, high)) = range
            && !(low..=high).contains(&number)
        {
            violations.push(format!(
                "{path}: {value} is outside the range of its format"
            ));
        }
    }
}

fn validate_object(
    schema: &Value,
    map: &Map<String, Value>,
    path: &str,
    preserves_unknown: bool,
    violations: &mut Vec<String>,
) {
    let shown_path = if path.is_empty() { "<root>" } else { path };
    let properties = schema["properties"].as_object();

    if let Some(required) = schema["required"].as_array() {
        for name in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(name) {
                violations.push(format!(
                    "{shown_path}: the required field {name:?} is missing"
                ));
            }
        }
    }
    for (bound, keyword, compare) in [
        ("minProperties", "fewer", u64::lt as fn(&u64, &u64) -> bool),
        ("maxProperties", "more", u64::gt),
    ] {
        if let Some(limit) = schema[bound].as_u64()
            && compare(&(map.len() as u64), &limit)
        {
            violations.push(format!(
                "{shown_path}: has {keyword} than {limit} properties"
            ));
        }
    }

    for (name, child) in map {
        let child_path = format!("{path}.{name}");
        // The API server checks apiVersion, kind and metadata of the resource itself with
        // its own rules, not with the CRD's schema.
        if path.is_empty() && ["apiVersion", "kind", "metadata"].contains(&name.as_str()) {
            continue;
        }
        if let Some(property_schema) = properties.and_then(|properties| properties.get(name)) {
            validate(property_schema, child, &child_path, violations);
        } else if schema["additionalProperties"].is_object() {
            validate(
                &schema["additionalProperties"],
                child,
                &child_path,
                violations,
            );
        } else if !(preserves_unknown || schema["additionalProperties"] == true) {
            violations.push(format!("{child_path}: unknown field"));
        }
    }
}

fn validate_array(schema: &Value, items: &[Value], path: &str, violations: &mut Vec<String>) {
    let shown_path = if path.is_empty() { "<root>" } else { path };
    if let Some(min) = schema["minItems"].as_u64()
        && (items.len() as u64) < min
    {
        violations.push(format!("{shown_path}: has fewer than {min} items"));
    }
    if let Some(max) = schema["maxItems"].as_u64()
        && (items.len() as u64) > max
    {
        violations.push(format!("{shown_path}: has more than {max} items"));
    }
    let unique = schema["uniqueItems"] == true || schema["x-kubernetes-list-type"] == "set";
    if unique {
        for (index, item) in items.iter().enumerate() {
            if items[..index].contains(item) {
                violations.push(format!("{shown_path}[{index}]: duplicate item {item}"));
            }
        }
    }
    if schema["x-kubernetes-list-type"] == "map"
        && let Some(keys) = schema["x-kubernetes-list-map-keys"].as_array()
    {
        let key_of = |item: &Value| {
            keys.iter()
                .map(|key| item[key.as_str().unwrap_or_default()].clone())
                .collect::<Vec<_>>()
        };
        for (index, item) in items.iter().enumerate() {
            if items[..index]
                .iter()
                .any(|earlier| key_of(earlier) == key_of(item))
            {
                violations.push(format!(
                    "{shown_path}[{index}]: duplicate list-map key {:?}",
                    key_of(item)
                ));
            }
        }
    }
    for (index, item) in items.iter().enumerate() {
        validate(
            &schema["items"],
            item,
            &format!("{path}[{index}]"),
            violations,
        );
    }
}

#[derive(Clone, Copy)]
enum Combine {
    All,
    Any,
    One,
}

fn validate_combination(
    branches: &[Value],
    combine: Combine,
    keyword: &str,
    value: &Value,
    path: &str,
    violations: &mut Vec<String>,
) {
    let shown_path = if path.is_empty() { "<root>" } else { path };
    let results: Vec<Vec<String>> = branches
        .iter()
        .map(|branch| {
            // Branches of a structural schema carry value validations only, so the value's
            // type and fields are checked by the enclosing schema.
            let mut branch = branch.clone();
            if let Some(map) = branch.as_object_mut() {
                map.entry("x-kubernetes-preserve-unknown-fields")
                    .or_insert(Value::Bool(true));
            }
            let mut inner = Vec::new();
            validate(&branch, value, path, &mut inner);
            inner
        })
        .collect();
    let passed = results.iter().filter(|inner| inner.is_empty()).count();
    let ok = match combine {
        Combine::All => passed == branches.len(),
        Combine::Any => passed >= 1,
        Combine::One => passed == 1,
    };
    if !ok {
        let reasons: Vec<String> = results.into_iter().flatten().collect();
        violations.push(format!(
            "{shown_path}: does not satisfy {keyword} ({})",
            reasons.join("; ")
        ));
    }
}

/// Evaluates one `x-kubernetes-validations` rule with `self` bound to `value`.
fn check_rule(
    rule: &Value,
    schema: &Value,
    value: &Value,
    path: &str,
    violations: &mut Vec<String>,
) {
    let expression = rule["rule"]
        .as_str()
        .unwrap_or_else(|| panic!("{path}: a validation rule has no `rule` string: {rule}"));
    if expression.contains("oldSelf") {
        return;
    }

    let program = cel::Program::compile(expression).unwrap_or_else(|error| {
        panic!("{path}: the CEL rule {expression:?} does not compile with the cel crate: {error}")
    });
    let mut context = cel::Context::default();
    context.add_variable_from_value("self", to_cel(value, schema));

    let location = match rule["fieldPath"].as_str() {
        Some(field_path) => format!("{path}{field_path}"),
        None => path.to_string(),
    };
    match program.execute(&context) {
        Ok(cel::Value::Bool(true)) => {}
        Ok(cel::Value::Bool(false)) => {
            let message = rule["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("failed rule: {expression}"));
            violations.push(format!("{location}: {message}"));
        }
        Ok(other) => violations.push(format!(
            "{location}: the rule {expression:?} returned {other:?} instead of a boolean"
        )),
        Err(error) => violations.push(format!(
            "{location}: the rule {expression:?} failed to evaluate: {error}"
        )),
    }
}

/// Converts a JSON value to a CEL value, with integers as `int` and numbers as `double`
/// as the API server's CEL environment types them from the schema.
fn to_cel(value: &Value, schema: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(flag) => cel::Value::Bool(*flag),
        Value::Number(number) => match (schema["type"].as_str(), number.as_i64()) {
            (Some("number"), _) | (_, None) => {
                cel::Value::Float(number.as_f64().unwrap_or(f64::NAN))
            }
            (_, Some(integer)) => cel::Value::Int(integer),
        },
        Value::String(text) => cel::Value::String(Arc::new(text.clone())),
        Value::Array(items) => cel::Value::List(Arc::new(
            items
                .iter()
                .map(|item| to_cel(item, &schema["items"]))
                .collect(),
        )),
        Value::Object(map) => {
            let converted: HashMap<String, cel::Value> = map
                .iter()
                .map(|(name, child)| {
                    let child_schema = schema["properties"]
                        .get(name)
                        .unwrap_or(&schema["additionalProperties"]);
                    (name.clone(), to_cel(child, child_schema))
                })
                .collect();
            cel::Value::from(converted)
        }
    }
}
