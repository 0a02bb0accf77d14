//! Where a problem's value came from. A `REKEY_<SECTION>__<FIELD>` override
//! lands in the same tree as the file, so without this a misspelt variable
//! reads as a misspelt field the operator cannot find in the file. Each
//! override's field path is derived the way the `config` crate derives it
//! (prefix off, lower case, `__` → `.`), and a problem at that path names
//! the variable.

use super::problem::ConfigProblem;

/// The `REKEY_*` overrides of one load, by the field path each one sets.
#[derive(Debug, Default)]
pub(super) struct EnvOrigins {
    by_path: Vec<(String, String)>,
}

impl EnvOrigins {
    pub(super) fn new<'a>(variables: impl IntoIterator<Item = &'a String>) -> Self {
        let by_path = variables
            .into_iter()
            .filter_map(|var| Some((field_path(var)?, var.clone())))
            .collect();
        EnvOrigins { by_path }
    }

    /// A shape problem (unknown field, wrong type) comes from a variable
    /// that sets its path or a field below it: `REKEY_BOGUS__X` makes the
    /// unknown table `bogus`.
    pub(super) fn shape(&self, problem: ConfigProblem) -> ConfigProblem {
        let below = format!("{}.", problem.path);
        let var = self
            .by_path
            .iter()
            .find(|(path, _)| *path == problem.path || path.starts_with(&below));
        annotate(problem, var.map(|(_, var)| var.as_str()))
    }

    /// A value problem comes from a variable that sets exactly its path.
    pub(super) fn value(&self, problem: ConfigProblem) -> ConfigProblem {
        let var = self.by_path.iter().find(|(path, _)| *path == problem.path);
        annotate(problem, var.map(|(_, var)| var.as_str()))
    }
}

/// `REKEY_DAEMON__MAX_CONCURRENT_ROTATIONS` → `daemon.max_concurrent_rotations`.
fn field_path(var: &str) -> Option<String> {
    let rest = var.strip_prefix("REKEY_")?;
    Some(rest.to_lowercase().replace("__", "."))
}

/// The origin goes after the problem's first clause, before any hint:
/// `unknown field (from the environment variable X); did you mean "y"?`.
fn annotate(mut problem: ConfigProblem, var: Option<&str>) -> ConfigProblem {
    if let Some(var) = var {
        let origin = format!(" (from the environment variable {var})");
        let at = first_clause_end(&problem.message);
        problem.message.insert_str(at, &origin);
    }
    problem
}

/// The byte offset of the first `;` outside parentheses, or the end.
fn first_clause_end(message: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in message.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ';' if depth == 0 => return i,
            _ => {}
        }
    }
    message.len()
}

/// Whether `path` is at or below a field in `reported`: a problem there
/// follows from one already reported (a field read as empty after its
/// wrong type was reported is not also "required").
pub(super) fn covered(reported: &[String], path: &str) -> bool {
    reported.iter().any(|r| {
        path == r
            || path
                .strip_prefix(r.as_str())
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(path: &str, message: &str) -> ConfigProblem {
        ConfigProblem {
            path: path.into(),
            message: message.into(),
        }
    }

    #[test]
    fn the_origin_goes_after_the_first_clause_outside_parentheses() {
        let vars = ["REKEY_DAEMON__SWEEP_TIMEOUT".to_string()];
        let origins = EnvOrigins::new(&vars);
        let p = origins.value(problem(
            "daemon.sweep_timeout",
            "not a duration (a number expected; value not shown); write e.g. \"90s\"",
        ));
        assert_eq!(
            p.message,
            "not a duration (a number expected; value not shown) (from the environment \
             variable REKEY_DAEMON__SWEEP_TIMEOUT); write e.g. \"90s\""
        );
        let untouched = origins.value(problem("daemon.state", "required"));
        assert_eq!(untouched.message, "required");
    }

    #[test]
    fn an_unknown_table_names_the_variable_below_it() {
        let vars = ["REKEY_BOGUS__X".to_string()];
        let origins = EnvOrigins::new(&vars);
        let p = origins.shape(problem("bogus", "unknown field"));
        assert_eq!(
            p.message,
            "unknown field (from the environment variable REKEY_BOGUS__X)"
        );
        let p = origins.shape(problem("bog", "unknown field"));
        assert_eq!(
            p.message, "unknown field",
            "a prefix of a name is not a parent"
        );
        assert_eq!(origins.value(problem("bogus", "x")).message, "x");
    }

    #[test]
    fn problems_below_a_reported_field_are_covered() {
        let reported = ["policy[0]".to_string(), "daemon.state".to_string()];
        assert!(covered(&reported, "policy[0]"));
        assert!(covered(&reported, "policy[0].name"));
        assert!(covered(&reported, "daemon.state"));
        assert!(!covered(&reported, "policy[01]"));
        assert!(!covered(&reported, "policy[1].name"));
        assert!(!covered(&reported, "daemon.statex"));
    }
}
