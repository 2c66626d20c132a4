//! `spotdrill validate PLAN…`: pure checking, every problem in one run.

use std::path::PathBuf;

use crate::exit::ExitCode;
use crate::output;
use crate::plan;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Plan files to check.
    #[arg(required = true, value_name = "PLAN")]
    pub plans: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut bad_files = 0;
    let mut errors = 0;
    for path in &args.plans {
        let name = path.display().to_string();
        let text = match plan::read(path) {
            Ok(text) => text,
            Err(e) => {
                output::err(&e.diagnostic().render(&name, ""));
                bad_files += 1;
                errors += 1;
                continue;
            }
        };
        let loaded = plan::load(&text);
        for d in &loaded.diagnostics {
            output::err(&d.render(&name, &text));
        }
        match &loaded.plan {
            Some(p) => output::out(&format!(
                "{name}: ok: plan `{}`: {} target(s), {} step(s), {} application(s)\n",
                p.name,
                p.targets.len(),
                p.step_count(),
                p.applications.len()
            )),
            None => {
                bad_files += 1;
                errors += loaded.errors().max(1);
            }
        }
    }
    if bad_files == 0 {
        return Ok(ExitCode::Success);
    }
    output::err(&format!(
        "error: {errors} problem(s) in {bad_files} of {} plan(s)\n",
        args.plans.len()
    ));
    Ok(ExitCode::BadInput)
}
