//! Names of JSON value kinds for error messages.

use serde_json::Value;

/// Returns the JSON name of the value's kind: `object`, `array`, `string`, `integer`,
/// `number`, `boolean` or `null`.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(number) if number.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::Bool(_) => "boolean",
        Value::Null => "null",
    }
}

/// Returns the name Python gives the type of the decoded value (`dict`, `list`, `str`,
/// `int`, `float`, `bool`, `NoneType`); the reference worker's messages use these.
pub fn python_type_name(value: &Value) -> &'static str {
    match value {
        Value::Object(_) => "dict",
        Value::Array(_) => "list",
        Value::String(_) => "str",
        Value::Number(number) if number.is_f64() => "float",
        Value::Number(_) => "int",
        Value::Bool(_) => "bool",
        Value::Null => "NoneType",
    }
}
