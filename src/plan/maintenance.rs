//! When restarts the user did not ask for may run. `fn maintenance(ctx)` in
//! `restart.rhai` declares which restart reasons are held, the maintenance
//! windows (week days, a time range, a time zone) that release them, and
//! how long a changed pod template must stay unchanged before a rollout
//! step starts. Policies have no clock: this module reads the declaration
//! and decides, for a given instant, whether a window is open and when the
//! next one opens.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde_json::{Value, json};

use crate::cluster::ClusterRef;
use crate::conventions::contract::CONTRACT_VERSION;
use crate::conventions::{ConventionBundle, SourceError};

/// The policy function; optional: a `restart.rhai` without it holds
/// nothing and settles for [`DEFAULT_SETTLE_SECONDS`].
pub const FUNCTION: &str = "maintenance";
/// Seconds a pod template must stay unchanged before a rollout step starts,
/// when the policy does not say.
pub const DEFAULT_SETTLE_SECONDS: i64 = 5;
/// The restart reasons a policy may hold: those the user did not ask for.
pub const HOLDABLE: &[&str] = &["conventions"];

/// What `fn maintenance` declared.
#[derive(Clone, Debug, PartialEq)]
pub struct Maintenance {
    /// Restart reasons held until a window opens or the cluster approves.
    pub hold: Vec<String>,
    /// When held restarts may run; none: only an approval releases them.
    pub windows: Vec<Window>,
    pub settle_seconds: i64,
}

impl Default for Maintenance {
    fn default() -> Self {
        Maintenance {
            hold: Vec::new(),
            windows: Vec::new(),
            settle_seconds: DEFAULT_SETTLE_SECONDS,
        }
    }
}

/// A weekly maintenance window: on each of `days` from `from` to `to` in
/// `time_zone`. A window whose `to` is not after `from` ends the next day.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// Days the window opens on; empty: every day.
    pub days: Vec<Weekday>,
    pub from: Time,
    /// `None`: midnight at the end of the day (`"24:00"`).
    pub to: Option<Time>,
    pub time_zone: TimeZone,
    pub time_zone_name: String,
}

const DAY_NAMES: &[(&str, Weekday)] = &[
    ("Mon", Weekday::Monday),
    ("Tue", Weekday::Tuesday),
    ("Wed", Weekday::Wednesday),
    ("Thu", Weekday::Thursday),
    ("Fri", Weekday::Friday),
    ("Sat", Weekday::Saturday),
    ("Sun", Weekday::Sunday),
];

impl Window {
    fn opens_on(&self, day: Weekday) -> bool {
        self.days.is_empty() || self.days.contains(&day)
    }

    fn crosses_midnight(&self) -> bool {
        self.to.is_some_and(|to| to <= self.from)
    }

    /// Whether `now` is inside the window.
    pub fn contains(&self, now: Timestamp) -> bool {
        let local = now.to_zoned(self.time_zone.clone());
        let (today, time) = (local.date(), local.time());
        let before_end = |t: Time| self.to.is_none_or(|to| t < to);
        if self.crosses_midnight() {
            (self.opens_on(today.weekday()) && time >= self.from)
                || (today.yesterday().is_ok_and(|y| self.opens_on(y.weekday())) && before_end(time))
        } else {
            self.opens_on(today.weekday()) && time >= self.from && before_end(time)
        }
    }

    /// The first opening of the window after `now`.
    pub fn next_opening(&self, now: Timestamp) -> Option<Timestamp> {
        let today: Date = now.to_zoned(self.time_zone.clone()).date();
        (0..=8).find_map(|d| {
            let day = today.checked_add(d.days()).ok()?;
            if !self.opens_on(day.weekday()) {
                return None;
            }
            // A time the clocks skip opens the window when they resume.
            let at = day
                .to_datetime(self.from)
                .to_zoned(self.time_zone.clone())
                .ok()?
                .timestamp();
            (at > now).then_some(at)
        })
    }
}

impl std::fmt::Display for Window {
    /// `Sat,Sun 01:00-05:00 Europe/Berlin`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let days = if self.days.is_empty() {
            "daily".to_string()
        } else {
            self.days
                .iter()
                .filter_map(|d| DAY_NAMES.iter().find(|(_, w)| w == d).map(|(n, _)| *n))
                .collect::<Vec<_>>()
                .join(",")
        };
        let hm = |t: Time| format!("{:02}:{:02}", t.hour(), t.minute());
        let to = self.to.map_or("24:00".to_string(), hm);
        write!(f, "{days} {}-{to} {}", hm(self.from), self.time_zone_name)
    }
}

impl Maintenance {
    /// Whether restarts for `reason` wait for a window or an approval.
    pub fn holds(&self, reason: &str) -> bool {
        self.hold.iter().any(|h| h == reason)
    }

    /// The window open at `now`, if any.
    pub fn open_window(&self, now: Timestamp) -> Option<&Window> {
        self.windows.iter().find(|w| w.contains(now))
    }

    /// The next time a window opens after `now`.
    pub fn next_opening(&self, now: Timestamp) -> Option<Timestamp> {
        self.windows
            .iter()
            .filter_map(|w| w.next_opening(now))
            .min()
    }

    /// The windows, for messages: `Sat,Sun 01:00-05:00 Europe/Berlin; ...`.
    pub fn describe_windows(&self) -> String {
        self.windows
            .iter()
            .map(Window::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Asks `restart.rhai` when restarts may run for `cluster`.
pub fn maintenance(
    bundle: &ConventionBundle,
    cluster: ClusterRef<'_>,
) -> Result<Maintenance, SourceError> {
    if !bundle.defines("restart.rhai", FUNCTION, 1) {
        return Ok(Maintenance::default());
    }
    let ctx = json!({
        "contract": CONTRACT_VERSION,
        "cluster": super::restart::cluster_ctx(cluster),
    });
    let value = bundle.call_json("restart.rhai", FUNCTION, &ctx)?;
    read(&value).map_err(|m| SourceError::new(bundle.origin("restart.rhai"), m))
}

/// Reads what `fn maintenance` returned; errors name the offending value.
pub fn read(value: &Value) -> Result<Maintenance, String> {
    let Value::Object(map) = value else {
        return Err(
            "fn maintenance must return #{ hold: [..], windows: [..], settle_seconds: n }".into(),
        );
    };
    only_keys(map, &["hold", "windows", "settle_seconds"])
        .map_err(|e| format!("fn maintenance: {e}"))?;
    let mut out = Maintenance::default();
    match map.get("hold") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                match item.as_str() {
                    Some(r) if HOLDABLE.contains(&r) => out.hold.push(r.to_string()),
                    _ => {
                        return Err(format!(
                            "fn maintenance: hold: {item} cannot be held (holdable: {}; \
                             restarts the user asks for always go at once)",
                            HOLDABLE.join(", ")
                        ));
                    }
                }
            }
        }
        Some(_) => return Err("fn maintenance: hold must be an array of reasons".into()),
    }
    match map.get("windows") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                out.windows
                    .push(window(item).map_err(|m| format!("fn maintenance: windows[{i}]: {m}"))?);
            }
        }
        Some(_) => return Err("fn maintenance: windows must be an array".into()),
    }
    match map.get("settle_seconds") {
        None | Some(Value::Null) => {}
        Some(v) => {
            out.settle_seconds = v.as_i64().filter(|s| (0..=3600).contains(s)).ok_or_else(|| {
                format!("fn maintenance: settle_seconds must be a whole number from 0 to 3600, got {v}")
            })?;
        }
    }
    Ok(out)
}

/// A key the policy may have misspelt is an error, not a silent default.
fn only_keys(map: &serde_json::Map<String, Value>, known: &[&str]) -> Result<(), String> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(format!("unknown key `{key}` (known: {})", known.join(", "))),
        None => Ok(()),
    }
}

fn window(value: &Value) -> Result<Window, String> {
    let Value::Object(map) = value else {
        return Err(
            "must be #{ days: [\"Sat\", ..], from: \"01:00\", to: \"05:00\", time_zone: \"UTC\" }"
                .into(),
        );
    };
    only_keys(map, &["days", "from", "to", "time_zone"])?;
    let mut days = Vec::new();
    match map.get("days") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let day = item
                    .as_str()
                    .and_then(|s| {
                        DAY_NAMES
                            .iter()
                            .find(|(n, _)| n.eq_ignore_ascii_case(s))
                            .map(|(_, d)| *d)
                    })
                    .ok_or_else(|| {
                        format!("days: {item} is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
                    })?;
                if !days.contains(&day) {
                    days.push(day);
                }
            }
        }
        Some(_) => return Err("days must be an array of day names".into()),
    }
    let time = |key: &str| -> Result<Option<Time>, String> {
        let text = map
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{key} must be a time \"HH:MM\""))?;
        let bad = || format!("{key}: {text:?} is not a time \"HH:MM\" (00:00 to 24:00)");
        let (h, m) = text.split_once(':').ok_or_else(bad)?;
        let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if (h, m) == (24, 0) {
            return Ok(None);
        }
        Time::new(h, m, 0, 0).map(Some).map_err(|_| bad())
    };
    let from = time("from")?
        .ok_or_else(|| "from: 24:00 is not a time a window can open at".to_string())?;
    let to = time("to")?;
    if to == Some(from) {
        return Err(
            "from and to are the same time: the window would never close; \
                    leave windows out and hold nothing to restart at any time"
                .into(),
        );
    }
    let time_zone_name = match map.get("time_zone") {
        None | Some(Value::Null) => "UTC".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => return Err(format!("time_zone: {v} is not a time zone name")),
    };
    let time_zone = TimeZone::get(&time_zone_name).map_err(|_| {
        format!("time_zone: {time_zone_name:?} is not a known time zone (e.g. \"Europe/Berlin\", \"UTC\")")
    })?;
    Ok(Window {
        days,
        from,
        to,
        time_zone,
        time_zone_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn one(window: Value) -> Maintenance {
        read(&json!({"hold": ["conventions"], "windows": [window]})).unwrap()
    }

    #[test]
    fn a_weekend_night_window_in_berlin() {
        let m = one(
            json!({"days": ["Sat", "Sun"], "from": "01:00", "to": "05:00",
                           "time_zone": "Europe/Berlin"}),
        );
        // Saturday 2026-12-05 01:30 in Berlin is 00:30 UTC.
        assert!(m.open_window(at("2026-12-05T00:30:00Z")).is_some());
        // 05:00 Berlin: closed.
        assert!(m.open_window(at("2026-12-05T04:00:00Z")).is_none());
        // Friday night: closed; it opens Saturday 01:00 Berlin.
        let now = at("2026-12-04T20:00:00Z");
        assert!(m.open_window(now).is_none());
        assert_eq!(m.next_opening(now), Some(at("2026-12-05T00:00:00Z")));
        // During Sunday's window the next opening is next Saturday.
        assert_eq!(
            m.next_opening(at("2026-12-06T01:00:00Z")),
            Some(at("2026-12-12T00:00:00Z"))
        );
        assert!(m.holds("conventions"));
        assert!(!m.holds("upgrade"));
        assert_eq!(m.describe_windows(), "Sat,Sun 01:00-05:00 Europe/Berlin");
    }

    #[test]
    fn a_window_past_midnight_belongs_to_the_day_it_opens() {
        let m = one(json!({"days": ["Fri"], "from": "22:00", "to": "02:00"}));
        assert!(
            m.open_window(at("2026-12-04T23:00:00Z")).is_some(),
            "Fri 23:00"
        );
        assert!(
            m.open_window(at("2026-12-05T01:00:00Z")).is_some(),
            "Sat 01:00"
        );
        assert!(
            m.open_window(at("2026-12-05T03:00:00Z")).is_none(),
            "Sat 03:00"
        );
        assert!(
            m.open_window(at("2026-12-05T23:00:00Z")).is_none(),
            "Sat 23:00"
        );
        let daily = one(json!({"from": "12:00", "to": "24:00"}));
        assert!(daily.open_window(at("2026-12-01T23:59:00Z")).is_some());
        assert!(daily.open_window(at("2026-12-01T00:00:00Z")).is_none());
        assert_eq!(
            daily.next_opening(at("2026-12-01T13:00:00Z")),
            Some(at("2026-12-02T12:00:00Z"))
        );
    }

    #[test]
    fn a_window_across_a_clock_change_opens_at_local_time() {
        // Berlin moves from CEST to CET on 2026-10-25.
        let m = one(json!({"days": ["Sun"], "from": "03:30", "to": "04:00",
                           "time_zone": "Europe/Berlin"}));
        assert_eq!(
            m.next_opening(at("2026-10-24T12:00:00Z")),
            Some(at("2026-10-25T02:30:00Z"))
        );
        assert_eq!(
            m.next_opening(at("2026-10-18T00:00:00Z")),
            Some(at("2026-10-18T01:30:00Z"))
        );
    }

    #[test]
    fn nothing_is_held_unless_asked() {
        let m = read(&json!({})).unwrap();
        assert_eq!(m, Maintenance::default());
        assert_eq!(m.settle_seconds, DEFAULT_SETTLE_SECONDS);
        let m = read(&json!({"settle_seconds": 0, "hold": []})).unwrap();
        assert_eq!(m.settle_seconds, 0);
    }

    #[test]
    fn a_broken_maintenance_function_fails_the_canary() {
        use crate::conventions::ConventionSources;
        let default = ConventionBundle::embedded().unwrap();
        assert!(default.defines("restart.rhai", FUNCTION, 1));
        crate::samples::canary(&default).unwrap();
        let policy = format!(
            "{}\nfn maintenance(ctx) {{ #{{ windows: [#{{ days: [\"Sunday\"], from: \"01:00\", to: \"02:00\" }}] }} }}\n",
            include_str!("../../policies/restart.rhai")
                .replace("fn maintenance(ctx)", "fn unused(ctx)")
        );
        let sources =
            ConventionSources::embedded().overlay_files("cm", [("restart.rhai", policy.as_str())]);
        let broken = ConventionBundle::compile(sources).unwrap();
        let err = crate::samples::canary(&broken).unwrap_err();
        assert!(err.contains("restart.rhai"), "{err}");
        assert!(
            err.contains("windows[0]: days: \"Sunday\" is not a day"),
            "{err}"
        );
    }

    #[test]
    fn mistakes_name_the_value() {
        let err = |v: Value| read(&v).unwrap_err();
        assert!(err(json!({"hold": ["upgrade"]})).contains("\"upgrade\" cannot be held"));
        assert!(
            err(json!({"windows": [{"days": ["Saturday"], "from": "01:00", "to": "02:00"}]}))
                .contains("windows[0]: days: \"Saturday\" is not a day")
        );
        assert!(
            err(json!({"windows": [{"from": "1am", "to": "02:00"}]}))
                .contains("from: \"1am\" is not a time")
        );
        assert!(
            err(json!({"windows": [{"from": "01:00", "to": "25:00"}]})).contains("to: \"25:00\"")
        );
        assert!(
            err(
                json!({"windows": [{"from": "01:00", "to": "02:00", "time_zone": "Mars/Olympus"}]})
            )
            .contains("\"Mars/Olympus\" is not a known time zone")
        );
        assert!(
            err(json!({"windows": [{"from": "01:00", "to": "01:00"}]})).contains("never close")
        );
        assert!(err(json!({"settle_seconds": -1})).contains("settle_seconds"));
        assert!(err(json!({"holds": []})).contains("unknown key `holds`"));
        assert!(err(json!([])).contains("must return"));
    }
}
