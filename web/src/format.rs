//! Numbers for people.

/// `1.5 MB`, `820 kB`, `12 B` (decimal units, as browsers' task managers show).
pub fn bytes(n: u64) -> String {
    let n = n as f64;
    match n {
        _ if n >= 1e9 => format!("{:.2} GB", n / 1e9),
        _ if n >= 1e6 => format!("{:.1} MB", n / 1e6),
        _ if n >= 1e3 => format!("{:.0} kB", n / 1e3),
        _ => format!("{n} B"),
    }
}

/// `22.7M`, `148k`, `770`.
pub fn count(n: usize) -> String {
    let f = n as f64;
    match n {
        _ if f >= 1e6 => format!("{:.1}M", f / 1e6),
        _ if f >= 1e4 => format!("{:.0}k", f / 1e3),
        _ => n.to_string(),
    }
}

/// `1 min 05 s`, `42 s`.
pub fn seconds(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "–".into();
    }
    let s = s.round() as u64;
    if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}
