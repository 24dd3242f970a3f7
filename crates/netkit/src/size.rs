//! Sizes on the command line and in config files: `4096`, `512k`, `64MiB`,
//! `1.5G`, `1GiB`: bytes, in powers of 1024.

pub fn parse(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` (use B, KiB, MiB, GiB or TiB)"
            ));
        }
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a size (examples: 4096, 512KiB, 64MiB, 1GiB)"))?;
    if !value.is_finite() || value < 0.0 || value * scale as f64 > u64::MAX as f64 {
        return Err(format!("`{text}` is not a size that fits"));
    }
    Ok((value * scale as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn sizes() {
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("1GiB"), Ok(1 << 30));
        assert_eq!(parse("64MiB"), Ok(64 << 20));
        assert_eq!(parse("512k"), Ok(512 << 10));
        assert_eq!(parse("1.5M"), Ok(3 << 19));
        assert_eq!(parse("0"), Ok(0));
        assert!(parse("-1").is_err());
        assert!(parse("ten").is_err());
        assert!(parse("5 parsecs").is_err());
        assert_eq!(parse("512K"), Ok(512 << 10));
        assert_eq!(parse("32M"), Ok(32 << 20));
        assert!(parse("-1M").is_err());
    }
}
