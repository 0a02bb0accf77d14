//! Small helpers for text shown to operators.

/// `1 policy`, `2 policies`, `0 policies`: a count with the right noun.
pub fn plural<N>(n: N, one: &str, many: &str) -> String
where
    N: std::fmt::Display + PartialEq + From<u8>,
{
    if n == N::from(1) {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::plural;

    #[test]
    fn one_takes_the_singular_and_every_other_count_the_plural() {
        assert_eq!(plural(1, "policy", "policies"), "1 policy");
        assert_eq!(plural(0, "policy", "policies"), "0 policies");
        assert_eq!(plural(2u32, "key", "keys"), "2 keys");
        assert_eq!(plural(1u32, "attempt", "attempts"), "1 attempt");
    }
}
