//! One key of a tenant's settings JSON, changed by the store inside the write transaction.
//!
//! Settings hold independent keys (the TOTP requirement, one retention override per
//! collection). Replacing the whole JSON from a copy read before the transaction loses a
//! concurrent change of another key; a compare-and-swap of the whole JSON makes concurrent
//! changes of different keys conflict with each other again and again when they land in one
//! group commit. So the store applies the change to the row as it is in the transaction, and
//! checks only the key the change is about: two requests conflict (`Conflict::Stale`) only
//! when they change the same key from the same old value.

use serde_json::{Map, Value};

use crate::{Conflict, StoreError};

/// `current` (the stored settings; anything but a JSON object counts as empty) with the value
/// at `path` set to `value`, provided it is still `expect` (`Value::Null` for absent).
pub(crate) fn patched(
    current: &str,
    path: &[String],
    value: &Value,
    expect: Option<&Value>,
) -> Result<String, StoreError> {
    let (last, parents) = path
        .split_last()
        .ok_or_else(|| StoreError::Corrupt("a settings change without a key".into()))?;
    let mut root = match serde_json::from_str::<Value>(current) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    if let Some(expect) = expect {
        let mut at = Some(&root);
        for key in parents {
            at = at.and_then(|m| m.get(key)).and_then(Value::as_object);
        }
        let found = at.and_then(|m| m.get(last)).unwrap_or(&Value::Null);
        if found != expect {
            return Err(StoreError::Conflict(Conflict::Stale));
        }
    }
    let mut map = &mut root;
    for key in parents {
        let slot = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        map = slot
            .as_object_mut()
            .ok_or_else(|| StoreError::Corrupt("settings key is no object".into()))?;
    }
    map.insert(last.clone(), value.clone());
    Ok(Value::Object(root).to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn sets_a_nested_key_and_keeps_the_others() {
        let out = patched(
            r#"{"require_totp":true,"retention":{"contact":"1000d"}}"#,
            &path(&["retention", "job_application"]),
            &json!("700d"),
            Some(&Value::Null),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v,
            json!({"require_totp": true, "retention": {"contact": "1000d", "job_application": "700d"}})
        );
    }

    #[test]
    fn a_changed_key_is_stale() {
        let r = patched(
            r#"{"retention":{"contact":"900d"}}"#,
            &path(&["retention", "contact"]),
            &json!("800d"),
            Some(&json!("1000d")),
        );
        assert!(matches!(r, Err(StoreError::Conflict(Conflict::Stale))));
        let r = patched(
            r#"{"retention":{"contact":"900d"}}"#,
            &path(&["retention", "contact"]),
            &json!("800d"),
            Some(&Value::Null),
        );
        assert!(matches!(r, Err(StoreError::Conflict(Conflict::Stale))));
    }

    #[test]
    fn garbage_settings_count_as_empty_and_no_expectation_always_applies() {
        for current in ["", "[1]", "not json", r#"{"retention":"x"}"#] {
            let out = patched(
                current,
                &path(&["retention", "contact"]),
                &json!("10d"),
                None,
            )
            .unwrap();
            let v: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["retention"]["contact"], json!("10d"), "{current}");
        }
    }

    #[test]
    fn an_empty_path_is_refused() {
        assert!(patched("{}", &[], &json!(1), None).is_err());
    }
}
