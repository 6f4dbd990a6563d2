//! Go-style duration strings (`"1h30m"`, `"90s"`, `"500ms"`), the format Kubernetes APIs use.

use std::time::Duration;

/// Invalid duration string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: {reason}; use a number with a unit, e.g. \"90s\" or \"1h30m\""
)]
pub struct ParseDurationError {
    pub input: String,
    pub reason: &'static str,
}

/// Parses a Go duration string. Units: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`; each number
/// may have a fraction (`1.5h`). Signs are rejected because no setting here can be negative.
pub fn parse_duration(input: &str) -> Result<Duration, ParseDurationError> {
    let error = |reason| ParseDurationError {
        input: input.to_owned(),
        reason,
    };
    if input == "0" {
        return Ok(Duration::ZERO);
    }
    if input.is_empty() {
        return Err(error("empty string"));
    }

    let mut total_nanos: u128 = 0;
    let mut rest = input;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(error("expected a number"));
        }
        let (number, after_number) = rest.split_at(number_len);
        let unit_len = after_number
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_len);

        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "" => return Err(error("missing unit")),
            _ => return Err(error("unknown unit")),
        };
        total_nanos = total_nanos
            .checked_add(scale_decimal(number, unit_nanos).ok_or_else(|| error("invalid number"))?)
            .ok_or_else(|| error("too large"))?;
        rest = after_unit;
    }

    let seconds = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| error("too large"))?;
    // The remainder of a division by 10^9 always fits in u32.
    let nanos = (total_nanos % 1_000_000_000) as u32;
    Ok(Duration::new(seconds, nanos))
}

/// Multiplies a decimal string such as `1.25` by `unit_nanos`, truncating below one nanosecond.
fn scale_decimal(number: &str, unit_nanos: u128) -> Option<u128> {
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (number, ""),
    };
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if fraction.contains('.') {
        return None;
    }

    let whole_value: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut result = whole_value.checked_mul(unit_nanos)?;
    let mut scale = unit_nanos;
    for digit in fraction.chars() {
        scale /= 10;
        let digit = u128::from(digit.to_digit(10)?);
        result = result.checked_add(digit * scale)?;
    }
    Some(result)
}

/// Formats a duration as seconds for a command-line flag, e.g. `10`, `0.5`.
pub fn format_seconds(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds.fract() == 0.0 {
        format!("{}", duration.as_secs())
    } else {
        format!("{seconds}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2us"), Ok(Duration::from_micros(2)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_malformed_input() {
        for input in ["", "10", "s", "1x", "-1s", "1..2s", "1h 2m", "."] {
            assert!(
                parse_duration(input).is_err(),
                "{input:?} should be rejected"
            );
        }
    }

    #[test]
    fn error_names_the_input() {
        let error = parse_duration("5 minutes").unwrap_err();
        assert!(error.to_string().contains("\"5 minutes\""), "{error}");
    }

    #[test]
    fn formats_whole_and_fractional_seconds() {
        assert_eq!(format_seconds(Duration::from_secs(10)), "10");
        assert_eq!(format_seconds(Duration::from_millis(1500)), "1.5");
    }
}
