//! JSON merge patch (RFC 7386) and a simplified server-side apply.
//!
//! Server-side apply here tracks, per field manager, the set of leaf fields it applied.
//! Lists are atomic leaves: a manager that applies a list owns and replaces all of it. Real
//! Kubernetes merges associative lists (containers, env, ports) by key instead; the operator
//! under test is the only writer of its children's lists, so the difference does not show.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// A leaf field as its path of object keys.
pub type FieldPath = Vec<String>;

/// Applies an RFC 7386 merge patch: `null` removes a key, objects merge, anything else
/// replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target_fields = target.as_object_mut().expect("target was made an object");
    for (key, value) in patch_fields {
        if value.is_null() {
            target_fields.remove(key);
        } else {
            merge_patch(
                target_fields.entry(key.clone()).or_insert(Value::Null),
                value,
            );
        }
    }
}

/// Paths of every leaf (scalar, list or empty object) in `value`.
pub fn leaf_paths(value: &Value) -> BTreeSet<FieldPath> {
    let mut paths = BTreeSet::new();
    collect_leaves(value, &mut Vec::new(), &mut paths);
    paths
}

fn collect_leaves(value: &Value, prefix: &mut FieldPath, paths: &mut BTreeSet<FieldPath>) {
    match value {
        Value::Object(fields) if !fields.is_empty() => {
            for (key, child) in fields {
                prefix.push(key.clone());
                collect_leaves(child, prefix, paths);
                prefix.pop();
            }
        }
        _ => {
            if !prefix.is_empty() {
                paths.insert(prefix.clone());
            }
        }
    }
}

/// The value at `path`, if any.
pub fn get_path<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut current = value;
    for key in path {
        current = current.as_object()?.get(key)?;
    }
    Some(current)
}

/// Sets the value at `path`, creating objects on the way.
pub fn set_path(value: &mut Value, path: &[String], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        *value = new;
        return;
    };
    let mut current = value;
    for key in parents {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        current = current
            .as_object_mut()
            .expect("made an object")
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !current.is_object() {
        *current = Value::Object(Map::new());
    }
    current
        .as_object_mut()
        .expect("made an object")
        .insert(last.clone(), new);
}

/// Removes the value at `path`, then every parent object that became empty.
pub fn remove_path(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = &mut *value;
    for key in parents {
        match current
            .as_object_mut()
            .and_then(|fields| fields.get_mut(key))
        {
            Some(next) => current = next,
            None => return,
        }
    }
    if let Some(fields) = current.as_object_mut() {
        fields.remove(last);
    }
    if !parents.is_empty()
        && get_path(value, parents).is_some_and(|parent| parent == &Value::Object(Map::new()))
    {
        remove_path(value, parents);
    }
}

/// Deep-merges an applied configuration into an object: objects merge key by key, lists and
/// scalars replace.
pub fn merge_applied(target: &mut Value, config: &Value) {
    match (target, config) {
        (Value::Object(target_fields), Value::Object(config_fields)) => {
            for (key, value) in config_fields {
                match target_fields.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge_applied(existing, value)
                    }
                    _ => {
                        target_fields.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (target, config) => *target = config.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_removes_nulls() {
        let mut target = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut target, &json!({"a": null, "b": {"c": 5}}));
        assert_eq!(target, json!({"b": {"c": 5, "d": 3}}));
    }

    #[test]
    fn leaves_treat_lists_as_atomic() {
        let paths = leaf_paths(&json!({"a": {"b": 1, "c": [1, 2]}, "d": {}}));
        let expected: BTreeSet<FieldPath> = [
            vec!["a".to_owned(), "b".to_owned()],
            vec!["a".to_owned(), "c".to_owned()],
            vec!["d".to_owned()],
        ]
        .into_iter()
        .collect();
        assert_eq!(paths, expected);
    }

    #[test]
    fn remove_path_prunes_empty_parents() {
        let mut value = json!({"a": {"b": {"c": 1}}, "x": 1});
        remove_path(&mut value, &["a".into(), "b".into(), "c".into()]);
        assert_eq!(value, json!({"x": 1}));
    }
}
