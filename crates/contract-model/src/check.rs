//! A check of the model itself against `serde_json::Value`, on the lines both can judge.

use crate::object::{last, parse_object};
use crate::row::{KNOWN_KEYS, Outcome};

/// Where serde_json accepts the whole line as an object (`preserve_order`: a repeated key keeps
/// its first place and takes its last value, as `JSON.parse`), the model must have made a row of
/// it with the same members and the same `extra` keys in the same order. Lines serde_json
/// rejects (balanced-only nested values, `1e400`, nesting past its depth limit) are the model's
/// alone and pass.
pub fn self_check(line: &[u8], outcome: &Outcome) -> Result<(), String> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(line)
    else {
        return Ok(());
    };
    let Outcome::Row(row) = outcome else {
        return Err(format!(
            "model bug: serde_json accepts the object but the model says {outcome:?}"
        ));
    };
    let members = parse_object(line).map_err(|e| format!("model bug: row, yet {e}"))?;
    for (k, v) in &map {
        let mine = last(&members, k).ok_or(format!("model bug: key {k:?} missing"))?;
        let mine: serde_json::Value = serde_json::from_str(mine)
            .map_err(|e| format!("model bug: key {k:?}: value {mine:?}: {e}"))?;
        if &mine != v {
            return Err(format!("model bug: key {k:?}: {mine} vs serde_json {v}"));
        }
    }
    let unknown: Vec<&String> = map
        .keys()
        .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
        .collect();
    let extra_keys: Vec<&String> = row.extra.iter().map(|m| &m.key).collect();
    if unknown != extra_keys {
        return Err(format!(
            "model bug: extra keys {extra_keys:?} vs serde_json's {unknown:?}"
        ));
    }
    Ok(())
}
