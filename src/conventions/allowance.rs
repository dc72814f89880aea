//! Limits that grow with what a convention is handed.
//!
//! The sandbox's limits (array items, map entries, string bytes, template
//! fuel) bound what a policy or template builds. Rhai counts the size of a
//! value with everything nested in it, so a large `ctx` counts against them
//! too: a restart plan of 2,000 pods, or the lookup map of a 1 MiB `fe.conf`,
//! would be refused for what the operator handed in rather than for what
//! the convention made of it. A call whose ctx is large therefore gets each
//! limit raised by the size of its ctx: a policy may still build only the
//! fixed amount beyond the data it was given, and data it was given is
//! bounded by what the API server stores (1 MiB ConfigMaps, the pods of a
//! cluster). Calls with a small ctx keep the fixed limits and share one
//! engine and template environment.

use rhai::{Array, Dynamic, Engine, ImmutableString, Map};

use super::sandbox;

/// Below this share of a fixed limit (1/10), a ctx runs under the fixed limits.
const SMALL: usize = 10;

/// Template fuel granted for each array item or map entry of a template's
/// context beyond the fixed fuel: enough for a template to visit each one a
/// few times (a `{% for %}` over configuration entries takes about ten
/// instructions for each entry, that is two map entries and one item).
pub const FUEL_PER_ITEM: u64 = 10;

/// The size of a value as Rhai's limits count it: array items, map entries
/// and string bytes, everything nested included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataSize {
    pub array_items: usize,
    pub map_entries: usize,
    pub string_bytes: usize,
}

impl DataSize {
    /// Measures a Rhai value.
    pub fn of(value: &Dynamic) -> Self {
        let mut size = DataSize::default();
        size.add(value);
        size
    }

    fn add(&mut self, value: &Dynamic) {
        if let Some(array) = value.read_lock::<Array>() {
            self.array_items += array.len();
            for item in array.iter() {
                self.add(item);
            }
        } else if let Some(map) = value.read_lock::<Map>() {
            self.map_entries += map.len();
            for item in map.values() {
                self.add(item);
            }
        } else if let Some(text) = value.read_lock::<ImmutableString>() {
            self.string_bytes += text.len();
        }
    }

    /// Measures a template context.
    pub fn of_template(value: &minijinja::Value) -> Self {
        let mut size = DataSize::default();
        size.add_template(value);
        size
    }

    fn add_template(&mut self, value: &minijinja::Value) {
        use minijinja::value::ValueKind;
        match value.kind() {
            ValueKind::Seq => {
                if let Ok(items) = value.try_iter() {
                    for item in items {
                        self.array_items += 1;
                        self.add_template(&item);
                    }
                }
            }
            ValueKind::Map => {
                if let Ok(keys) = value.try_iter() {
                    for key in keys {
                        self.map_entries += 1;
                        if let Ok(item) = value.get_item(&key) {
                            self.add_template(&item);
                        }
                    }
                }
            }
            ValueKind::String => {
                self.string_bytes += value.as_str().map_or(0, str::len);
            }
            _ => {}
        }
    }

    /// Whether every part is small next to the fixed limits, so that the
    /// shared engine's limits serve.
    pub fn is_small(&self) -> bool {
        self.array_items <= sandbox::MAX_ARRAY_SIZE / SMALL
            && self.map_entries <= sandbox::MAX_MAP_SIZE / SMALL
            && self.string_bytes <= sandbox::MAX_STRING_SIZE / SMALL
    }

    /// Array items and map entries together.
    pub fn items(&self) -> usize {
        self.array_items + self.map_entries
    }
}

/// A sandboxed engine whose data limits are the fixed ones plus the size of
/// `ctx`. Array and map limits both grow by all of ctx's items, since what a
/// policy makes of its input changes its form: a restart plan turns each pod
/// (a map) into a step holding two arrays.
pub fn engine_for(ctx: DataSize) -> Engine {
    let mut engine = sandbox::engine();
    engine
        .set_max_array_size(sandbox::MAX_ARRAY_SIZE + ctx.items())
        .set_max_map_size(sandbox::MAX_MAP_SIZE + ctx.items())
        .set_max_string_size(sandbox::MAX_STRING_SIZE + ctx.string_bytes);
    sandbox::limit_maps_read(&mut engine, sandbox::MAX_MAP_SIZE + ctx.items());
    engine
}

/// The fuel of a template render whose context has `ctx`.
pub fn fuel_for(ctx: DataSize) -> u64 {
    super::TEMPLATE_FUEL + FUEL_PER_ITEM * ctx.items() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_count_what_is_nested() {
        let value = rhai::serde::to_dynamic(serde_json::json!({
            "pods": [{"pod": "a-0", "ordinal": 0}, {"pod": "a-1", "ordinal": 1}],
            "name": "abc",
        }))
        .unwrap();
        assert_eq!(
            DataSize::of(&value),
            DataSize {
                array_items: 2,
                map_entries: 6,
                string_bytes: 9
            }
        );
        let template = minijinja::Value::from(minijinja::value::Serde(serde_json::json!({
            "entries": [{"key": "a", "value": "1"}],
        })));
        assert_eq!(
            DataSize::of_template(&template),
            DataSize {
                array_items: 1,
                map_entries: 3,
                string_bytes: 2
            }
        );
    }

    #[test]
    fn a_large_ctx_raises_the_limits_by_its_size() {
        let small = DataSize {
            array_items: 10,
            map_entries: 10,
            string_bytes: 10,
        };
        assert!(small.is_small());
        let pods = DataSize {
            array_items: 5_000,
            map_entries: 25_000,
            string_bytes: 60_000,
        };
        assert!(!pods.is_small());
        let engine = engine_for(pods);
        assert_eq!(engine.max_map_size(), sandbox::MAX_MAP_SIZE + 30_000);
        assert_eq!(engine.max_array_size(), sandbox::MAX_ARRAY_SIZE + 30_000);
        // What the policy builds itself is still bounded.
        let err = engine
            .eval::<Dynamic>("let a = []; loop { a.push(1); }")
            .unwrap_err();
        assert!(
            matches!(*err, rhai::EvalAltResult::ErrorDataTooLarge(..)),
            "{err}"
        );
    }
}
