//! Small helpers for text shown to operators.

/// `1 policy`, `2 policies`, `0 policies`: a count with the right noun.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
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
        assert_eq!(plural(2, "key", "keys"), "2 keys");
    }
}
