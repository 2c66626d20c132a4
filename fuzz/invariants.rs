//! What must hold for any plan text, shared by the fuzz target (fuzz/fuzz_targets/plan_load.rs)
//! and the corpus test (tests/it/trust.rs): `plan::load` returns, never panics, and either
//! yields a plan with no error, or no plan and at least one error, every error located inside
//! the text (line:column and character offset in range) unless the text is empty of YAML.

/// Load `text` as a plan and check the contract; `Err` says what broke.
pub fn check_plan_text(text: &str) -> Result<(), String> {
    let loaded = spotdrill::plan::load(text);
    let errors: Vec<_> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
    match (&loaded.plan, errors.is_empty()) {
        (Some(_), false) => return Err("a plan was returned with errors".into()),
        (None, true) => return Err("no plan and no error".into()),
        _ => {}
    }
    if let Some(plan) = &loaded.plan {
        // What a valid plan feeds into later must not overflow either (issue 16 item 12): the
        // confirmation's total and the guard arithmetic, for the smallest and largest sizes.
        let _ = plan.most_terminations();
        for target in plan.targets.values() {
            for size in [None, Some(0), Some(1), Some(usize::MAX)] {
                for market in [0, 1, u32::MAX] {
                    let _ = spotdrill::preflight::guards::warnings(target, size, market);
                }
            }
        }
    }
    let chars = text.chars().count();
    // Lines as YAML counts them: LF, CRLF and a lone CR each end one (YAML 1.2 §5.4).
    let lines = text
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .split('\n')
        .count();
    for d in &loaded.diagnostics {
        // Rendering is what people see: it must not panic either.
        let shown = d.render("plan.yaml", text);
        if d.message.trim().is_empty() {
            return Err(format!("a diagnostic without a message: {shown}"));
        }
        match d.span {
            Some(s) => {
                for p in [s.start, s.end] {
                    // The end of the input may be reported as the start of the line after it,
                    // and after a `%` directive error with its offset counted in bytes, not
                    // characters (up to one past the end): the renderer clamps these to the last
                    // character. Anything further out is a bug.
                    let at_end = (chars..=text.len().max(chars) + 1).contains(&p.index)
                        && (p.line == lines + 1 && p.col == 1 || p.line == lines);
                    if !at_end && (p.line == 0 || p.line > lines || p.col == 0 || p.index > chars) {
                        return Err(format!(
                            "position {}:{} (offset {}) outside the text ({lines} lines, {chars} chars): {shown}",
                            p.line, p.col, p.index
                        ));
                    }
                }
                if (s.start.line, s.start.col) > (s.end.line, s.end.col) {
                    return Err(format!("a span that ends before it starts: {shown}"));
                }
            }
            None if d.is_error() && !d.message.contains("empty") => {
                return Err(format!("an error without a position: {shown}"));
            }
            None => {}
        }
    }
    Ok(())
}
