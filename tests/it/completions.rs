//! Shell completions and the man page: generated from the parser's own definitions, so every
//! subcommand and flag is in them.

use std::process::Command;

use crate::util::spotdrill;

/// Every top-level subcommand, as `--help` lists it.
const SUBCOMMANDS: [&str; 13] = [
    "validate",
    "plan",
    "markets",
    "run",
    "lag",
    "report",
    "diff",
    "watch",
    "lab",
    "schema",
    "unlock",
    "completions",
    "man",
];

/// `spotdrill completions SHELL`, which must succeed; its script.
fn completions(shell: &str) -> String {
    let out = spotdrill(&["completions", shell]);
    out.expect_code(0);
    out.stdout
}

#[track_caller]
fn assert_names_every_subcommand(what: &str, text: &str) {
    for cmd in SUBCOMMANDS {
        assert!(text.contains(cmd), "{what} does not name `{cmd}`:\n{text}");
    }
}

#[test]
fn bash_completion_names_every_subcommand_and_the_run_flags() {
    let script = completions("bash");
    assert_names_every_subcommand("the bash script", &script);
    assert!(script.contains("--resume"), "{script}");
}

#[test]
fn zsh_fish_elvish_and_powershell_scripts_name_the_subcommands() {
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let script = completions(shell);
        assert!(!script.trim().is_empty(), "{shell}: empty script");
        assert_names_every_subcommand(&format!("the {shell} script"), &script);
    }
}

/// Where bash is installed, the script parses and registers a completion for `spotdrill`.
#[test]
fn bash_accepts_the_script_and_registers_the_completion() {
    if Command::new("bash").arg("--version").output().is_err() {
        eprintln!("skipped: no bash on this machine");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spotdrill.bash");
    std::fs::write(&file, completions("bash")).unwrap();
    let syntax = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(
        syntax.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    let sourced = Command::new("bash")
        .arg("-c")
        .arg(r#"source "$1" && complete -p spotdrill"#)
        .arg("bash")
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&sourced.stdout);
    assert!(
        sourced.status.success() && stdout.contains("spotdrill"),
        "complete -p spotdrill: {stdout}{}",
        String::from_utf8_lossy(&sourced.stderr)
    );
}

#[test]
fn an_unknown_shell_is_a_usage_error_with_the_choices() {
    let out = spotdrill(&["completions", "tcsh"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("invalid value 'tcsh'") && out.stderr.contains("bash"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_man_page_is_roff_naming_every_subcommand_and_the_exit_codes() {
    let out = spotdrill(&["man"]);
    out.expect_code(0);
    let page = &out.stdout;
    assert!(page.contains(".TH spotdrill 1"), "{page}");
    assert_names_every_subcommand("the man page", page);
    assert!(page.contains("4 environment error"), "{page}");
}

#[test]
fn man_dir_writes_a_page_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let man1 = dir.path().join("man1");
    let out = spotdrill(&["man", "--dir", man1.to_str().unwrap()]);
    out.expect_code(0);
    for name in [
        "spotdrill",
        "spotdrill-run",
        "spotdrill-lab",
        "spotdrill-lab-up",
    ] {
        let page = std::fs::read_to_string(man1.join(format!("{name}.1")))
            .unwrap_or_else(|e| panic!("{name}.1 was not written: {e}"));
        assert!(page.contains(".TH"), "{name}.1 is not roff:\n{page}");
    }
    let run = std::fs::read_to_string(man1.join("spotdrill-run.1")).unwrap();
    assert!(run.contains("resume"), "{run}");
}

/// A directory that cannot be created is the environment's fault (exit 4), not a panic.
#[test]
fn man_dir_that_cannot_be_written_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = spotdrill(&["man", "--dir", file.join("man1").to_str().unwrap()]);
    out.expect_code(4);
    assert!(out.stderr.contains("while creating"), "{}", out.stderr);
}
