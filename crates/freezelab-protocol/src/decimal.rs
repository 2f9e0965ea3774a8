//! Decimal text to f64 for the page's inputs, links and plan specs, without core's float
//! parser: its table of powers of five is 20 kB of incompressible data in a page that may take
//! 300 kB gzipped. Only the exact case is taken (Clinger's fast path: the digits fit the
//! mantissa and the power of ten is exact, so the one division or product rounds correctly and
//! the result equals `str::parse`); anything longer is refused as unreadable, which no setting
//! here needs (`2e-5`, `0.00002`, `0.95`, `16` all qualify).

/// Powers of ten that f64 holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// `[+-]digits[.digits][(e|E)[+-]digits]`, as `str::parse::<f64>` reads it, when exact.
pub fn parse_f64(text: &str) -> Option<f64> {
    let (negative, mantissa, exponent) = split(text)?;
    let power = *POW10.get(exponent.unsigned_abs() as usize)?;
    if mantissa > 1 << 53 {
        return None;
    }
    let magnitude = if exponent < 0 { mantissa as f64 / power } else { mantissa as f64 * power };
    Some(if negative { -magnitude } else { magnitude })
}

/// The sign, the significant digits as an integer and the power of ten they are scaled by.
fn split(text: &str) -> Option<(bool, u64, i32)> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (number, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], exponent(&rest[at + 1..])?),
        None => (rest, 0),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut scale = exponent;
    // Zeros are held back until a later digit needs them, so trailing zeros never overflow.
    let mut zeros = 0u32;
    for (digit, in_fraction) in whole.bytes().map(|d| (d, false)).chain(fraction.bytes().map(|d| (d, true))) {
        if !digit.is_ascii_digit() {
            return None;
        }
        if in_fraction {
            scale -= 1;
        }
        if digit == b'0' {
            zeros += 1;
            continue;
        }
        if mantissa != 0 {
            mantissa = mantissa.checked_mul(10u64.checked_pow(zeros)?)?;
        }
        mantissa = mantissa.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
        zeros = 0;
    }
    if mantissa == 0 {
        return Some((negative, 0, 0));
    }
    Some((negative, mantissa, scale + zeros as i32))
}

fn exponent(text: &str) -> Option<i32> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|d| d.is_ascii_digit()) {
        return None;
    }
    let value: i32 = digits.bytes().fold(0, |v, d| v * 10 + i32::from(d - b'0'));
    Some(if text.starts_with('-') { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_what_the_settings_take() {
        for text in [
            "2e-5",
            "0.00002",
            "5E-05",
            "0.95",
            "16",
            "1.",
            ".5",
            "-0.25",
            "+3",
            "0",
            "-0",
            "1.000000000000000000000000",
            "0.1",
        ] {
            assert_eq!(parse_f64(text), Some(text.parse::<f64>().unwrap()), "{text}");
        }
        assert!(parse_f64("-0").unwrap().is_sign_negative());
    }

    #[test]
    fn refuses_what_is_not_a_plain_decimal() {
        for text in
            ["", ".", "-", "e5", "1e", "1e+", "1..2", "1.2.3", "0x10", "nan", "inf", "1,5", " 1", "1 ", "1e99999"]
        {
            assert_eq!(parse_f64(text), None, "{text:?}");
        }
    }

    #[test]
    fn refuses_what_is_not_exact_rather_than_rounding_twice() {
        assert_eq!(parse_f64("12345678901234567890"), None);
        assert_eq!(parse_f64("1e23"), None);
        assert_eq!(parse_f64("1e-23"), None);
    }

    proptest! {
        #[test]
        fn equals_the_standard_parser_wherever_it_answers(
            whole in 0u64..100_000_000, fraction in "[0-9]{0,9}", exponent in -30i32..30, negative: bool,
        ) {
            let sign = if negative { "-" } else { "" };
            for text in [format!("{sign}{whole}.{fraction}e{exponent}"), format!("{sign}{whole}.{fraction}"), format!("{sign}{whole}")] {
                if let Some(v) = parse_f64(&text) {
                    prop_assert_eq!(v.to_bits(), text.parse::<f64>().unwrap().to_bits(), "{}", text);
                }
            }
            // Every decimal of up to 15 digits and a power of ten up to 22 is read.
            if whole < 1_000_000 && fraction.len() <= 9 && exponent.abs() <= 12 {
                let text = format!("{sign}{whole}.{fraction}e{exponent}");
                prop_assert!(parse_f64(&text).is_some(), "{}", text);
            }
        }
    }
}
