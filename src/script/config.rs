//! Strict reading of Rhai object maps: every key is known, typed and range-checked,
//! and errors name the key, the value and what is allowed.
use crate::error::{Error, Result};
use crate::registry::did_you_mean;
use rhai::{Array, Dynamic, Map};
use std::collections::BTreeSet;

/// Reads options from a script's `#{ ... }` map; call [`Opts::finish`] last to
/// reject unknown keys.
pub struct Opts {
    what: &'static str,
    map: Map,
    known: BTreeSet<&'static str>,
}

fn type_name(v: &Dynamic) -> String {
    if v.is_unit() {
        "()".into()
    } else if v.is_string() {
        format!("{:?} (string)", v.to_string())
    } else {
        format!("{v} ({})", v.type_name().rsplit("::").next().unwrap_or("?"))
    }
}

impl Opts {
    /// Wraps `map`, the options of function `what` (used in messages).
    pub fn new(what: &'static str, map: Map) -> Self {
        Self { what, map, known: BTreeSet::new() }
    }

    fn take(&mut self, key: &'static str) -> Option<Dynamic> {
        self.known.insert(key);
        self.map.get(key).filter(|v| !v.is_unit()).cloned()
    }

    fn bad(&self, key: &str, v: &Dynamic, want: &str) -> Error {
        Error::config(key, format!("expected {want}, got {}", type_name(v)))
    }

    /// A number (int or float).
    pub fn f64(&mut self, key: &'static str, default: f64) -> Result<f64> {
        Ok(self.opt_f64(key)?.unwrap_or(default))
    }

    /// An optional number.
    pub fn opt_f64(&mut self, key: &'static str) -> Result<Option<f64>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => as_f64(&v).map(Some).ok_or_else(|| self.bad(key, &v, "a number")),
        }
    }

    /// A number in `[lo, hi]`.
    pub fn f64_in(&mut self, key: &'static str, default: f64, lo: f64, hi: f64) -> Result<f64> {
        let v = self.f64(key, default)?;
        if !(lo..=hi).contains(&v) {
            return Err(Error::config(key, format!("{v} is outside [{lo}, {hi}]")));
        }
        Ok(v)
    }

    /// A non-negative integer.
    pub fn usize(&mut self, key: &'static str, default: usize) -> Result<usize> {
        Ok(self.opt_usize(key)?.unwrap_or(default))
    }

    /// An integer in `[lo, hi]`.
    pub fn usize_in(&mut self, key: &'static str, default: usize, lo: usize, hi: usize) -> Result<usize> {
        let v = self.usize(key, default)?;
        if !(lo..=hi).contains(&v) {
            return Err(Error::config(key, format!("{v} is outside [{lo}, {hi}]")));
        }
        Ok(v)
    }

    /// An optional non-negative integer.
    pub fn opt_usize(&mut self, key: &'static str) -> Result<Option<usize>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => match v.as_int() {
                Ok(i) if i >= 0 => Ok(Some(i as usize)),
                _ => Err(self.bad(key, &v, "a non-negative integer")),
            },
        }
    }

    /// A seed: a non-negative integer.
    pub fn u64(&mut self, key: &'static str, default: u64) -> Result<u64> {
        Ok(self.opt_usize(key)?.map(|v| v as u64).unwrap_or(default))
    }

    /// A name from a registry list (case-insensitive), returned as the list spells it.
    ///
    /// # Errors
    /// Not a string, or not one of `valid` (listing them).
    pub fn name(&mut self, key: &'static str, default: &'static str, valid: &[&'static str]) -> Result<&'static str> {
        match self.opt_string(key)? {
            None => Ok(default),
            Some(s) => Ok(valid[crate::registry::lookup_key(key, &s, valid)?]),
        }
    }

    /// An integer (may be negative; ranges are checked by the configuration).
    pub fn i64(&mut self, key: &'static str, default: i64) -> Result<i64> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => v.as_int().map_err(|_| self.bad(key, &v, "an integer")),
        }
    }

    /// A boolean.
    pub fn bool(&mut self, key: &'static str, default: bool) -> Result<bool> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => v.as_bool().map_err(|_| self.bad(key, &v, "true or false")),
        }
    }

    /// A string.
    pub fn string(&mut self, key: &'static str, default: &str) -> Result<String> {
        Ok(self.opt_string(key)?.unwrap_or_else(|| default.to_string()))
    }

    /// An optional string.
    pub fn opt_string(&mut self, key: &'static str) -> Result<Option<String>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) if v.is_string() => Ok(Some(v.to_string())),
            Some(v) => Err(self.bad(key, &v, "a string")),
        }
    }

    /// A number or an array of numbers.
    pub fn f64_or_list(&mut self, key: &'static str) -> Result<Option<Vec<f64>>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => {
                if let Some(x) = as_f64(&v) {
                    return Ok(Some(vec![x]));
                }
                match v.clone().try_cast::<Array>() {
                    Some(a) => a.iter().map(|e| as_f64(e).ok_or_else(|| self.bad(key, e, "numbers in the array"))).collect::<Result<Vec<_>>>().map(Some),
                    None => Err(self.bad(key, &v, "a number or an array of numbers")),
                }
            }
        }
    }

    /// A density: a number, one number per layer, or a model-wide allocation
    /// `#{ allocation: "erk", target: 0.1, dense_first: true, dense_last: false }`.
    pub fn density(&mut self, key: &'static str) -> Result<Option<DensityOption>> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) if v.is_map() => {
                let mut o = Opts::new("density", v.try_cast::<Map>().unwrap_or_default());
                let kind = crate::model::AllocationKind::parse(&o.string("allocation", "erk")?)?;
                let target = o.opt_f64("target")?.ok_or_else(|| Error::config("target", "required: the model-wide density, e.g. #{ allocation: \"erk\", target: 0.1 }"))?;
                let a = crate::model::Allocation { kind, target, dense_first: o.bool("dense_first", false)?, dense_last: o.bool("dense_last", false)? };
                o.finish()?;
                Ok(Some(DensityOption::Allocated(a)))
            }
            Some(v) => {
                self.map.insert(key.into(), v);
                Ok(self.f64_or_list(key)?.map(DensityOption::Fractions))
            }
        }
    }

    /// An array of non-negative integers.
    pub fn usize_list(&mut self, key: &'static str) -> Result<Option<Vec<usize>>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => match v.clone().try_cast::<Array>() {
                Some(a) => a
                    .iter()
                    .map(|e| match e.as_int() {
                        Ok(i) if i >= 0 => Ok(i as usize),
                        _ => Err(self.bad(key, e, "non-negative integers in the array")),
                    })
                    .collect::<Result<Vec<_>>>()
                    .map(Some),
                None => Err(self.bad(key, &v, "an array of integers")),
            },
        }
    }

    /// A nested map (e.g. `grad_flow: #{ points: 11 }`); `true` gives an empty map, `false` none.
    pub fn map(&mut self, key: &'static str) -> Result<Option<Map>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) if v.is_map() => Ok(v.try_cast::<Map>()),
            Some(v) if v.as_bool() == Ok(true) => Ok(Some(Map::new())),
            Some(v) if v.as_bool() == Ok(false) => Ok(None),
            Some(v) => Err(self.bad(key, &v, "a map #{ ... } or true/false")),
        }
    }

    /// Any value (for keys handled by the caller).
    pub fn raw(&mut self, key: &'static str) -> Option<Dynamic> {
        self.take(key)
    }

    /// Marks keys as known without reading them (handled elsewhere).
    pub fn allow(&mut self, keys: &[&'static str]) {
        self.known.extend(keys.iter().copied());
    }

    /// Errors on the first unknown key, suggesting the nearest known one.
    pub fn finish(self) -> Result<()> {
        for k in self.map.keys() {
            if !self.known.contains(k.as_str()) {
                let hint = did_you_mean(k, self.known.iter().copied());
                let valid = self.known.iter().copied().collect::<Vec<_>>().join(", ");
                return Err(Error::config(k.as_str(), format!("unknown option for {}{hint}; valid: {valid}", self.what)));
            }
        }
        Ok(())
    }
}

/// Int or float as f64.
pub fn as_f64(v: &Dynamic) -> Option<f64> {
    v.as_float().ok().or_else(|| v.as_int().ok().map(|i| i as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Dynamic)]) -> Map {
        pairs.iter().map(|(k, v)| ((*k).into(), v.clone())).collect()
    }

    #[test]
    fn unknown_key_suggests_nearest() {
        let mut o = Opts::new("train", map(&[("optimiser", "sgd".into())]));
        o.string("optimizer", "sgd").unwrap();
        o.f64("lr", 0.1).unwrap();
        assert_eq!(o.finish().unwrap_err().to_string(), "optimiser: unknown option for train (did you mean \"optimizer\"?); valid: lr, optimizer");
    }

    #[test]
    fn wrong_types_name_key_value_and_expectation() {
        let mut o = Opts::new("train", map(&[("lr", "fast".into()), ("epochs", Dynamic::from(-1_i64)), ("augment", Dynamic::from(1_i64))]));
        assert_eq!(o.f64("lr", 0.1).unwrap_err().to_string(), "lr: expected a number, got \"fast\" (string)");
        assert_eq!(o.usize("epochs", 1).unwrap_err().to_string(), "epochs: expected a non-negative integer, got -1 (i64)");
        assert_eq!(o.bool("augment", false).unwrap_err().to_string(), "augment: expected true or false, got 1 (i64)");
        let mut o = Opts::new("mlp", map(&[("dropout", Dynamic::from(1.5_f64))]));
        assert_eq!(o.f64_in("dropout", 0.0, 0.0, 0.99).unwrap_err().to_string(), "dropout: 1.5 is outside [0, 0.99]");
    }
}

/// What a `density` option holds (see [`Opts::density`]).
#[derive(Clone, Debug, PartialEq)]
pub enum DensityOption {
    /// One density, or one per layer.
    Fractions(Vec<f64>),
    /// A model-wide target shared by an allocation rule.
    Allocated(crate::model::Allocation),
}
