//! Sizes, durations and rates, as people type them and as the report prints them.
//!
//! Every parser returns `Err(String)` with one line that names the accepted forms, so clap
//! can put it behind the flag's name: `invalid value '5x' for '--duration <DUR>': ...`.
//!
//! Conventions (documented in `--help` and `docs/usage.md`):
//! - byte sizes: `4096`, `64k`, `1.5G`, `2GiB`, `512MB`; every suffix is a power of 1024
//!   (k, M, G, T, with or without `i`, `iB`, `B`), as in stress-ng and fio;
//! - `80%`: a share of a base the flag names (available memory, a disk's free space...);
//! - durations: `30` (seconds), `30s`, `500ms`, `5m`, `1h30m`, `1.5h`, `2d`, or `forever`;
//! - rates: a byte size or a count per second (`100M/s`, `10k/s`), or bits per second in
//!   decimal units (`1Gbit/s`, `100Mbit/s`), as networks count them.

use std::fmt;
use std::time::Duration;

/// A byte size as given: absolute, or a share of a base resolved later.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SizeSpec {
    Bytes(u64),
    /// Percent, 0 < p <= 100.
    Percent(f64),
}

impl SizeSpec {
    /// Resolves a percentage against `base` (bytes); absolute sizes stay as they are.
    pub fn resolve(self, base: u64) -> u64 {
        match self {
            SizeSpec::Bytes(b) => b,
            SizeSpec::Percent(p) => ((base as f64) * p / 100.0) as u64,
        }
    }
}

impl fmt::Display for SizeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeSpec::Bytes(b) => f.write_str(&bytes(*b)),
            SizeSpec::Percent(p) => write!(f, "{p}%"),
        }
    }
}

const SIZE_FORMS: &str = "expected a size like 4096, 64k, 1.5G, 2GiB or 80%";

fn binary_multiplier(suffix: &str) -> Option<u64> {
    let s = suffix.to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let s = s.strip_suffix('i').unwrap_or(s);
    Some(match s {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return None,
    })
}

/// Splits `1.5GiB` into (1.5, "GiB"). The number must be finite and not negative.
fn split_number(s: &str) -> Option<(f64, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(end);
    if num.is_empty() || num.starts_with('.') && num.len() == 1 {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    n.is_finite().then_some((n, rest.trim_start()))
}

/// Parses a byte size: `4096`, `64k`, `1.5G`, `2GiB`. Zero is refused.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let forms = "expected a size like 4096, 64k, 1.5G or 2GiB";
    let (n, suffix) = split_number(s.trim()).ok_or(forms)?;
    let mult = binary_multiplier(suffix).ok_or(forms)?;
    let v = n * mult as f64;
    if v < 1.0 {
        return Err("must be at least 1 byte".into());
    }
    if v > u64::MAX as f64 / 2.0 {
        return Err("too large".into());
    }
    Ok(v as u64)
}

/// Parses a size or a percentage: `64k`, `2GiB`, `80%`.
pub fn parse_size(s: &str) -> Result<SizeSpec, String> {
    let t = s.trim();
    if let Some(p) = t.strip_suffix('%') {
        let p: f64 = p.trim().parse().map_err(|_| SIZE_FORMS.to_string())?;
        if !(p > 0.0 && p <= 100.0) {
            return Err("a percentage must be more than 0 and at most 100".into());
        }
        return Ok(SizeSpec::Percent(p));
    }
    parse_bytes(t).map(SizeSpec::Bytes).map_err(|e| {
        if e.starts_with("expected") {
            SIZE_FORMS.to_string()
        } else {
            e
        }
    })
}

/// How long a run lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunFor {
    For(Duration),
    /// Only when spelled out: `--duration forever`.
    Forever,
}

impl RunFor {
    pub fn as_duration(self) -> Option<Duration> {
        match self {
            RunFor::For(d) => Some(d),
            RunFor::Forever => None,
        }
    }
}

impl fmt::Display for RunFor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunFor::For(d) => f.write_str(&duration(*d)),
            RunFor::Forever => f.write_str("forever"),
        }
    }
}

const DURATION_FORMS: &str = "expected a duration like 30, 30s, 500ms, 5m, 1h30m or forever";

/// Parses a duration: `30`, `30s`, `500ms`, `5m`, `1h30m`, `1.5h`, `2d`, or `forever`.
pub fn parse_duration(s: &str) -> Result<RunFor, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("forever") {
        return Ok(RunFor::Forever);
    }
    let d = parse_plain_duration(t)?;
    if d.is_zero() {
        return Err("must be more than 0 (use `forever` for no deadline)".into());
    }
    Ok(RunFor::For(d))
}

/// A finite duration (no `forever`); zero is allowed.
pub fn parse_plain_duration(t: &str) -> Result<Duration, String> {
    if t.is_empty() {
        return Err(DURATION_FORMS.into());
    }
    let mut rest = t;
    let mut total = 0f64;
    let mut last_unit = f64::INFINITY;
    while !rest.is_empty() {
        let (n, after) = split_number(rest).ok_or(DURATION_FORMS)?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let secs = match unit.trim() {
            "" if next.is_empty() && rest.len() == t.len() => 1.0,
            "ms" => 0.001,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(DURATION_FORMS.into()),
        };
        // 1h30m yes, 30m1h no: units must come largest first, each once.
        if secs >= last_unit {
            return Err(DURATION_FORMS.into());
        }
        last_unit = secs;
        total += n * secs;
        rest = next;
    }
    if total > 100.0 * 365.0 * 86400.0 {
        return Err("too long (use `forever` for no deadline)".into());
    }
    Ok(Duration::from_secs_f64(total))
}

/// What a rate counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateKind {
    /// Bytes per second: `100M/s` (binary), `1Gbit/s` (decimal bits).
    Bytes,
    /// Things per second: `10k/s` = 10,000 per second (decimal, like a count).
    Count,
}

/// Parses a rate into units per second. `/s` is required, so `10k` is not mistaken for a
/// size.
pub fn parse_rate(s: &str, kind: RateKind) -> Result<f64, String> {
    let forms = match kind {
        RateKind::Bytes => "expected a rate like 100M/s, 64k/s or 1Gbit/s",
        RateKind::Count => "expected a rate like 500/s, 10k/s or 1M/s",
    };
    let t = s.trim();
    let body = t
        .strip_suffix("/s")
        .or_else(|| t.strip_suffix("ps"))
        .ok_or(forms)?;
    let (n, suffix) = split_number(body).ok_or(forms)?;
    let lower = suffix.to_ascii_lowercase();
    let v = if kind == RateKind::Bytes && lower.ends_with("bit") {
        let mult = match &lower[..lower.len() - 3] {
            "" => 1.0,
            "k" => 1e3,
            "m" => 1e6,
            "g" => 1e9,
            "t" => 1e12,
            _ => return Err(forms.into()),
        };
        n * mult / 8.0
    } else if kind == RateKind::Bytes {
        n * binary_multiplier(suffix).ok_or(forms)? as f64
    } else {
        let mult = match lower.as_str() {
            "" => 1.0,
            "k" => 1e3,
            "m" => 1e6,
            "g" => 1e9,
            _ => return Err(forms.into()),
        };
        n * mult
    };
    if v <= 0.0 {
        return Err("must be more than 0".into());
    }
    Ok(v)
}

/// `1.50 GiB`, `64.0 KiB`, `512 B`.
pub fn bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else if v >= 100.0 {
        format!("{v:.0} {}", UNITS[i])
    } else if v >= 10.0 {
        format!("{v:.1} {}", UNITS[i])
    } else {
        format!("{v:.2} {}", UNITS[i])
    }
}

/// `1.23M`, `45.6k`, `789`: a count for a status line.
pub fn count(n: f64) -> String {
    let (v, s) = if n >= 1e12 {
        (n / 1e12, "T")
    } else if n >= 1e9 {
        (n / 1e9, "G")
    } else if n >= 1e6 {
        (n / 1e6, "M")
    } else if n >= 1e4 {
        (n / 1e3, "k")
    } else {
        return format!("{n:.0}");
    };
    if v >= 100.0 {
        format!("{v:.0}{s}")
    } else {
        format!("{v:.1}{s}")
    }
}

/// A latency given in microseconds, as people read it: `850ns`, `12.5us`, `3.40ms`, `1.20s`.
pub fn micros(us: f64) -> String {
    if us < 1.0 {
        format!("{:.0}ns", us * 1e3)
    } else if us < 1e3 {
        format!("{us:.1}us")
    } else if us < 1e6 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// `1h30m`, `45s`, `1.5s`, `250ms`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    if s < 60 {
        let frac = d.subsec_millis();
        return if frac == 0 {
            format!("{s}s")
        } else {
            format!("{}s", (d.as_secs_f64() * 10.0).round() / 10.0)
        };
    }
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if s > 0 {
        out += &format!("{s}s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(SizeSpec::Bytes(4096)));
        assert_eq!(parse_size("64k"), Ok(SizeSpec::Bytes(65536)));
        assert_eq!(parse_size("64K"), Ok(SizeSpec::Bytes(65536)));
        assert_eq!(parse_size("1.5G"), Ok(SizeSpec::Bytes(3 << 29)));
        assert_eq!(parse_size("2GiB"), Ok(SizeSpec::Bytes(2 << 30)));
        assert_eq!(parse_size("512MB"), Ok(SizeSpec::Bytes(512 << 20)));
        assert_eq!(parse_size("80%"), Ok(SizeSpec::Percent(80.0)));
        assert_eq!(SizeSpec::Percent(80.0).resolve(1000), 800);
        for bad in [
            "", "k", "-1", "1x", "0", "0%", "101%", "abc%", "1.2.3", "nan", "inf",
        ] {
            assert!(parse_size(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn durations() {
        let s = |n| Ok(RunFor::For(Duration::from_secs(n)));
        assert_eq!(parse_duration("30"), s(30));
        assert_eq!(parse_duration("30s"), s(30));
        assert_eq!(parse_duration("5m"), s(300));
        assert_eq!(parse_duration("1h30m"), s(5400));
        assert_eq!(parse_duration("1h30m15s"), s(5415));
        assert_eq!(parse_duration("1.5h"), s(5400));
        assert_eq!(
            parse_duration("500ms"),
            Ok(RunFor::For(Duration::from_millis(500)))
        );
        assert_eq!(parse_duration("forever"), Ok(RunFor::Forever));
        for bad in [
            "", "0", "0s", "-5", "5x", "30m1h", "5m5m", "s", "1h 2", "ms",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("10k/s", RateKind::Count), Ok(10_000.0));
        assert_eq!(parse_rate("100M/s", RateKind::Bytes), Ok(100.0 * 1048576.0));
        assert_eq!(parse_rate("1Gbit/s", RateKind::Bytes), Ok(125e6));
        assert_eq!(parse_rate("8bit/s", RateKind::Bytes), Ok(1.0));
        for bad in ["10k", "0/s", "x/s", "1Gbit/s"] {
            assert!(parse_rate(bad, RateKind::Count).is_err(), "{bad}");
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(3 << 30), "3.00 GiB");
        assert_eq!(duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(duration(Duration::from_millis(250)), "250ms");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(count(1_234_567.0), "1.2M");
        assert_eq!(count(999.0), "999");
    }
}
