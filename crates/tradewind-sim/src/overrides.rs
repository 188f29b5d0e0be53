//! `--set key=value` on a scenario: dotted keys into the scenario's TOML
//! (`disorder.clock_ahead_device_rate=0`, `clock.events_per_second=2.5`,
//! `fx.interval="5m"`), applied before it is parsed and validated, so an
//! unknown key or a bad value fails exactly as it would in the file. A value
//! is read as TOML (a number, a boolean, a quoted string, an array) and
//! taken as a plain string when it is not valid TOML (`fx.interval=5m`).

use toml::{Table, Value};

use crate::{Error, Result};

/// The scenario text with every `key=value` of `sets` applied, in order.
pub fn apply(text: &str, sets: &[String]) -> Result<String> {
    if sets.is_empty() {
        return Ok(text.to_string());
    }
    let mut root: Table = text
        .parse()
        .map_err(|e: toml::de::Error| Error::Scenario(e.to_string()))?;
    for set in sets {
        let (key, raw) = set
            .split_once('=')
            .ok_or_else(|| Error::Scenario(format!("--set {set:?}: expected key=value")))?;
        let value = parse_value(raw.trim());
        let path: Vec<&str> = key.trim().split('.').collect();
        let (last, parents) = path.split_last().expect("split yields one part");
        let mut table = &mut root;
        for part in parents {
            table = match table.get_mut(*part) {
                Some(Value::Table(t)) => t,
                _ => {
                    return Err(Error::Scenario(format!(
                        "--set {key}: the scenario has no table {part:?} there"
                    )))
                }
            };
        }
        table.insert((*last).to_string(), value);
    }
    Ok(toml::to_string(&root).expect("a TOML table serializes"))
}

fn parse_value(raw: &str) -> Value {
    format!("v = {raw}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scenario;

    #[test]
    fn sets_numbers_strings_and_fails_on_unknown_keys() {
        let text = crate::scenario::DEFAULT_SCENARIO;
        let sets = [
            "disorder.clock_ahead_device_rate=0".to_string(),
            "fx.interval=5m".to_string(),
            "iot.fleet_scale = 0.5".to_string(),
        ];
        let s = Scenario::parse(&apply(text, &sets).unwrap()).unwrap();
        assert_eq!(s.disorder.clock_ahead_device_rate, 0.0);
        assert_eq!(s.fx.interval, std::time::Duration::from_secs(300));
        assert_eq!(s.iot.fleet_scale, 0.5);
        let typo = apply(text, &["disorder.clock_ahead_rate=0".into()]).unwrap();
        let err = Scenario::parse(&typo).unwrap_err().to_string();
        assert!(err.contains("clock_ahead_rate"), "{err}");
        let err = apply(text, &["nowhere.x=1".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no table \"nowhere\""), "{err}");
    }
}
