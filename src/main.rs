use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = spotdrill::cli::Cli::parse();
    spotdrill::output::init_logging(cli.verbose);
    let code = match spotdrill::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            spotdrill::output::error_chain(&err);
            spotdrill::exit::code_for(&err)
        }
    };
    code.into()
}
